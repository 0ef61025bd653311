//! The answers: a refused request's status, `error` code, description and `WWW-Authenticate`
//! challenge ([`AuthError`]), and a refused configuration ([`ConfigError`]).
//!
//! Descriptions are `&'static str` on purpose: a description can only come from this crate's fixed
//! vocabulary, so nothing a client sends can be echoed back, and every description is safe inside a
//! quoted-string.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;

/// A bad setting, found at startup. The message names the variable and says what a good value
/// looks like.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is missing.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The environment variable (or, in code, the setting of the same name).
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A setting has a value that cannot work.
    #[error("{var} {problem}")]
    Invalid {
        /// The environment variable (or, in code, the setting of the same name).
        var: &'static str,
        /// What is wrong and what a good value looks like.
        problem: String,
    },
    /// `init` or `init_from_env` was called a second time.
    #[error("auth0 is already initialised: call `init` or `init_from_env` once, at startup")]
    AlreadyInitialized,
}

/// The message itself, so that `init_from_env().expect("Auth0 configuration")` and a `main`
/// returning the error print the fix rather than a struct dump.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConfigError").field(&self.to_string()).finish()
    }
}

/// Why a request was refused.
///
/// Each variant maps to one row of the answer table: see [`AuthError::status`],
/// [`AuthError::code`]; the `WWW-Authenticate` challenge follows from it and the accepted schemes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header, or a scheme this API does not accept: 401 with a bare challenge.
    #[error("no credentials")]
    MissingCredentials,
    /// The request is malformed: 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The access token is not acceptable: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The DPoP proof is not acceptable: 401 `invalid_dpop_proof` (RFC 9449 §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The token is valid but lacks a required scope or permission: 403 `insufficient_scope`.
    #[error("insufficient scope: {description}")]
    InsufficientScope {
        /// The scopes (or permissions) the route requires, space-delimited.
        required: Cow<'static, str>,
        /// What is missing, in words.
        description: &'static str,
    },
    /// The token is valid but its authentication is not strong enough, or too old, for the route
    /// (RFC 9470 step-up): 401 `insufficient_user_authentication`, with `acr_values` and/or
    /// `max_age` in the challenge so the client can ask the user to authenticate again.
    #[error("insufficient user authentication: {description}")]
    InsufficientUserAuthentication {
        /// The authentication context classes the route accepts, space-delimited (may be empty).
        acr_values: Cow<'static, str>,
        /// The longest time since the user authenticated that the route accepts, in seconds.
        max_age: Option<u64>,
        /// What is wrong, in words.
        description: &'static str,
    },
    /// DPoP server nonces are on and the proof carries no valid `nonce`: 401 `use_dpop_nonce`, with
    /// the current nonce in the `DPoP-Nonce` header (RFC 9449 §8); retry with a proof that has it.
    #[error("DPoP nonce required: {0}")]
    UseDpopNonce(&'static str),
    /// The issuer's keys cannot be fetched and none are cached, or the DPoP replay store cannot
    /// record the proof (full, or unreachable): 503 `temporarily_unavailable`.
    #[error("temporarily unavailable: {0}")]
    Unavailable(&'static str),
    /// Not configured, or an internal fault: 500 `internal_server_error`.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Seconds a client is asked to wait after a 503.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 30;

/// Which schemes the API accepts; decides the shape of every challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenges {
    /// Bearer only (DPoP disabled).
    Bearer,
    /// Bearer and DPoP (the default).
    Both,
    /// DPoP only (DPoP required).
    Dpop,
}

impl AuthError {
    /// The HTTP status code of this answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingCredentials
            | Self::InvalidToken(_)
            | Self::InvalidDpopProof(_)
            | Self::UseDpopNonce(_)
            | Self::InsufficientUserAuthentication { .. } => 401,
            Self::InvalidRequest(_) => 400,
            Self::InsufficientScope { .. } => 403,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The `error` code of the body (and of the challenge, where there is one).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce(_) => "use_dpop_nonce",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::InsufficientUserAuthentication { .. } => "insufficient_user_authentication",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "internal_server_error",
        }
    }

    /// A sentence for people, from a fixed vocabulary.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "authentication is required",
            Self::InvalidRequest(d)
            | Self::InvalidToken(d)
            | Self::InvalidDpopProof(d)
            | Self::UseDpopNonce(d)
            | Self::Unavailable(d)
            | Self::Internal(d) => d,
            Self::InsufficientScope { description, .. }
            | Self::InsufficientUserAuthentication { description, .. } => description,
        }
    }

    /// Seconds for `Retry-After`, on the answers that carry one.
    pub fn retry_after(&self) -> Option<u32> {
        matches!(self, Self::Unavailable(_)).then_some(RETRY_AFTER_SECONDS)
    }

    /// The `WWW-Authenticate` value for this answer, or `None` where none belongs (5xx).
    ///
    /// RFC 6750 §3: a request without credentials gets a bare challenge; every other 4xx names its
    /// error on the challenge of the scheme it concerns. RFC 9449 §7.1: proof errors go on `DPoP`.
    /// `dpop` says the request used the DPoP scheme, so its error belongs on the DPoP challenge.
    /// RFC 9728 §5.1: with metadata published, every challenge names it (`resource_metadata`).
    pub(crate) fn challenge(
        &self,
        accepted: Challenges,
        dpop: bool,
        dpop_algs: &str,
        resource_metadata: Option<&str>,
    ) -> Option<String> {
        let error = match self {
            Self::MissingCredentials => None,
            Self::Unavailable(_) | Self::Internal(_) => return None,
            _ => Some(self),
        };
        // The error goes on the one challenge there is, or, when both are offered, on the scheme
        // the request used (a proof error is always about DPoP).
        let on_dpop = match accepted {
            Challenges::Bearer => false,
            Challenges::Dpop => true,
            Challenges::Both => dpop || matches!(self, Self::InvalidDpopProof(_) | Self::UseDpopNonce(_)),
        };
        let params = |here: bool| -> String {
            let Some(e) = error.filter(|_| here) else {
                return String::new();
            };
            let mut p = format!(
                "error=\"{}\", error_description=\"{}\"",
                e.code(),
                e.description()
            );
            if let Self::InsufficientScope { required, .. } = e {
                let _ = write!(p, ", scope=\"{required}\"");
            }
            // RFC 9470 §3; the values were checked as scope-tokens, safe in a quoted-string.
            if let Self::InsufficientUserAuthentication {
                acr_values, max_age, ..
            } = e
            {
                if !acr_values.is_empty() {
                    let _ = write!(p, ", acr_values=\"{acr_values}\"");
                }
                if let Some(max_age) = max_age {
                    let _ = write!(p, ", max_age=\"{max_age}\"");
                }
            }
            p
        };
        let mut out = String::with_capacity(160);
        if accepted != Challenges::Dpop {
            out.push_str("Bearer realm=\"api\"");
            let p = params(!on_dpop);
            if !p.is_empty() {
                let _ = write!(out, ", {p}");
            }
            if let Some(url) = resource_metadata {
                let _ = write!(out, ", resource_metadata=\"{url}\"");
            }
        }
        if accepted != Challenges::Bearer {
            if !out.is_empty() {
                out.push_str(", ");
            }
            // RFC 9449 §7.1's example, and the reference SDK: error parameters, then `algs`.
            let p = params(on_dpop);
            out.push_str("DPoP ");
            if !p.is_empty() {
                let _ = write!(out, "{p}, ");
            }
            let _ = write!(out, "algs=\"{dpop_algs}\"");
            if let Some(url) = resource_metadata {
                let _ = write!(out, ", resource_metadata=\"{url}\"");
            }
        }
        Some(out)
    }
}

