//! A refusal rendered for the wire, framework-neutral.

use crate::error::{AuthError, Challenges};
use crate::verify::Auth0;

/// A refused request as every adapter answers it: status, header lines and JSON body, exactly as
/// the Actix adapter sends them. The validator that refused the request renders it
/// ([`Auth0::refusal`]). [`Auth0Config::on_error`](crate::Auth0Config::on_error) is the Actix
/// adapter's hook and is not applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The HTTP status code.
    pub status: u16,
    /// Header lines, names in lower case: `www-authenticate` (except on 5xx), `retry-after` (503),
    /// `dpop-nonce` (`use_dpop_nonce`), `cache-control: no-store`, `content-type:
    /// application/json`.
    pub headers: Vec<(String, String)>,
    /// `{"detail": {"error": "<code>", "error_description": "<text>"}}`.
    pub body: String,
}

impl Refusal {
    /// The first value of header `name` (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name` to `value`, replacing every line of that name.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into().to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
    }

    /// `error` rendered with the challenges a validator's configuration gives.
    pub(crate) fn of(
        error: &AuthError,
        accepted: Challenges,
        dpop: bool,
        dpop_algs: &str,
        resource_metadata: Option<&str>,
    ) -> Self {
        let mut headers = Vec::with_capacity(4);
        if let Some(challenge) = error.challenge(accepted, dpop, dpop_algs, resource_metadata) {
            headers.push(("www-authenticate".to_owned(), challenge));
        }
        if let Some(seconds) = error.retry_after() {
            headers.push(("retry-after".to_owned(), seconds.to_string()));
        }
        headers.push(("cache-control".to_owned(), "no-store".to_owned()));
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        let body =
            serde_json::json!({"detail": {"error": error.code(), "error_description": error.description()}})
                .to_string();
        Self {
            status: error.status(),
            headers,
            body,
        }
    }

    /// `error` rendered with no validator to say otherwise: both schemes, `ES256`.
    pub(crate) fn default_for(error: &AuthError) -> Self {
        Self::of(error, Challenges::Both, false, "ES256", None)
    }
}

impl Auth0 {
    /// How this validator answers `error`: the challenges of its configuration (schemes, DPoP
    /// algorithms, resource metadata) and a `DPoP-Nonce` for `use_dpop_nonce`. `dpop` says the
    /// request used the DPoP scheme (its error goes on the DPoP challenge). What every adapter
    /// sends.
    pub fn refusal(&self, error: &AuthError, dpop: bool) -> Refusal {
        let mut refusal = Refusal::of(
            error,
            self.0.accepted,
            dpop,
            &self.0.dpop_algs,
            self.resource_metadata_url(),
        );
        if matches!(error, AuthError::UseDpopNonce(_))
            && let Some(nonce) = self.dpop_nonce()
        {
            refusal.set_header("dpop-nonce", nonce);
        }
        refusal
    }
}
