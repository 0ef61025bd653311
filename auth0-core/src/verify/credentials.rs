//! The credentials of a request: the `Authorization` and `DPoP` headers read strictly (RFC 6750
//! §2.1, RFC 9449 §4), and the request URL a proof must name.

use std::borrow::Cow;

use super::{Denied, Recorded};
use crate::answer::{AuthError, Challenges};
use crate::auth0::Auth0;
use crate::claims::Scheme;
use crate::dpop::{self, UrlParts};

impl Auth0 {
    /// Reads the `Authorization` header (exactly one), the scheme and the DPoP proof.
    pub(super) fn credentials<'r, R: RequestParts>(&self, req: &'r R) -> Result<Credentials<'r>, Denied> {
        let mut lines = req.header_values("authorization");
        let line = lines.next().ok_or(AuthError::MissingCredentials)?;
        let unsupported = |line: &[u8]| {
            let reason = if line.starts_with(b"eyJ") {
                "the Authorization header has no scheme: send `Authorization: Bearer <token>`"
            } else {
                "the Authorization header's scheme is neither Bearer nor DPoP"
            };
            Denied::from(AuthError::MissingCredentials).because(|| reason.to_owned())
        };
        if lines.next().is_some() {
            return Err(
                AuthError::InvalidRequest("the request has more than one Authorization header").into(),
            );
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| AuthError::InvalidRequest("the Authorization header is malformed"))?;
        let (scheme, token) = line.split_once(' ').unwrap_or((line, ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Scheme::Dpop
        } else {
            return Err(unsupported(line.as_bytes()));
        };
        let dpop = scheme == Scheme::Dpop;
        let bad = |error| Denied::new(error, dpop);
        let token = token.trim_start_matches(' ');
        if token.is_empty() {
            return Err(bad(AuthError::InvalidRequest(
                "the Authorization header has no token",
            )));
        }
        if !is_b64token(token) {
            return Err(bad(AuthError::InvalidRequest(
                "the Authorization header is malformed",
            )));
        }
        let mut proofs = req.header_values("dpop");
        let proof = proofs.next();
        let proof = match (scheme, self.0.accepted) {
            (Scheme::Bearer, Challenges::Dpop) => {
                return Err(bad(AuthError::InvalidRequest(
                    "this API accepts only DPoP-bound access tokens",
                )));
            }
            (Scheme::Dpop, Challenges::Bearer) => {
                return Err(bad(AuthError::InvalidRequest(
                    "this API does not accept the DPoP scheme",
                )));
            }
            (Scheme::Bearer, Challenges::Both) if proof.is_some() => {
                return Err(bad(AuthError::InvalidRequest(
                    "a DPoP proof was sent with a Bearer token",
                )));
            }
            (Scheme::Bearer, _) => None,
            (Scheme::Dpop, _) => {
                let proof = proof.ok_or(bad(AuthError::InvalidRequest(
                    "the DPoP scheme needs a DPoP proof header",
                )))?;
                // RFC 9449 §4.3 checks 1 and 2: one header line, one compact JWS.
                if proofs.next().is_some() {
                    return Err(bad(AuthError::InvalidDpopProof(
                        "the request has more than one DPoP proof",
                    )));
                }
                match std::str::from_utf8(proof) {
                    Ok(p) if !p.is_empty() && is_b64token(p) => Some(p),
                    _ => return Err(bad(AuthError::InvalidDpopProof("the DPoP proof is malformed"))),
                }
            }
        };
        let url = match proof {
            // A Host with path or query characters would move the real path out of the URL the
            // proof is compared with (the DPoP `htu` injection fixed in Auth0's Node SDK 1.9.1).
            Some(_) if !is_authority(req.host()) => {
                return Err(bad(AuthError::InvalidRequest("the Host header is malformed")));
            }
            Some(_) => Cow::Owned(self.request_url(req)),
            None => Cow::Borrowed(""),
        };
        Ok(Credentials {
            scheme,
            token,
            proof,
            method: req.method(),
            url,
            granted: None,
            recorded: None,
        })
    }

    pub(super) fn request_url<R: RequestParts>(&self, req: &R) -> String {
        let first = |name| {
            req.header_values(name)
                .next()
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        let parts = UrlParts {
            scheme: req.scheme(),
            host: req.host(),
            path: req.path(),
            forwarded_proto: first("x-forwarded-proto"),
            forwarded_host: first("x-forwarded-host"),
            forwarded_prefix: first("x-forwarded-prefix"),
        };
        let trusted = self.0.trust_proxy
            && (self.0.trusted_proxies.is_empty()
                || match req.peer() {
                    Some(ip) => self.0.trusted_proxies.iter().any(|c| c.contains(ip)),
                    None => {
                        self.warn_peer_unknown();
                        false
                    }
                });
        dpop::request_url(&parts, trusted)
    }

    /// Forwarded headers need a trusted peer, and this adapter cannot tell the peer: say so once,
    /// since every DPoP request from the proxy is then refused as made for another URL.
    #[cold]
    fn warn_peer_unknown(&self) {
        if self
            .0
            .peer_unknown_warned
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            target: "auth0_runtime",
            "AUTH0_TRUSTED_PROXIES is set, but the peer address of this request is unknown, so its \
             forwarded headers are ignored and DPoP proofs made for the public URL are refused; on \
             axum, serve with `app.into_make_service_with_connect_info::<std::net::SocketAddr>()`"
        );
    }
}