/// A refused request as every adapter answers it: status, header lines and JSON body. The
/// validator that refused the request renders it ([`Auth0::refusal`](crate::Auth0::refusal)) and
/// passes it through [`Auth0Config::on_refusal`](crate::Auth0Config::on_refusal), the one place to
/// customise every refusal, whatever the framework.
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

pub(crate) fn invalid(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        problem: problem.into(),
    }
}

/// A setting's value as a message shows it: quoted and escaped (so blanks and control characters
/// are visible), cut after 64 characters. Never used for secrets.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_the_accepted_schemes() {
        let bare = AuthError::MissingCredentials;
        assert_eq!(
            bare.challenge(Challenges::Bearer, false, "ES256", None)
                .as_deref(),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(
            bare.challenge(Challenges::Both, false, "ES256", None).as_deref(),
            Some("Bearer realm=\"api\", DPoP algs=\"ES256\"")
        );
        assert_eq!(
            bare.challenge(Challenges::Dpop, false, "ES256", None).as_deref(),
            Some("DPoP algs=\"ES256\"")
        );

        let token = AuthError::InvalidToken("the access token has expired");
        assert_eq!(
            token.challenge(Challenges::Both, false, "ES256", None).as_deref(),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", \
                 error_description=\"the access token has expired\", DPoP algs=\"ES256\""
            )
        );
        let proof = AuthError::InvalidDpopProof("the DPoP proof has expired");
        assert_eq!(
            proof.challenge(Challenges::Both, false, "ES256", None).as_deref(),
            Some(
                "Bearer realm=\"api\", DPoP error=\"invalid_dpop_proof\", \
                 error_description=\"the DPoP proof has expired\", algs=\"ES256\""
            )
        );
        assert_eq!(
            AuthError::Internal("x").challenge(Challenges::Both, false, "ES256", None),
            None
        );
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let e = AuthError::InsufficientScope {
            required: "read:messages".into(),
            description: "the access token lacks a required scope",
        };
        assert_eq!(e.status(), 403);
        assert!(
            e.challenge(Challenges::Bearer, false, "ES256", None)
                .is_some_and(|c| c.ends_with("scope=\"read:messages\""))
        );
    }

    #[test]
    fn step_up_names_what_the_route_requires() {
        let e = AuthError::InsufficientUserAuthentication {
            acr_values: "urn:mfa urn:hwk".into(),
            max_age: Some(300),
            description: "a different authentication level is required",
        };
        assert_eq!((e.status(), e.code()), (401, "insufficient_user_authentication"));
        assert_eq!(
            e.challenge(Challenges::Bearer, false, "ES256", None).as_deref(),
            Some(
                "Bearer realm=\"api\", error=\"insufficient_user_authentication\", \
                 error_description=\"a different authentication level is required\", \
                 acr_values=\"urn:mfa urn:hwk\", max_age=\"300\""
            )
        );
        let only_age = AuthError::InsufficientUserAuthentication {
            acr_values: "".into(),
            max_age: Some(60),
            description: "more recent authentication is required",
        };
        assert!(
            only_age
                .challenge(Challenges::Bearer, false, "ES256", None)
                .is_some_and(|c| c.ends_with("required\", max_age=\"60\"") && !c.contains("acr_values"))
        );
    }

    #[test]
    fn every_challenge_names_the_resource_metadata() {
        let url = Some("https://api.example.com/.well-known/oauth-protected-resource");
        assert_eq!(
            AuthError::MissingCredentials
                .challenge(Challenges::Both, false, "ES256", url)
                .as_deref(),
            Some(
                "Bearer realm=\"api\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\", \
                 DPoP algs=\"ES256\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
            )
        );
        let expired = AuthError::InvalidToken("the access token has expired");
        assert_eq!(
            expired
                .challenge(Challenges::Bearer, false, "ES256", url)
                .as_deref(),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the access token has expired\", \
                 resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
            )
        );
    }

    #[test]
    fn a_refusal_carries_its_headers_and_a_hook_can_replace_them() {
        let mut refusal = Refusal::default_for(&AuthError::Unavailable("the signing keys cannot be fetched"));
        assert_eq!(refusal.status, 503);
        assert_eq!(refusal.header("Retry-After"), Some("30"));
        assert_eq!(refusal.header("www-authenticate"), None);
        assert_eq!(refusal.header("content-type"), Some("application/json"));
        refusal.set_header("Cache-Control", "private");
        assert_eq!(refusal.header("cache-control"), Some("private"));
        assert_eq!(
            refusal
                .headers
                .iter()
                .filter(|(n, _)| n == "cache-control")
                .count(),
            1
        );
        assert_eq!(
            refusal.body,
            r#"{"detail":{"error":"temporarily_unavailable","error_description":"the signing keys cannot be fetched"}}"#
        );
    }
}
