//! The validator: scheme dispatch, access-token verification, DPoP binding, scope checks.
//!
//! Works on plain request parts ([`RequestParts`]); the Actix adapter in `actix.rs` is a thin layer
//! over it. Verification is synchronous when the signing key is cached (the hot path takes no lock
//! and does no I/O); only a missing key sends it through [`Auth0::verify_pending`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::cache::{self, TokenCache};
use crate::claims::{Claims, Scheme, TokenClaims};
use crate::config::{Auth0Config, Cidr, ConfigError, ErrorHandler};
use crate::dpop::{self, MemoryReplayStore, ProofRequest, ProofSettings, ReplayStore, UrlParts};
use crate::error::{AuthError, Challenges};
use crate::jws::{self, JwsError};
use crate::keys::{KeyError, KeySettings, KeyStore, VerifyingKey};

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
    /// The address of the peer (the proxy, behind one), if known: forwarded headers are honoured
    /// only from trusted proxies when a list of them is configured.
    fn peer(&self) -> Option<std::net::IpAddr> {
        None
    }
}

/// A verified request: the token's claims and the scheme it came with.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) claims: Arc<TokenClaims>,
    pub(crate) scheme: Scheme,
}

/// A refusal and the scheme it concerns (it decides which challenge carries the error).
#[derive(Debug, Clone)]
pub(crate) struct Denied {
    pub(crate) error: AuthError,
    pub(crate) dpop: bool,
}

impl From<AuthError> for Denied {
    fn from(error: AuthError) -> Self {
        Self { error, dpop: false }
    }
}

/// The outcome of the synchronous attempt.
pub(crate) enum Attempt {
    Done(Result<Verified, Denied>),
    /// The signing key is not cached: finish with [`Auth0::verify_pending`].
    NeedsKey(Pending),
}

/// Everything needed to finish a verification after the key is fetched; owns its data.
pub(crate) struct Pending {
    issuer: String,
    kid: String,
    request: OwnedCredentials,
}

struct OwnedCredentials {
    scheme: Scheme,
    token: String,
    proof: Option<String>,
    method: String,
    url: String,
}

/// The credentials of one request, borrowed from it.
struct Credentials<'a> {
    scheme: Scheme,
    token: &'a str,
    proof: Option<&'a str>,
    method: &'a str,
    url: Cow<'a, str>,
}

impl Credentials<'_> {
    fn to_owned(&self) -> OwnedCredentials {
        OwnedCredentials {
            scheme: self.scheme,
            token: self.token.to_owned(),
            proof: self.proof.map(str::to_owned),
            method: self.method.to_owned(),
            url: self.url.clone().into_owned(),
        }
    }
}

impl OwnedCredentials {
    fn borrow(&self) -> Credentials<'_> {
        Credentials {
            scheme: self.scheme,
            token: &self.token,
            proof: self.proof.as_deref(),
            method: &self.method,
            url: Cow::Borrowed(&self.url),
        }
    }
}

/// Verifies Auth0 access tokens. Built once from an [`Auth0Config`]; cheap to clone (shared).
///
/// Most applications call [`crate::init_from_env`] once and never touch this type. Place one in
/// Actix app data (`App::new().app_data(auth0.clone())`) to override the global validator, e.g.
/// for tests or for several tenants in one process.
#[derive(Clone)]
pub struct Auth0(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    issuers: Vec<String>,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    pub(crate) accepted: Challenges,
    pub(crate) dpop_algs: String,
    proof: ProofSettings,
    leeway: i64,
    require_at_jwt: bool,
    trust_proxy: bool,
    trusted_proxies: Vec<Cidr>,
    keys: KeyStore,
    token_cache: TokenCache,
    replay: Arc<dyn ReplayStore>,
    pub(crate) error_handler: Option<ErrorHandler>,
    pub(crate) exchange: crate::exchange::Exchange,
}

impl fmt::Debug for Auth0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0")
            .field("issuers", &self.0.issuers)
            .field("audiences", &self.0.audiences)
            .field("accepted", &self.0.accepted)
            .finish_non_exhaustive()
    }
}

