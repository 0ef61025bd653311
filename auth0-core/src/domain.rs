//! Which issuers are trusted: domain normalisation, and the per-request domains resolver.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::answer::{ConfigError, invalid, shown};

/// Why a [`Auth0Config::domains_resolver`](crate::Auth0Config::domains_resolver) could not answer; logged, never shown to clients.
pub type ResolverError = Box<dyn std::error::Error + Send + Sync>;

/// The resolver's future, boxed.
pub(crate) type ResolverFuture = Pin<Box<dyn Future<Output = Result<Vec<String>, ResolverError>> + Send>>;

/// A domains resolver, type-erased.
pub(crate) type DomainsResolver = Arc<dyn Fn(DomainRequest) -> ResolverFuture + Send + Sync>;

/// What a [`Auth0Config::domains_resolver`](crate::Auth0Config::domains_resolver) is told about a request whose token names an issuer
/// that is not in the static list.
#[derive(Clone)]
pub struct DomainRequest {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) issuer: String,
}

/// Headers whose values are credentials: their values never reach a log.
const SECRET_HEADERS: [&str; 4] = ["authorization", "dpop", "cookie", "proxy-authorization"];

impl fmt::Debug for DomainRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let secret = SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
                (name.as_str(), if secret { "<redacted>" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("DomainRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl DomainRequest {
    /// The URL the request was sent to (`http://api.example.com/api/private`), from the connection
    /// and `Host`, or from forwarded headers when the proxy is trusted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first value of the header `name` (any letter case) that is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header line with a text value, names in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The token's `iss`, **not verified yet**: only which tenant the caller claims to come from.
    pub fn unverified_issuer(&self) -> &str {
        &self.issuer
    }
}

/// The issuer URL of a domain as a resolver returns it (`tenant.auth0.com`,
/// `https://tenant.auth0.com/`), or `None` if it is not one.
pub(crate) fn issuer_of(domain: &str) -> Option<String> {
    normalize_domain("domains_resolver", domain)
        .ok()
        .map(|host| format!("https://{host}/"))
}

pub(crate) fn normalize_domain(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let d = raw.trim();
    let lower = d.to_ascii_lowercase();
    // The host a mistaken value most likely meant (after a scheme, before a path): the fix.
    let meant = || {
        let rest = d.split_once("://").map_or(d, |(_, rest)| rest);
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        (!host.is_empty()).then(|| format!("set it to {}", shown(&host.to_ascii_lowercase())))
    };
    let fix = |problem: &str| match meant() {
        Some(fix) => invalid(var, format!("{problem}: {fix}, not {}", shown(d))),
        None => invalid(var, format!("{problem}, not {}", shown(d))),
    };
    if d.contains('@') {
        // The value may hold a password: it is never shown.
        let problem = "must not contain credentials (the value is not shown)";
        // Only what follows the last `@`: a password cannot hide there.
        let host = d
            .rsplit_once('@')
            .and_then(|(_, after)| after.split(['/', '?', '#']).next())
            .filter(|host| !host.is_empty());
        return Err(match host {
            Some(host) => invalid(
                var,
                format!(
                    "{problem}: set it to the bare host {}",
                    shown(&host.to_ascii_lowercase())
                ),
            ),
            None => invalid(
                var,
                format!("{problem}: use a bare host like tenant.us.auth0.com"),
            ),
        });
    }
    if lower.starts_with("http://") {
        return Err(fix(
            "must be a host like tenant.us.auth0.com, not a URL with http:// (keys are only fetched over https)",
        ));
    }
    let host = if lower.starts_with("https://") { &d[8..] } else { d };
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.is_empty() {
        return Err(invalid(
            var,
            "must not be empty: set it to a host like tenant.us.auth0.com",
        ));
    }
    if host.contains("://") {
        return Err(fix("must be a host like tenant.us.auth0.com, not a URL"));
    }
    if host.contains(['/', '?', '#']) {
        return Err(fix(
            "must be a bare host like tenant.us.auth0.com, without a path, query or fragment",
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !name_ok {
        return Err(invalid(
            var,
            format!(
                "has an invalid host name: use a host like tenant.us.auth0.com, not {}",
                shown(host)
            ),
        ));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(invalid(
            var,
            format!(
                "has an invalid port: use a host like localhost:8443, not {}",
                shown(host)
            ),
        ));
    }
    Ok(host.to_ascii_lowercase())
}
