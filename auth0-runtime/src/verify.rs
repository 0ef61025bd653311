//! The validator: scheme dispatch, access-token verification, DPoP binding, scope checks.
//!
//! Works on plain request parts ([`RequestParts`]); the Actix adapter in `actix.rs` is a thin layer
//! over it. Verification is synchronous when the signing key is cached (the hot path takes no lock
//! and does no I/O); only a missing key sends it through [`Auth0::verify_pending`].

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

use crate::Algorithm;
use crate::answer::{AuthError, Challenges, ConfigError};
use crate::cache::{self, TokenCache};
use crate::claims::{Claims, Scheme, TokenClaims};
use crate::clock::secs;
use crate::config::{Auth0Config, Cidr, DomainRequest, DomainsResolver, ErrorHandler};
use crate::dpop::{
    self, MemoryReplayStore, NonceVerdict, Nonces, ProofRequest, ProofSettings, ProofUse, ReplayCheck,
    ReplayOutcome, ReplayStore, UrlParts,
};
use crate::jws::{self, JwsError};
use crate::keys::{KeyError, KeySettings, KeyStore, VerifyingKey};
use crate::observe;

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
    /// ([`Auth0Config::domains_resolver`]); an adapter without it gives the resolver no headers.
    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        Vec::new()
    }
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
    /// The proof's nonce is from the previous step: the answer should carry the current one.
    pub(crate) renew_nonce: bool,
}

/// A refusal and the scheme it concerns (it decides which challenge carries the error).
#[derive(Debug, Clone)]
pub(crate) struct Denied {
    pub(crate) error: AuthError,
    pub(crate) dpop: bool,
    /// For the operator's log only: what exactly failed, beyond the public description.
    pub(crate) reason: Option<String>,
}

impl Denied {
    pub(crate) fn new(error: AuthError, dpop: bool) -> Self {
        Self {
            error,
            dpop,
            reason: None,
        }
    }

    /// Adds the operator's reason, built only when the refusal's event will be recorded: a flood
    /// of bad requests must not pay for formatting nobody reads.
    fn because(mut self, reason: impl FnOnce() -> String) -> Self {
        let server_side = matches!(self.error, AuthError::Unavailable(_) | AuthError::Internal(_));
        if observe::reason_wanted(server_side) {
            self.reason = Some(reason());
        }
        self
    }
}

impl From<AuthError> for Denied {
    fn from(error: AuthError) -> Self {
        Self::new(error, false)
    }
}

/// A verification: decided at once (keys cached, store in memory), or a future.
pub(crate) enum Verification {
    Done(Result<Verified, Denied>),
    Later(Pin<Box<dyn Future<Output = Result<Verified, Denied>> + Send>>),
}

/// The outcome of the synchronous attempt; [`Auth0::settle`] finishes the other two.
pub(crate) enum Attempt {
    Done(Result<Verified, Denied>),
    /// The signing key is not cached: it has to be fetched.
    NeedsKey(Pending),
    /// Everything passed; the replay store answers later (a networked store).
    NeedsStore(StoreWait),
    /// The token's issuer is not in the static list: the domains resolver decides.
    NeedsIssuer(IssuerWait),
}

/// A request whose issuer the domains resolver has to judge.
pub(crate) struct IssuerWait {
    context: DomainRequest,
    request: OwnedCredentials,
}

/// A verified DPoP request waiting for its replay store's answer.
pub(crate) struct StoreWait {
    check: ReplayCheck,
    claims: Arc<TokenClaims>,
    renew_nonce: bool,
}

impl StoreWait {
    async fn finish(self) -> Result<Verified, Denied> {
        replay_verdict(self.check.await, self.claims, self.renew_nonce)
    }
}