impl Auth0 {
    /// Checks `config` and builds the validator (and its one HTTP client).
    pub fn new(config: Auth0Config) -> Result<Self, ConfigError> {
        crate::install_crypto_provider();
        let issuers = config.validate()?;
        let trusted_proxies = config.proxy_blocks()?;
        let http = match config.http_client.clone() {
            Some(client) => client,
            None => build_client(&config)?,
        };
        let exchange = crate::exchange::Exchange::new(&config, http.clone())?;
        let accepted = match (config.dpop_enabled, config.dpop_required) {
            (false, _) => Challenges::Bearer,
            (true, false) => Challenges::Both,
            (true, true) => Challenges::Dpop,
        };
        let dpop_algs = config
            .dpop_algorithms
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        let keys = KeyStore::new(
            http,
            KeySettings {
                cache_ttl: config.cache_ttl,
                cache_max_entries: config.cache_max_entries,
                refetch_cooldown: config.refetch_cooldown,
                algorithms: config.algorithms.clone(),
            },
        );
        Ok(Self(Arc::new(Inner {
            issuers,
            audiences: config.audiences,
            algorithms: config.algorithms,
            accepted,
            dpop_algs,
            proof: ProofSettings {
                algorithms: config.dpop_algorithms,
                iat_leeway: secs(config.dpop_iat_leeway),
                iat_offset: secs(config.dpop_iat_offset),
                max_jti_len: ProofSettings::DEFAULT_MAX_JTI_LEN,
            },
            leeway: secs(config.leeway),
            require_at_jwt: config.require_at_jwt,
            trust_proxy: config.trust_proxy,
            trusted_proxies,
            keys,
            token_cache: TokenCache::new(config.token_cache_entries),
            replay: config
                .replay_store
                .unwrap_or_else(|| Arc::new(MemoryReplayStore::default())),
            error_handler: config.error_handler,
            exchange,
        })))
    }

