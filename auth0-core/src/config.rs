//! Configuration: [`Auth0Config`], read from code or from the environment, validated at startup.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::Algorithm;
use crate::answer::{AuthError, Refusal};

use crate::dpop::ReplayStore;
use crate::exchange::ClientAssertionKey;

mod check;
mod env;

pub use crate::domain::{DomainRequest, ResolverError};
pub(crate) use crate::domain::{DomainsResolver, issuer_of, normalize_domain};
pub(crate) use check::Cidr;
pub(crate) use env::CaFile;

/// A hook that every refusal passes through: the one place to customise error responses
/// ([`Auth0Config::on_refusal`]).
pub type RefusalHook = Arc<dyn Fn(&AuthError, Refusal) -> Refusal + Send + Sync>;

/// The settings of a validator, built in code or read from the environment.
///
/// Nothing is checked until [`crate::Auth0::new`] (or [`crate::init`]) turns it into a validator,
/// which fails with a [`ConfigError`](crate::ConfigError) that says how to fix the setting.
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::{Auth0, Auth0Config};
///
/// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
///     .dpop_required(true)
///     .leeway(Duration::from_secs(5));
/// let auth0 = Auth0::new(config)?;
/// # Ok::<(), auth0_runtime::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Auth0Config {
    pub(crate) domains: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) dpop_enabled: bool,
    pub(crate) dpop_required: bool,
    pub(crate) dpop_algorithms: Vec<Algorithm>,
    pub(crate) dpop_iat_leeway: Duration,
    pub(crate) dpop_iat_offset: Duration,
    pub(crate) leeway: Duration,
    pub(crate) require_at_jwt: bool,
    pub(crate) cache_ttl: Duration,
    pub(crate) cache_max_entries: usize,
    pub(crate) token_cache_entries: usize,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) stale_limit: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) trust_proxy: bool,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) root_certificates: Vec<Vec<u8>>,
    /// `AUTH0_CA_FILE`, read and parsed.
    pub(crate) ca_file: Option<CaFile>,
    /// Fetch discovery and keys while the validator is built (`crate::health`).
    pub(crate) warm_up: bool,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) on_refusal: Option<RefusalHook>,
    pub(crate) replay_store: Option<Arc<dyn ReplayStore>>,
    pub(crate) replay_store_capacity: usize,
    pub(crate) replay_store_fail_open: bool,
    pub(crate) public_origins: Vec<String>,
    pub(crate) organizations: Vec<String>,
    pub(crate) organization_required: bool,
    pub(crate) log_subject: bool,
    pub(crate) dpop_nonce_secrets: Vec<Vec<u8>>,
    pub(crate) domains_resolver: Option<DomainsResolver>,
    pub(crate) new_issuers: crate::keys::NewIssuerBudget,
    pub(crate) metadata: crate::metadata::MetadataSettings,
    /// Unix seconds; tests move it (`Auth0Config::clock`, feature `testing`).
    pub(crate) clock: fn() -> i64,
    // Token exchange (see `crate::exchange`).
    pub(crate) exchange_domain: Option<String>,
    pub(crate) client_assertion_key: Option<ClientAssertionKey>,
    pub(crate) exchange_cache_entries: usize,
    /// (issuer, JWK set) served for that issuer without any fetch: the testing kit's offline
    /// validator (`TestIssuer::validator`). Nothing else sets it.
    #[cfg(feature = "testing")]
    pub(crate) static_keys: Option<Arc<(String, serde_json::Value)>>,
}

impl fmt::Debug for Auth0Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Config")
            .field("domains", &self.domains)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("dpop_enabled", &self.dpop_enabled)
            .field("dpop_required", &self.dpop_required)
            .field("leeway", &self.leeway)
            .field("cache_ttl", &self.cache_ttl)
            .field("trust_proxy", &self.trust_proxy)
            .field("warm_up", &self.warm_up)
            .field("ca_file", &self.ca_file)
            .field("replay_store_fail_open", &self.replay_store_fail_open)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_assertion_key", &self.client_assertion_key)
            .field("exchange_cache_entries", &self.exchange_cache_entries)
            .finish_non_exhaustive()
    }
}