/// The request's fate given the replay store's answer.
fn replay_verdict(
    outcome: ReplayOutcome,
    claims: Arc<TokenClaims>,
    renew_nonce: bool,
) -> Result<Verified, Denied> {
    let error = match outcome {
        ReplayOutcome::FirstUse => {
            return Ok(Verified {
                claims,
                scheme: Scheme::Dpop,
                renew_nonce,
            });
        }
        ReplayOutcome::Replay => {
            #[cfg(feature = "metrics")]
            crate::metrics::replay_refused();
            AuthError::InvalidDpopProof("the DPoP proof has already been used")
        }
        ReplayOutcome::Unavailable | ReplayOutcome::Unreachable => {
            AuthError::Unavailable("the DPoP proof cannot be checked for reuse right now, try again later")
        }
    };
    Err(Denied::new(error, true))
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
    granted: Option<String>,
}

/// The credentials of one request, borrowed from it.
struct Credentials<'a> {
    scheme: Scheme,
    token: &'a str,
    proof: Option<&'a str>,
    method: &'a str,
    url: Cow<'a, str>,
    /// An issuer outside the static list that the domains resolver allowed for this request.
    granted: Option<&'a str>,
}

impl Credentials<'_> {
    fn to_owned(&self) -> OwnedCredentials {
        OwnedCredentials {
            scheme: self.scheme,
            token: self.token.to_owned(),
            proof: self.proof.map(str::to_owned),
            method: self.method.to_owned(),
            url: self.url.clone().into_owned(),
            granted: self.granted.map(str::to_owned),
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
            granted: self.granted.as_deref(),
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
    pub(crate) issuers: Vec<String>,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    pub(crate) accepted: Challenges,
    pub(crate) dpop_algs: String,
    /// RFC 9728 metadata, when published.
    pub(crate) metadata: Option<crate::metadata::Published>,
    proof: ProofSettings,
    leeway: i64,
    require_at_jwt: bool,
    trust_proxy: bool,
    trusted_proxies: Vec<Cidr>,
    /// The API's public origins (`https://api.example.com`): a proof's `htu` origin must be one.
    public_origins: Vec<String>,
    /// Unix seconds; read once per verification.
    clock: fn() -> i64,
    organizations: Vec<String>,
    organization_required: bool,
    pub(crate) nonces: Option<Nonces>,
    /// Whether the warning that no middleware renews this validator's nonces was given (once).
    pub(crate) nonce_renewal_warned: std::sync::atomic::AtomicBool,
    resolver: Option<DomainsResolver>,
    resolver_failures: crate::throttle::Throttle,
    /// Rate-limits the warnings of server-side refusals.
    warnings: crate::throttle::Throttle,
    log_subject: bool,
    pub(crate) keys: Arc<KeyStore>,
    token_cache: TokenCache,
    pub(crate) replay: Arc<dyn ReplayStore>,
    /// Warm-up and readiness (`crate::health`).
    pub(crate) health: crate::health::Health,
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
        let issuers = config.validate()?;
        let trusted_proxies = config.proxy_blocks()?;
        let public_origins = config.origins()?;
        let http = match config.http_client.clone() {
            Some(client) => client,
            None => crate::http::build_client(&config)?,
        };
        // The startup warm-up's own client (see `crate::health`): never the shared one.
        let warm_up = match (config.warm_up, &config.http_client) {
            (false, _) => None,
            (true, Some(client)) => Some(client.clone()),
            (true, None) => Some(crate::http::build_client(&config)?),
        };
        let health = crate::health::Health::new(config.http_timeout);
        let exchange = crate::exchange::Exchange::new(&config, http.clone())?;
        let accepted = match (config.dpop_enabled, config.dpop_required) {
            (false, _) => Challenges::Bearer,
            (true, false) => Challenges::Both,
            (true, true) => Challenges::Dpop,
        };
        let dpop_algs = config
            .dpop_algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let metadata = crate::metadata::Published::new(
            &config.metadata,
            crate::metadata::Context {
                issuers: &issuers,
                audiences: &config.audiences,
                dpop_algorithms: if config.dpop_enabled {
                    config
                        .dpop_algorithms
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .collect()
                } else {
                    Vec::new()
                },
                dpop_required: config.dpop_required,
            },
        )?;
        let keys = Arc::new(KeyStore::new(
            http,
            KeySettings {
                cache_ttl: config.cache_ttl,
                cache_max_entries: config.cache_max_entries,
                refetch_cooldown: config.refetch_cooldown,
                algorithms: config.algorithms.clone(),
                pinned: issuers
                    .iter()
                    .cloned()
                    .chain(exchange.issuer().map(str::to_owned))
                    .collect(),
                stale_limit: config.stale_limit,
                new_issuers: config.new_issuers,
            },
        ));
        #[cfg(feature = "testing")]
        if let Some(preloaded) = &config.static_keys {
            let (issuer, jwks) = &**preloaded;
            keys.preload(issuer, jwks)
                .map_err(|problem| ConfigError::Invalid {
                    var: "static key set",
                    problem: problem.to_owned(),
                })?;
        }
        let proof = ProofSettings {
            algorithms: config.dpop_algorithms,
            iat_leeway: secs(config.dpop_iat_leeway),
            iat_offset: secs(config.dpop_iat_offset),
            max_jti_len: ProofSettings::DEFAULT_MAX_JTI_LEN,
        };
        let mut replay: Arc<dyn ReplayStore> = match config.replay_store {
            Some(store) => store,
            None => Arc::new(MemoryReplayStore::for_window(
                config.replay_store_capacity,
                proof.iat_offset.saturating_add(proof.iat_leeway),
            )),
        };
        if config.replay_store_fail_open {
            replay = Arc::new(dpop::FailOpen::new(replay));
        }
        let auth0 = Self(Arc::new(Inner {
            issuers,
            audiences: config.audiences,
            algorithms: config.algorithms,
            accepted,
            dpop_algs,
            metadata,
            proof,
            leeway: secs(config.leeway),
            require_at_jwt: config.require_at_jwt,
            trust_proxy: config.trust_proxy,
            trusted_proxies,
            public_origins,
            clock: config.clock,
            organizations: config.organizations,
            organization_required: config.organization_required,
            nonces: Nonces::new(&config.dpop_nonce_secrets),
            nonce_renewal_warned: std::sync::atomic::AtomicBool::new(false),
            resolver: config.domains_resolver,
            resolver_failures: crate::throttle::Throttle::new(std::time::Duration::from_secs(10)),
            warnings: crate::throttle::Throttle::new(std::time::Duration::from_secs(10)),
            log_subject: config.log_subject,
            keys,
            token_cache: TokenCache::new(config.token_cache_entries),
            replay,
            health,
            error_handler: config.error_handler,
            exchange,
        }));
        if let Some(client) = warm_up {
            crate::health::warm_at_startup(&auth0, client);
        }
        Ok(auth0)
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
        let verified = match self.verify(req) {
            Verification::Done(result) => result,
            Verification::Later(future) => future.await,
        }
        .map_err(|d| d.error)?;
        let custom = verified.claims.custom::<T>().map_err(|_| {
            AuthError::InvalidToken("the access token's custom claims do not have the expected shape")
        })?;
        Ok(Claims::new(verified.claims, verified.scheme, custom))
    }

    /// Verifies a request, watched: in the `auth0.verify` span, with one event per refusal and
    /// the metrics. Done at once unless something has to be awaited.
    pub(crate) fn verify<R: RequestParts>(&self, req: &R) -> Verification {
        let watch = observe::Watch::start();
        let attempt = {
            let _in_span = watch.span().enter();
            self.attempt(req)
        };
        match attempt {
            Attempt::Done(result) => {
                watch.finish(&result, self.0.log_subject, &self.0.warnings);
                Verification::Done(result)
            }
            unfinished => {
                let auth0 = self.clone();
                Verification::Later(Box::pin(async move {
                    let span = watch.span().clone();
                    let result = tracing::Instrument::instrument(auth0.settle(unfinished), span).await;
                    watch.finish(&result, auth0.0.log_subject, &auth0.0.warnings);
                    result
                }))
            }
        }
    }

    /// Verifies a request: the synchronous part. Ends with the answer unless the signing key
    /// has to be fetched first.
    pub(crate) fn attempt<R: RequestParts>(&self, req: &R) -> Attempt {
        let credentials = match self.credentials(req) {
            Ok(c) => c,
            Err(denied) => return Attempt::Done(Err(denied)),
        };
        match self.verify_credentials(&credentials, None, (self.0.clock)()) {
            // The resolver is told about the request itself.
            Attempt::NeedsIssuer(mut wait) => {
                wait.context.url = self.request_url(req);
                wait.context.headers = req
                    .headers()
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
                    .collect();
                Attempt::NeedsIssuer(wait)
            }
            attempt => attempt,
        }
    }

    /// The RFC 9728 Protected Resource Metadata of this API, when published
    /// ([`Auth0Config::resource_metadata`]).
    pub fn resource_metadata(&self) -> Option<&crate::ResourceMetadata> {
        self.0.metadata.as_ref().map(|m| &m.document)
    }

    /// The path the metadata is served at (`/.well-known/oauth-protected-resource/mcp`), to mount
    /// [`protected_resource_metadata`](crate::protected_resource_metadata) on; `None` when not
    /// published.
    pub fn resource_metadata_path(&self) -> Option<&str> {
        self.0.metadata.as_ref().map(|m| m.path.as_str())
    }

    /// The metadata URL that challenges name (`resource_metadata="…"`), when published.
    pub(crate) fn resource_metadata_url(&self) -> Option<&str> {
        self.0.metadata.as_ref().map(|m| m.url.as_str())
    }

    /// The metadata document as JSON, rendered once at startup.
    pub(crate) fn resource_metadata_json(&self) -> Option<&str> {
        self.0.metadata.as_ref().map(|m| m.json.as_str())
    }

    /// The validator's clock, in Unix seconds.
    pub(crate) fn now(&self) -> i64 {
        (self.0.clock)()
    }

    /// The current DPoP server nonce, when nonces are on
    /// ([`Auth0Config::dpop_nonce_secrets`]): what a `DPoP-Nonce` header carries. An adapter other
    /// than Actix's sends it with [`AuthError::UseDpopNonce`].
    pub fn dpop_nonce(&self) -> Option<String> {
        self.0.nonces.as_ref().map(|n| n.current((self.0.clock)()))
    }

    /// Asks the domains resolver about the token's issuer, then finishes the verification.
    async fn resolve(&self, wait: IssuerWait) -> Result<Verified, Denied> {
        let IssuerWait { context, mut request } = wait;
        let dpop = request.scheme == Scheme::Dpop;
        let deny = |error| Err(Denied::new(error, dpop));
        let Some(resolver) = self.0.resolver.clone() else {
            return deny(AuthError::Internal("no domains resolver"));
        };
        let issuer = context.issuer.clone();
        let domains = match resolver(context).await {
            Ok(domains) => domains,
            Err(error) => {
                if let Some(report) = self.0.resolver_failures.event() {
                    tracing::warn!(
                        %error,
                        failures = report.count,
                        seconds = report.seconds,
                        "the domains resolver failed; requests get 503"
                    );
                }
                return deny(AuthError::Unavailable(
                    "the access token's issuer cannot be checked right now, try again later",
                ));
            }
        };
        if !domains
            .iter()
            .any(|d| crate::config::issuer_of(d).as_deref() == Some(issuer.as_str()))
        {
            let error =
                AuthError::InvalidToken("the access token was issued by an issuer this API does not trust");
            return Err(Denied::new(error, dpop).because(|| format!(
                "iss {issuer:?} is not among the domains the resolver allowed for this request: {domains:?}"
            )));
        }
        request.granted = Some(issuer);
        match self.verify_credentials(&request.borrow(), None, (self.0.clock)()) {
            Attempt::Done(result) => result,
            Attempt::NeedsKey(pending) => self.verify_pending(pending).await,
            Attempt::NeedsStore(wait) => wait.finish().await,
            Attempt::NeedsIssuer(_) => deny(AuthError::Internal("issuer resolution did not settle")),
        }
    }

    /// Finishes a verification that could not complete synchronously.
    pub(crate) async fn settle(&self, attempt: Attempt) -> Result<Verified, Denied> {
        match attempt {
            Attempt::Done(result) => result,
            Attempt::NeedsKey(pending) => self.verify_pending(pending).await,
            Attempt::NeedsStore(wait) => wait.finish().await,
            Attempt::NeedsIssuer(wait) => self.resolve(wait).await,
        }
    }

    /// Finishes a verification whose key was not cached.
    async fn verify_pending(&self, pending: Pending) -> Result<Verified, Denied> {
        let dpop = pending.request.scheme == Scheme::Dpop;
        let key =
            self.0
                .keys
                .fetch(&pending.issuer, &pending.kid)
                .await
                .map_err(|e| {
                    match e {
                KeyError::UnknownKid => Denied::new(
                    AuthError::InvalidToken("the access token is signed with an unknown key"),
                    dpop,
                )
                .because(|| format!(
                    "kid {:?} is not in the key set of {} (refetched at most once per cooldown)",
                    pending.kid, pending.issuer
                )),
                KeyError::Busy => Denied::new(
                    AuthError::Unavailable("the signing keys cannot be fetched right now, try again later"),
                    dpop,
                )
                .because(|| format!(
                    "nothing is cached for {}, and the budget of fetches for new issuers is spent \
                     (Auth0Config::new_issuer_fetches)",
                    pending.issuer
                )),
                KeyError::Unavailable => Denied::new(
                    AuthError::Unavailable("the signing keys cannot be fetched right now, try again later"),
                    dpop,
                )
                .because(|| format!(
                    "the key set of {} cannot be fetched and none is cached (see the key-set warnings)",
                    pending.issuer
                )),
            }
                })?;
        // A fresh clock reading: the fetch may have taken a while.
        match self.verify_credentials(&pending.request.borrow(), Some(key), (self.0.clock)()) {
            Attempt::Done(result) => result,
            Attempt::NeedsStore(wait) => wait.finish().await,
            // The key was handed in and the issuer decided, so neither is asked for again.
            Attempt::NeedsKey(_) | Attempt::NeedsIssuer(_) => {
                Err(Denied::new(AuthError::Internal("key lookup failed"), dpop))
            }
        }
    }

    /// Reads the `Authorization` header (exactly one), the scheme and the DPoP proof.
    fn credentials<'r, R: RequestParts>(&self, req: &'r R) -> Result<Credentials<'r>, Denied> {
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

    /// Every check of one request, against one clock reading `now`.
    fn verify_credentials(
        &self,
        c: &Credentials<'_>,
        fetched: Option<Arc<VerifyingKey>>,
        now: i64,
    ) -> Attempt {
        let dpop = c.scheme == Scheme::Dpop;
        let deny = |error| Attempt::Done(Err(Denied::new(error, dpop)));
        let claims = match self.verify_token(c.token, fetched, now, c.granted) {
            Ok(claims) => claims,
            Err(TokenFailure::Denied(error, reason)) => {
                return Attempt::Done(Err(Denied { error, dpop, reason }));
            }
            Err(TokenFailure::NeedsIssuer(issuer)) => {
                return Attempt::NeedsIssuer(IssuerWait {
                    context: DomainRequest {
                        url: String::new(),
                        headers: Vec::new(),
                        issuer,
                    },
                    request: c.to_owned(),
                });
            }
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
                renew_nonce: false,
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
            public_origins: &self.0.public_origins,
            now,
        };
        let verified = match dpop::verify_proof(proof, &request, &self.0.proof) {
            Ok(v) => v,
            Err(error) => {
                let reason = observe::reason_wanted(false)
                    .then(|| dpop::explain(proof, &request))
                    .flatten();
                return Attempt::Done(Err(Denied { error, dpop, reason }));
            }
        };
        if verified.jkt != bound {
            let error =
                AuthError::InvalidToken("the access token is bound to another key than the DPoP proof");
            return Attempt::Done(Err(Denied::new(error, dpop).because(|| {
                format!(
                    "the token's cnf.jkt is {bound}, the proof's key thumbprint {}",
                    verified.jkt
                )
            })));
        }
        // Server nonces, when on: checked before the proof is recorded, so the retry that
        // carries the nonce is not a replay.
        let renew_nonce = match &self.0.nonces {
            None => false,
            Some(nonces) => match verified.nonce.as_deref().map(|n| nonces.check(n, now)) {
                Some(NonceVerdict::Current) => false,
                Some(NonceVerdict::Previous) => true,
                _ => {
                    return deny(AuthError::UseDpopNonce(
                        "the DPoP proof must carry the server's current nonce",
                    ));
                }
            },
        };
        let proof_use = ProofUse::new(
            &verified.jkt,
            &verified.jti,
            &claims.sub,
            verified.replay_expires_at(&self.0.proof),
            now,
        );
        match self.0.replay.check_and_record(&proof_use) {
            ReplayCheck::Ready(outcome) => Attempt::Done(replay_verdict(outcome, claims, renew_nonce)),
            check @ ReplayCheck::Pending(_) => Attempt::NeedsStore(StoreWait {
                check,
                claims,
                renew_nonce,
            }),
        }
    }

    /// RFC 8725 order: structure, header, issuer (before any I/O), key, signature, claims.
    fn verify_token(
        &self,
        token: &str,
        fetched: Option<Arc<VerifyingKey>>,
        now: i64,
        granted: Option<&str>,
    ) -> Result<Arc<TokenClaims>, TokenFailure> {
        // The first pass records the token's issuer and key id on the span. A second one (after
        // the key fetch or the resolver's answer) verifies the same token, and recording them
        // again would print them twice: the fmt subscriber shows every record of a field.
        let identify = fetched.is_none() && granted.is_none();
        let cache = &self.0.token_cache;
        let generation = self.0.keys.generation();
        let cache_key = cache.enabled().then(|| cache::Key::of(token));
        // Same bytes, same keys: only time, and whether the key set is still usable (not past
        // its stale limit), can have changed the verdict.
        if let Some(hit) = cache_key.as_ref().and_then(|k| cache.get(k, generation))
            && self.0.keys.cached(&hit.claims.iss, &hit.kid).is_some()
        {
            // An issuer from the resolver is judged again on every request.
            if identify {
                observe::token_identified(&hit.claims.iss, &hit.kid);
            }
            #[cfg(feature = "metrics")]
            crate::metrics::token_cache(true);
            self.trusted_issuer(&hit.claims.iss, granted)?;
            self.check_claims(&hit.claims, now)?;
            return Ok(Arc::clone(&hit.claims));
        }
        // One lookup per verification: the retry after a key fetch is not another miss.
        #[cfg(feature = "metrics")]
        if cache_key.is_some() && fetched.is_none() {
            crate::metrics::token_cache(false);
        }
        let jws = jws::parse(token).map_err(|e| {
            let description = match e {
                JwsError::TooLarge => "the access token is too large",
                JwsError::Malformed | JwsError::NotJson => "the access token is malformed",
            };
            TokenFailure::explained(description, || match (e, token.split('.').count()) {
                (JwsError::TooLarge, _) => format!("{} bytes, over the 16 KiB cap", token.len()),
                (_, 5) => "five segments: an encrypted token (JWE). Auth0 issues those when the client \
                           asks for a token without `audience`; request one with the API's identifier as audience"
                    .to_owned(),
                (_, 3) => "a segment is not strict base64url of a JSON object without duplicate members".to_owned(),
                (_, n) => format!("{n} segments instead of 3: not a JWT"),
            })
        })?;
        let header: JoseHeader<'_> = serde_json::from_slice(&jws.header)
            .map_err(|_| TokenFailure::invalid("the access token's header is malformed"))?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.0.algorithms.contains(a))
            .ok_or_else(|| {
                TokenFailure::explained(
                    "the access token is signed with an algorithm this API does not accept",
                    || format!("alg {:?}, accepted: {:?}", header.alg, self.0.algorithms),
                )
            })?;
        if header.crit {
            return Err(TokenFailure::invalid(
                "the access token has critical header parameters this API does not support",
            ));
        }
        if !self.typ_accepted(header.typ.as_deref()) {
            return Err(TokenFailure::explained(
                "the access token has an unexpected type",
                || format!("typ {:?}", header.typ),
            ));
        }
        let kid = header
            .kid
            .ok_or(TokenFailure::invalid("the access token has no key id"))?;
        let claims = TokenClaims::from_payload(&jws.payload).map_err(TokenFailure::invalid)?;
        if identify {
            observe::token_identified(&claims.iss, &kid);
        }
        let issuer = self.trusted_issuer(&claims.iss, granted)?;
        let key = match fetched.or_else(|| self.0.keys.cached(issuer, &kid)) {
            Some(key) => key,
            None => {
                return Err(TokenFailure::NeedsKey {
                    issuer: issuer.to_owned(),
                    kid: kid.into_owned(),
                });
            }
        };
        let verifier = key.for_alg(alg).ok_or_else(|| {
            TokenFailure::explained(
                "the access token's signing key cannot be used with its algorithm",
                || format!("key {kid:?} of {issuer} cannot verify {alg:?}"),
            )
        })?;
        verifier
            .verify_sig(jws.signing_input.as_bytes(), &jws.signature)
            .map_err(|_| {
                TokenFailure::explained("the access token's signature is invalid", || {
                    format!("the signature does not verify with key {kid:?} of {issuer}")
                })
            })?;
        self.check_claims(&claims, now)?;
        let claims = Arc::new(claims);
        if let Some(key) = cache_key {
            cache.insert(key, generation, &kid, Arc::clone(&claims));
        }
        Ok(claims)
    }

    /// The issuer, if trusted: in the static list, or allowed by the resolver for this request.
    /// Decided before any I/O; an issuer the resolver has not judged yet sends it there.
    fn trusted_issuer<'s>(&'s self, iss: &'s str, granted: Option<&'s str>) -> Result<&'s str, TokenFailure> {
        if let Some(issuer) = self.0.issuers.iter().find(|i| **i == iss) {
            return Ok(issuer);
        }
        match granted {
            Some(granted) if granted == iss => Ok(granted),
            None if self.0.resolver.is_some() => Err(TokenFailure::NeedsIssuer(iss.to_owned())),
            _ => Err(TokenFailure::explained(
                "the access token was issued by an issuer this API does not trust",
                || format!("iss {iss:?}, trusted: {:?}", self.0.issuers),
            )),
        }
    }

    fn check_claims(&self, claims: &TokenClaims, now: i64) -> Result<(), TokenFailure> {
        let leeway = self.0.leeway;
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenFailure::explained("the access token has expired", || {
                format!(
                    "exp is {} s in the past (leeway {leeway} s); if tokens expire at once, check the clocks",
                    now.saturating_sub(claims.exp)
                )
            }));
        }
        if let Some(nbf) = claims.nbf.filter(|nbf| now.saturating_add(leeway) < *nbf) {
            return Err(TokenFailure::explained(
                "the access token is not valid yet",
                || {
                    format!(
                        "nbf is {} s in the future (leeway {leeway} s): this server's clock is behind the issuer's",
                        nbf.saturating_sub(now)
                    )
                },
            ));
        }
        if !self.0.audiences.iter().any(|a| claims.aud.contains(a)) {
            let id_token = claims.extra.contains_key("nonce")
                || claims.extra.contains_key("at_hash")
                || claims.azp.as_ref().is_some_and(|azp| claims.aud.contains(azp));
            let hint = if id_token {
                "; looks like an ID token: send the access token"
            } else {
                ""
            };
            return Err(TokenFailure::explained(
                "the access token is not intended for this API",
                || {
                    format!(
                        "aud {:?}, this API accepts {:?}{hint}",
                        claims.aud.iter().collect::<Vec<_>>(),
                        self.0.audiences
                    )
                },
            ));
        }
        let organizations = &self.0.organizations;
        if self.0.organization_required || !organizations.is_empty() {
            // An empty `org_id` names no organization: the same as none.
            match claims.org_id.as_deref().filter(|org| !org.is_empty()) {
                None => {
                    return Err(TokenFailure::invalid(
                        "the access token is not issued for an organization",
                    ));
                }
                Some(org) if !organizations.is_empty() && !organizations.iter().any(|o| o == org) => {
                    return Err(TokenFailure::explained(
                        "the access token is issued for an organization this API does not accept",
                        || format!("org_id {org:?}, accepted: {organizations:?}"),
                    ));
                }
                Some(_) => {}
            }
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
    /// The refusal, and for the log, what exactly failed.
    Denied(AuthError, Option<String>),
    NeedsKey {
        issuer: String,
        kid: String,
    },
    /// Not in the static list; the domains resolver decides.
    NeedsIssuer(String),
}