/// What the verifier reads from a request: method, URL parts and headers, no framework types.
pub trait RequestParts {
    /// The request method, as sent (`GET`).
    fn method(&self) -> &str;
    /// Every value of the header `name` (given in lower case), one per header line, in order.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
    /// The scheme of the connection (`http` or `https`).
    fn scheme(&self) -> &str;
    /// The authority the request was sent to (`Host`), with its port if any.
    fn host(&self) -> &str;
    /// The path, without the query.
    fn path(&self) -> &str;
    /// Every header line as (name in lower case, value). Only read for a domains resolver
    /// ([`Auth0Config::domains_resolver`](crate::Auth0Config::domains_resolver)); an adapter without it gives the resolver no headers.
    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
    /// The address of the peer (the proxy, behind one), if known: forwarded headers are honoured
    /// only from trusted proxies when a list of them is configured.
    fn peer(&self) -> Option<std::net::IpAddr> {
        None
    }
}

pub(crate) struct OwnedCredentials {
    pub(super) scheme: Scheme,
    pub(super) token: String,
    pub(super) proof: Option<String>,
    pub(super) method: String,
    pub(super) url: String,
    pub(super) granted: Option<String>,
    pub(super) recorded: Option<Recorded>,
}

/// The credentials of one request, borrowed from it.
pub(crate) struct Credentials<'a> {
    pub(super) scheme: Scheme,
    pub(super) token: &'a str,
    pub(super) proof: Option<&'a str>,
    pub(super) method: &'a str,
    pub(super) url: Cow<'a, str>,
    /// An issuer outside the static list that the domains resolver allowed for this request.
    pub(super) granted: Option<&'a str>,
    /// The proof an earlier verification of this request (another validator's) recorded.
    pub(super) recorded: Option<&'a Recorded>,
}

impl Credentials<'_> {
    pub(super) fn to_owned(&self) -> OwnedCredentials {
        OwnedCredentials {
            scheme: self.scheme,
            token: self.token.to_owned(),
            proof: self.proof.map(str::to_owned),
            method: self.method.to_owned(),
            url: self.url.clone().into_owned(),
            granted: self.granted.map(str::to_owned),
            recorded: self.recorded.cloned(),
        }
    }
}

impl OwnedCredentials {
    pub(super) fn borrow(&self) -> Credentials<'_> {
        Credentials {
            scheme: self.scheme,
            token: &self.token,
            proof: self.proof.as_deref(),
            method: &self.method,
            url: Cow::Borrowed(&self.url),
            granted: self.granted.as_deref(),
            recorded: self.recorded.as_ref(),
        }
    }
}

/// `host[:port]` or `[v6]:port`, nothing else (RFC 3986 reg-name, IP literal, port).
pub(super) fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'[' | b']'))
}

/// RFC 6750 §2.1 `b64token` characters before the `=` padding, as a table: the check runs over
/// every token on every request, and a branch-free lookup is several times faster than the
/// comparisons.
pub(super) const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    table
};

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`: padding only at
/// the end, after at least one other character.
pub(super) fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().fold(true, |ok, b| ok & B64TOKEN[usize::from(b)])
}