impl Auth0Config {
    /// Settings for one tenant domain (`tenant.us.auth0.com`, or a custom domain) and the API's
    /// audience (its identifier in the Auth0 dashboard). Every other setting has its default.
    pub fn new(domain: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            domains: vec![domain.into()],
            audiences: vec![audience.into()],
            algorithms: vec![Algorithm::RS256],
            dpop_enabled: true,
            dpop_required: false,
            dpop_algorithms: vec![Algorithm::ES256],
            dpop_iat_leeway: Duration::from_secs(30),
            dpop_iat_offset: Duration::from_secs(300),
            leeway: Duration::ZERO,
            require_at_jwt: false,
            cache_ttl: Duration::from_secs(600),
            cache_max_entries: 100,
            token_cache_entries: 4096,
            refetch_cooldown: Duration::from_secs(30),
            stale_limit: crate::keys::STALE_LIMIT,
            http_timeout: Duration::from_secs(10),
            trust_proxy: false,
            trusted_proxies: Vec::new(),
            client_id: None,
            client_secret: None,
            root_certificates: Vec::new(),
            ca_file: None,
            warm_up: false,
            http_client: None,
            on_refusal: None,
            replay_store: None,
            replay_store_capacity: crate::MemoryReplayStore::DEFAULT_CAPACITY,
            replay_store_fail_open: false,
            public_origins: Vec::new(),
            organizations: Vec::new(),
            organization_required: false,
            log_subject: false,
            dpop_nonce_secrets: Vec::new(),
            domains_resolver: None,
            new_issuers: crate::keys::NewIssuerBudget::default(),
            metadata: crate::metadata::MetadataSettings::default(),
            clock: crate::clock::now,
            exchange_domain: None,
            client_assertion_key: None,
            exchange_cache_entries: 1000,
            #[cfg(feature = "testing")]
            static_keys: None,
        }
    }

    /// Accept tokens from several domains (custom domains of one tenant, or several tenants).
    /// Replaces the domain given to [`Self::new`].
    pub fn domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Accept tokens whose `aud` contains any of these audiences. Replaces the audience given to
    /// [`Self::new`].
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The signature algorithms accepted for access tokens (default `[RS256]`), in order of
    /// preference: a published key without `alg` is used with the first that fits its type (one
    /// key, one algorithm: RFC 8725 §3.1). Only asymmetric algorithms can be verified against a
    /// published key set.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = distinct(algorithms);
        self
    }

    /// Accept the DPoP scheme (default `true`).
    pub fn dpop_enabled(mut self, enabled: bool) -> Self {
        self.dpop_enabled = enabled;
        self
    }

    /// Accept only the DPoP scheme (default `false`). Needs DPoP enabled.
    pub fn dpop_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    /// The algorithms accepted for DPoP proofs (default `[ES256]`); asymmetric only.
    pub fn dpop_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algorithms = distinct(algorithms);
        self
    }

    /// How far in the future a DPoP proof's `iat` may be (default 30 s).
    pub fn dpop_iat_leeway(mut self, leeway: Duration) -> Self {
        self.dpop_iat_leeway = leeway;
        self
    }

    /// How old a DPoP proof may be (default 300 s).
    pub fn dpop_iat_offset(mut self, offset: Duration) -> Self {
        self.dpop_iat_offset = offset;
        self
    }

    /// Clock leeway applied to the access token's `exp` and `nbf` (default 0).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Require `typ` to be `at+jwt` (RFC 9068); by default a missing `typ` or `JWT` is accepted too.
    pub fn require_at_jwt(mut self, strict: bool) -> Self {
        self.require_at_jwt = strict;
        self
    }

    /// Longest lifetime of a cached discovery document or key set (default 600 s);
    /// `Cache-Control: max-age` can only shorten it.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Entries of each key cache, the discovery results (by issuer) and the key sets (by URI):
    /// default 100, at least 2; the least recently used go first, configured issuers never. The
    /// name is the reference SDK's (`AUTH0_CACHE_MAX_ENTRIES`); the other caches have their own:
    /// [`token_cache_entries`](Self::token_cache_entries),
    /// [`exchange_cache_entries`](Self::exchange_cache_entries),
    /// [`replay_store_capacity`](Self::replay_store_capacity).
    pub fn cache_max_entries(mut self, entries: usize) -> Self {
        self.cache_max_entries = entries;
        self
    }

    /// Slots of the verified-token cache (default 4096; 0 turns it off). A token seen before skips
    /// parsing and the signature check; its expiry is still checked on every request, and a
    /// changed key set empties the cache.
    pub fn token_cache_entries(mut self, entries: usize) -> Self {
        self.token_cache_entries = entries;
        self
    }

    /// Shortest time between two key-set fetches caused by unknown key ids (default 30 s).
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// Timeout of every outbound request (default 10 s). Ignored with [`Self::http_client`].
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Fetch the discovery document and the key set of every configured domain while the validator
    /// is built (default `false`; `AUTH0_WARM_UP=true`): [`crate::Auth0::new`], [`crate::init`] and
    /// [`crate::init_from_env`] return once they are cached, or after the HTTP timeout, so the first
    /// requests do not wait for them. Works inside `#[actix_web::main]`: the fetches run on a
    /// short-lived thread of their own, never on (or blocking) the caller's runtime. An unreachable
    /// tenant is a warning, not an error; requests then fetch the keys as usual. See also
    /// [`crate::Auth0::warm_up`] and [`crate::Auth0::ready`].
    ///
    /// ```no_run
    /// use auth0_runtime::Auth0Config;
    ///
    /// #[actix_web::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com").warm_up(true);
    ///     if let Err(error) = auth0_runtime::init(config) {
    ///         eprintln!("{error}");
    ///         std::process::exit(2);
    ///     }
    ///     // The keys are cached (or the tenant was unreachable, and a warning says so).
    ///     Ok(())
    /// }
    /// ```
    pub fn warm_up(mut self, warm: bool) -> Self {
        self.warm_up = warm;
        self
    }

    /// How long past their lifetime the last good discovery document and key set are still
    /// served while refreshes fail (default 24 hours). Past it, requests get 503 until the issuer
    /// answers again, and tokens verified earlier stop passing.
    pub fn stale_limit(mut self, limit: Duration) -> Self {
        self.stale_limit = limit;
        self
    }

    /// Honour `X-Forwarded-Proto/Host/Prefix` when building the request URL a DPoP proof must
    /// match (default `false`). Enable only behind a proxy that sets these headers itself.
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// Honour forwarded headers only from these peers: addresses or CIDR blocks (`10.0.0.0/8`,
    /// `::1`). Needs [`Self::trust_proxy`]; without a list, every peer is trusted. The adapter must
    /// know the peer: Actix always does; axum, when served with `ConnectInfo`
    /// (`into_make_service_with_connect_info::<SocketAddr>()`). An unknown peer is not trusted.
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// The API's public origins, as clients address it (`https://api.example.com`, one per
    /// deployment name or region that serves the same routes). When set, a DPoP proof's `htu`
    /// origin must be one of these, whatever `Host` or forwarded headers say, and only the path
    /// is taken from the request: a proof made for another deployment is refused.
    pub fn public_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.public_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Accept only tokens of these Auth0 Organizations: the token's `org_id` must be one of them
    /// (`org_…` ids). A token without `org_id` is refused too.
    pub fn organizations<I, S>(mut self, organizations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.organizations = organizations.into_iter().map(Into::into).collect();
        self
    }

    /// Record the token's subject (`sub`) on the `auth0.verify` span (default `false`): a user id is
    /// personal data, so logs carry it only when you say so. Nothing else of a token is logged.
    pub fn log_subject(mut self, log: bool) -> Self {
        self.log_subject = log;
        self
    }

    /// Accept only tokens issued for an organization: the token must carry some `org_id`.
    pub fn organization_required(mut self, required: bool) -> Self {
        self.organization_required = required;
        self
    }

    /// Replaces the validator's clock, in Unix seconds (feature `testing`): a test of expiry,
    /// `max_age` or DPoP nonce steps moves a clock of its own instead of waiting. Every
    /// verification reads it once; key caching, back-off and token exchange keep real time.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicI64, Ordering};
    /// use auth0_runtime::testing::TestIssuer;
    ///
    /// static NOW: AtomicI64 = AtomicI64::new(0);
    /// let issuer = TestIssuer::offline();
    /// let config = issuer.config("https://api.example.com").clock(|| NOW.load(Ordering::Relaxed));
    /// # let _ = config;
    /// ```
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn clock(mut self, now: fn() -> i64) -> Self {
        self.clock = now;
        self
    }

    /// Turn DPoP server nonces on (RFC 9449 §8): each secret at least 32 random bytes; the first
    /// makes nonces, all are accepted (list a new secret first to rotate). Every instance given
    /// the same secrets accepts every other's nonces, with no shared state. A proof without a
    /// valid nonce gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header to retry with.
    pub fn dpop_nonce_secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        self.dpop_nonce_secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// Publish RFC 9728 Protected Resource Metadata (default off; `AUTH0_RESOURCE_METADATA`): the
    /// document [`Auth0::resource_metadata`](crate::Auth0::resource_metadata) holds, served by
    /// [`protected_resource_metadata`](crate::protected_resource_metadata), and named by a
    /// `resource_metadata="…"` parameter on every challenge, so that a refused OAuth client (an MCP
    /// client) finds the tenant to get a token from. Its URL is derived from the resource
    /// identifier (RFC 9728 §3.1: `https://api.example.com/mcp` →
    /// `https://api.example.com/.well-known/oauth-protected-resource/mcp`) unless
    /// [`Self::resource_metadata_url`] says otherwise.
    pub fn resource_metadata(mut self, publish: bool) -> Self {
        self.metadata = self.metadata.publish(publish);
        self
    }

    /// Where the metadata is served, when not at the derived URL (`AUTH0_RESOURCE_METADATA_URL`;
    /// a proxy that rewrites paths, say). Turns metadata on; a later
    /// [`Self::resource_metadata`]`(false)` turns it off again.
    pub fn resource_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.metadata = self.metadata.served_at(url.into());
        self
    }

    /// The resource identifier the metadata names (`AUTH0_RESOURCE`): the API's URL, like
    /// `https://mcp.example.com/mcp`. Default: the (first) audience, which for an MCP server is
    /// its URL.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.metadata.resource = Some(resource.into());
        self
    }

    /// The scopes the metadata lists as `scopes_supported` (`AUTH0_SCOPES_SUPPORTED`, separated
    /// by spaces or commas).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metadata.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A page for developers that the metadata links as `resource_documentation`
    /// (`AUTH0_RESOURCE_DOCUMENTATION`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.metadata.documentation = Some(url.into());
        self
    }

    /// Bound the fetches for issuers that a [`Self::domains_resolver`] allowed and nothing is
    /// cached for yet: at most `concurrent` at once and `per_minute` started per minute, across
    /// all such issuers (default 4 and 60). A request that would need one more is answered 503
    /// `temporarily_unavailable` with `Retry-After`. Configured domains never count against it.
    pub fn new_issuer_fetches(mut self, concurrent: usize, per_minute: u32) -> Self {
        self.new_issuers = crate::keys::NewIssuerBudget {
            concurrent,
            per_minute,
        };
        self
    }

    /// Decide per request which issuers are trusted, besides the static domain list: `resolver`
    /// gets the request (URL, headers) and the token's unverified issuer, and returns the allowed
    /// domains (or issuer URLs). Nothing is fetched for an issuer it does not return (401
    /// `invalid_token`); its answer is not cached (it may depend on the request); an error is
    /// logged and answered 503 `temporarily_unavailable`.
    ///
    /// The issuer it is given is the token's own claim, before any signature check: anyone can
    /// write any issuer there. Return domains derived from something you trust (the request's
    /// host, a tenant table), never the unverified issuer itself: a resolver that echoes it lets
    /// every forged token name a new server for this API to fetch from. Fetches for issuers
    /// nothing is cached for are bounded ([`Self::new_issuer_fetches`]), but the bound is shared
    /// by every caller, so an echoing resolver still lets a flood of forged tokens crowd out real
    /// new tenants.
    ///
    /// ```
    /// use auth0_runtime::{Auth0Config, DomainRequest, ResolverError};
    ///
    /// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
    ///     .domains_resolver(|request: DomainRequest| async move {
    ///         // e.g. one custom domain per customer host
    ///         let domains = match request.header("host") {
    ///             Some("acme.example.com") => vec!["login.acme.example.com".to_owned()],
    ///             _ => Vec::new(),
    ///         };
    ///         Ok::<_, ResolverError>(domains)
    ///     });
    /// # let _ = config;
    /// ```
    pub fn domains_resolver<F, Fut, E>(mut self, resolver: F) -> Self
    where
        F: Fn(DomainRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, E>> + Send + 'static,
        E: Into<ResolverError> + 'static,
    {
        self.domains_resolver = Some(Arc::new(move |request| {
            let answer = resolver(request);
            Box::pin(async move { answer.await.map_err(Into::into) })
        }));
        self
    }

    /// How many DPoP proofs the default in-memory replay store holds (default
    /// [`MemoryReplayStore::DEFAULT_CAPACITY`](crate::MemoryReplayStore::DEFAULT_CAPACITY): 1 000
    /// proofs a second over the default 330-second window, about 8 MB). Size it for your peak
    /// DPoP request rate times the proof window; when full, new proofs get 503. Ignored with
    /// [`Self::replay_store`].
    pub fn replay_store_capacity(mut self, records: usize) -> Self {
        self.replay_store_capacity = records;
        self
    }

    /// Client credentials, needed only for token exchange.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }

    /// Client credentials with `private_key_jwt` authentication (RFC 7523): token exchanges are
    /// authenticated by a client assertion signed with `key` instead of a secret. `AUTH0_CLIENT_ID`
    /// with `AUTH0_CLIENT_ASSERTION_KEY` (a PEM file) does the same from the environment.
    pub fn client_assertion(mut self, id: impl Into<String>, key: ClientAssertionKey) -> Self {
        self.client_id = Some(id.into());
        self.client_assertion_key = Some(key);
        self
    }

    /// The tenant domain whose token endpoint token exchanges use (default: `AUTH0_DOMAIN`, or the
    /// only domain configured). Needed with several domains.
    pub fn exchange_domain(mut self, domain: impl Into<String>) -> Self {
        self.exchange_domain = Some(domain.into());
        self
    }

    /// Entries of the exchanged-token cache (default 1000; 0 turns it off). A repeat exchange with
    /// the same inputs reuses the earlier answer until 60 s before it expires, and identical
    /// concurrent exchanges share one request.
    pub fn exchange_cache_entries(mut self, entries: usize) -> Self {
        self.exchange_cache_entries = entries;
        self
    }

    /// Trust these CA certificates (PEM) for outbound HTTPS, next to the platform's roots.
    /// `SSL_CERT_FILE` does the same from the environment.
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Use this HTTP client for discovery and key sets instead of building one. It should
    /// have timeouts and refuse redirects to other origins.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Pass every refusal through `hook`, which gets the error and the answer this crate would
    /// send (status, headers, JSON body) and returns the one to send. It applies under every
    /// adapter (Actix's guard, extractors and middleware alike).
    ///
    /// ```
    /// use auth0_runtime::Auth0Config;
    ///
    /// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
    ///     .on_refusal(|error, mut refusal| {
    ///         refusal.set_header("x-auth-error", error.code());
    ///         refusal
    ///     });
    /// ```
    pub fn on_refusal<F>(mut self, hook: F) -> Self
    where
        F: Fn(&AuthError, Refusal) -> Refusal + Send + Sync + 'static,
    {
        self.on_refusal = Some(Arc::new(hook));
        self
    }

    /// Where DPoP proofs are remembered so each is accepted once (default: a bounded in-memory
    /// store). Several instances of one API should share a store, e.g. one backed by Redis
    /// (`RedisReplayStore`, feature `redis`; `AUTH0_REPLAY_STORE=redis://…` from the
    /// environment).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay_store = Some(Arc::new(store));
        self
    }

    /// What a DPoP request gets when the replay store cannot be reached
    /// ([`ReplayOutcome::Unreachable`](crate::ReplayOutcome::Unreachable): down, or slower than
    /// its timeout). `false` (the default) fails closed: 503 `temporarily_unavailable` with
    /// `Retry-After`. `true` fails open: the proof is accepted without a replay check, and a
    /// warning (at most one every 10 s) counts the proofs accepted so. Bearer requests are never
    /// affected, and a store that answers it is full still refuses. `AUTH0_REPLAY_STORE_FAIL_OPEN`
    /// from the environment.
    pub fn replay_store_fail_open(mut self, fail_open: bool) -> Self {
        self.replay_store_fail_open = fail_open;
        self
    }
}

/// The algorithms in their first-listed order, each once: they are advertised in challenges and
/// in the metadata.
pub(crate) fn distinct(algorithms: impl IntoIterator<Item = Algorithm>) -> Vec<Algorithm> {
    let mut list = Vec::new();
    for alg in algorithms {
        if !list.contains(&alg) {
            list.push(alg);
        }
    }
    list
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests;