impl TokenFailure {
    fn invalid(description: &'static str) -> Self {
        Self::Denied(AuthError::InvalidToken(description), None)
    }

    fn explained(description: &'static str, reason: impl FnOnce() -> String) -> Self {
        Self::Denied(
            AuthError::InvalidToken(description),
            observe::reason_wanted(false).then(reason),
        )
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

/// RFC 6750 §2.1 `b64token` characters before the `=` padding, as a table: the check runs over
/// every token on every request, and a branch-free lookup is several times faster than the
/// comparisons.
const B64TOKEN: [bool; 256] = {
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
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().fold(true, |ok, b| ok & B64TOKEN[usize::from(b)])
}

/// Step-up (RFC 9470): the token's `acr` must be one of `acr_values` (when any are given), and
/// its `auth_time` at most `max_age` seconds before `now` (when given). A missing or malformed
/// claim fails the check it is needed for.
pub(crate) fn authorize_step_up<S: AsRef<str>>(
    claims: &TokenClaims,
    acr_values: &[S],
    max_age: Option<u64>,
    now: i64,
) -> Result<(), AuthError> {
    let refuse = |description| {
        let acr = acr_values.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
        Err(AuthError::InsufficientUserAuthentication {
            acr_values: acr.into(),
            max_age,
            description,
        })
    };
    if !acr_values.is_empty() {
        let acr = claims.extra.get("acr").and_then(serde_json::Value::as_str);
        if !acr.is_some_and(|acr| acr_values.iter().any(|v| v.as_ref() == acr)) {
            return refuse("a different authentication level is required");
        }
    }
    if let Some(max_age) = max_age {
        let auth_time = claims.extra.get("auth_time").and_then(serde_json::Value::as_i64);
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        if auth_time.is_none_or(|at| now.saturating_sub(at) > max_age) {
            return refuse("more recent authentication is required");
        }
    }
    Ok(())
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

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests;