    /// Verifies a request given as plain parts, without Actix: the entry point for another
    /// framework's adapter (and for benchmarks). Completes without awaiting anything when the
    /// signing key is cached. Route requirements are the caller's: see [`TokenClaims::has_scope`].
    ///
    /// # Errors
    /// The refusal, as the table in [`AuthError`] describes it.
    pub async fn authenticate<T: serde::de::DeserializeOwned + 'static>(
        &self,
        req: &impl RequestParts,
    ) -> Result<Claims<T>, AuthError> {
        let verified = match self.attempt(req) {
            Attempt::Done(result) => result,
            Attempt::NeedsKey(pending) => self.verify_pending(pending).await,
        }
        .map_err(|d| d.error)?;
        let custom = verified.claims.custom::<T>().map_err(|_| {
            AuthError::InvalidToken("the access token's custom claims do not have the expected shape")
        })?;
        Ok(Claims::new(verified.claims, verified.scheme, custom))
    }

    /// Verifies a request: the synchronous part. Ends with the answer unless the signing key
    /// has to be fetched first.
    pub(crate) fn attempt<R: RequestParts>(&self, req: &R) -> Attempt {
        let credentials = match self.credentials(req) {
            Ok(c) => c,
            Err(denied) => return Attempt::Done(Err(denied)),
        };
        self.verify_credentials(&credentials, None)
    }

    /// Finishes a verification whose key was not cached.
    pub(crate) async fn verify_pending(&self, pending: Pending) -> Result<Verified, Denied> {
        let dpop = pending.request.scheme == Scheme::DPoP;
        let key = self
            .0
            .keys
            .fetch(&pending.issuer, &pending.kid)
            .await
            .map_err(|e| Denied {
                error: match e {
                    KeyError::UnknownKid => {
                        AuthError::InvalidToken("the access token is signed with an unknown key")
                    }
                    KeyError::Unavailable => AuthError::Unavailable(
                        "the signing keys cannot be fetched right now, try again later",
                    ),
                },
                dpop,
            })?;
        match self.verify_credentials(&pending.request.borrow(), Some(key)) {
            Attempt::Done(result) => result,
            // The key was handed in, so the attempt cannot ask for it again.
            Attempt::NeedsKey(_) => Err(Denied {
                error: AuthError::Internal("key lookup failed"),
                dpop,
            }),
        }
    }

    /// Reads the `Authorization` header (exactly one), the scheme and the DPoP proof.
    fn credentials<'r, R: RequestParts>(&self, req: &'r R) -> Result<Credentials<'r>, Denied> {
        let mut lines = req.header_values("authorization");
        let line = lines.next().ok_or(AuthError::MissingCredentials)?;
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
            Scheme::DPoP
        } else {
            return Err(AuthError::MissingCredentials.into());
        };
        let dpop = scheme == Scheme::DPoP;
        let bad = |error| Denied { error, dpop };
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
            (Scheme::DPoP, Challenges::Bearer) => {
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
            (Scheme::DPoP, _) => {
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
        })
    }

    fn request_url<R: RequestParts>(&self, req: &R) -> String {
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
                || req
                    .peer()
                    .is_some_and(|ip| self.0.trusted_proxies.iter().any(|c| c.contains(ip))));
        dpop::request_url(&parts, trusted)
    }

    fn verify_credentials(&self, c: &Credentials<'_>, fetched: Option<Arc<VerifyingKey>>) -> Attempt {
        let dpop = c.scheme == Scheme::DPoP;
        let deny = |error| Attempt::Done(Err(Denied { error, dpop }));
        let claims = match self.verify_token(c.token, fetched) {
            Ok(claims) => claims,
            Err(TokenFailure::Denied(error)) => return deny(error),
            Err(TokenFailure::NeedsKey { issuer, kid }) => {
                return Attempt::NeedsKey(Pending {
                    issuer,
                    kid,
                    request: c.to_owned(),
                });
            }
        };
        let bound = claims.jkt();
        let Some(proof) = c.proof else {
            if bound.is_some() {
                return deny(AuthError::InvalidToken(
                    "the access token is bound to a DPoP key and must be sent with the DPoP scheme",
                ));
            }
            return Attempt::Done(Ok(Verified {
                claims,
                scheme: c.scheme,
            }));
        };
        let Some(bound) = bound else {
            return deny(AuthError::InvalidToken(
                "the access token is not bound to a DPoP key",
            ));
        };
        let request = ProofRequest {
            method: c.method,
            url: &c.url,
            access_token: c.token,
            now: now(),
        };
        let verified = match dpop::verify_proof(proof, &request, &self.0.proof) {
            Ok(v) => v,
            Err(error) => return deny(error),
        };
        if verified.jkt != bound {
            return deny(AuthError::InvalidToken(
                "the access token is bound to another key than the DPoP proof",
            ));
        }
        let keep_until = verified.replay_expires_at(&self.0.proof);
        if !self
            .0
            .replay
            .check_and_record(&verified.jkt, &verified.jti, keep_until)
        {
            return deny(AuthError::InvalidDpopProof(
                "the DPoP proof has already been used",
            ));
        }
        Attempt::Done(Ok(Verified {
            claims,
            scheme: Scheme::DPoP,
        }))
    }

    /// RFC 8725 order: structure, header, issuer (before any I/O), key, signature, claims.
    fn verify_token(
        &self,
        token: &str,
        fetched: Option<Arc<VerifyingKey>>,
    ) -> Result<Arc<TokenClaims>, TokenFailure> {
        let cache = &self.0.token_cache;
        let generation = self.0.keys.generation();
        let cache_key = cache.enabled().then(|| cache::Key::of(token));
        if let Some(claims) = cache_key.as_ref().and_then(|k| cache.get(k, generation)) {
            // Same bytes, same keys: only time can have changed the verdict.
            self.check_claims(&claims, now()).map_err(TokenFailure::Denied)?;
            return Ok(claims);
        }
        let jws = jws::parse(token).map_err(|e| {
            TokenFailure::Denied(AuthError::InvalidToken(match e {
                JwsError::TooLarge => "the access token is too large",
                JwsError::Malformed | JwsError::NotJson => "the access token is malformed",
            }))
        })?;
        let header: JoseHeader<'_> = serde_json::from_slice(&jws.header)
            .map_err(|_| TokenFailure::invalid("the access token's header is malformed"))?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.0.algorithms.contains(a))
            .ok_or(TokenFailure::invalid(
                "the access token is signed with an algorithm this API does not accept",
            ))?;
        if header.crit {
            return Err(TokenFailure::invalid(
                "the access token has critical header parameters this API does not support",
            ));
        }
        if !self.typ_accepted(header.typ.as_deref()) {
            return Err(TokenFailure::invalid("the access token has an unexpected type"));
        }
        let kid = header
            .kid
            .ok_or(TokenFailure::invalid("the access token has no key id"))?;
        let claims = TokenClaims::from_payload(&jws.payload).map_err(TokenFailure::invalid)?;
        let issuer = self
            .0
            .issuers
            .iter()
            .find(|i| **i == claims.iss)
            .ok_or(TokenFailure::invalid(
                "the access token was issued by an issuer this API does not trust",
            ))?;
        let key = match fetched.or_else(|| self.0.keys.cached(issuer, &kid)) {
            Some(key) => key,
            None => {
                return Err(TokenFailure::NeedsKey {
                    issuer: issuer.clone(),
                    kid: kid.into_owned(),
                });
            }
        };
        let verifier = key.for_alg(alg).ok_or(TokenFailure::invalid(
            "the access token's signing key cannot be used with its algorithm",
        ))?;
        verifier
            .verify_sig(jws.signing_input.as_bytes(), &jws.signature)
            .map_err(|_| TokenFailure::invalid("the access token's signature is invalid"))?;
        self.check_claims(&claims, now()).map_err(TokenFailure::Denied)?;
        let claims = Arc::new(claims);
        if let Some(key) = cache_key {
            cache.insert(key, generation, Arc::clone(&claims));
        }
        Ok(claims)
    }

    fn check_claims(&self, claims: &TokenClaims, now: i64) -> Result<(), AuthError> {
        let leeway = self.0.leeway;
        if now >= claims.exp.saturating_add(leeway) {
            return Err(AuthError::InvalidToken("the access token has expired"));
        }
        if claims.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(AuthError::InvalidToken("the access token is not valid yet"));
        }
        if !self.0.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(AuthError::InvalidToken(
                "the access token is not intended for this API",
            ));
        }
        Ok(())
    }

    fn typ_accepted(&self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else {
            return !self.0.require_at_jwt;
        };
        let typ = strip_prefix_ignore_case(typ, "application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case("at+jwt") || (!self.0.require_at_jwt && typ.eq_ignore_ascii_case("jwt"))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

enum TokenFailure {
    Denied(AuthError),
    NeedsKey { issuer: String, kid: String },
}

impl TokenFailure {
    fn invalid(description: &'static str) -> Self {
        Self::Denied(AuthError::InvalidToken(description))
    }
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    /// Present at all, even `null`: RFC 7515 §4.1.11 extensions this API does not understand.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// `host[:port]` or `[v6]:port`, nothing else (RFC 3986 reg-name, IP literal, port).
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'[' | b']'))
}

/// RFC 6750 §2.1 `b64token` characters, as a table: the check runs over every token on every
/// request, and a branch-free lookup is several times faster than the comparisons.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        i += 1;
    }
    table
};

fn is_b64token(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| ok & B64TOKEN[usize::from(b)])
}

/// What a route requires of a verified token.
pub(crate) fn authorize<S: AsRef<str>>(
    claims: &TokenClaims,
    all_scopes: &[S],
    any_scopes: &[S],
    permissions: &[S],
) -> Result<(), AuthError> {
    let join = |items: &[S]| items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
    if !claims.has_all_scopes(all_scopes) {
        return Err(AuthError::InsufficientScope {
            required: join(all_scopes).into(),
            description: "the access token lacks a required scope",
        });
    }
    if !any_scopes.is_empty() && !claims.has_any_scope(any_scopes) {
        return Err(AuthError::InsufficientScope {
            required: join(any_scopes).into(),
            description: "the access token has none of the accepted scopes",
        });
    }
    if !permissions.iter().all(|p| claims.has_permission(p.as_ref())) {
        return Err(AuthError::InsufficientScope {
            required: join(permissions).into(),
            description: "the access token lacks a required permission",
        });
    }
    Ok(())
}

fn build_client(config: &Auth0Config) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.http_timeout)
        .connect_timeout(config.http_timeout)
        .redirect(crate::keys::redirect_policy())
        .user_agent(concat!("auth0-runtime/", env!("CARGO_PKG_VERSION")));
    for pem in &config.root_certificates {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| ConfigError::Invalid {
            var: "SSL_CERT_FILE",
            problem:
                "does not hold PEM certificates: point it at a file of -----BEGIN CERTIFICATE----- blocks"
                    .into(),
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ConfigError::Invalid {
        var: "SSL_CERT_FILE",
        problem: format!("or the platform's certificates could not be loaded into the HTTP client: {e}"),
    })
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, secs)
}
