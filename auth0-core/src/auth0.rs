//! The validator handle, [`Auth0`]: built once from an [`Auth0Config`], cheap to clone, and the
//! home of every public method (verification, readiness, metadata, token exchange live beside it).

use std::fmt;
use std::sync::Arc;

use crate::Algorithm;
use crate::answer::{AuthError, Challenges, ConfigError, Refusal};
use crate::cache::TokenCache;
use crate::claims::Claims;
use crate::clock::secs;
use crate::config::{Auth0Config, Cidr, DomainsResolver, RefusalHook};
use crate::dpop::{self, MemoryReplayStore, Nonces, ProofSettings, ReplayStore};
use crate::keys::{KeySettings, KeyStore};
use crate::verify::{RequestParts, Verification};

/// Verifies Auth0 access tokens. Built once from an [`Auth0Config`]; cheap to clone (shared).
///
/// Most applications call [`crate::init_from_env`] once and never touch this type. Place one in
/// Actix app data (`App::new().app_data(auth0.clone())`) to override the global validator, e.g.
/// for tests or for several tenants in one process.
#[derive(Clone)]
pub struct Auth0(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) accepted: Challenges,
    pub(crate) dpop_algs: String,
    /// RFC 9728 metadata, when published.
    pub(crate) metadata: Option<crate::metadata::Published>,
    pub(crate) proof: ProofSettings,
    pub(crate) leeway: i64,
    pub(crate) require_at_jwt: bool,
    pub(crate) trust_proxy: bool,
    pub(crate) trusted_proxies: Vec<Cidr>,
    /// Whether the warning that the adapter cannot tell the peer, so no proxy is trusted, was
    /// given (once).
    pub(crate) peer_unknown_warned: std::sync::atomic::AtomicBool,
    /// The API's public origins (`https://api.example.com`): a proof's `htu` origin must be one.
    pub(crate) public_origins: Vec<String>,
    /// Unix seconds; read once per verification.
    pub(crate) clock: fn() -> i64,
    pub(crate) organizations: Vec<String>,
    pub(crate) organization_required: bool,
    pub(crate) nonces: Option<Nonces>,
    /// Whether the warning that no middleware renews this validator's nonces was given (once).
    #[cfg_attr(not(feature = "actix"), allow(dead_code, reason = "the Actix adapter's"))]
    pub(crate) nonce_renewal_warned: std::sync::atomic::AtomicBool,
    pub(crate) resolver: Option<DomainsResolver>,
    pub(crate) resolver_failures: crate::throttle::Throttle,
    /// Rate-limits the warnings of server-side refusals.
    pub(crate) warnings: crate::throttle::Throttle,
    pub(crate) log_subject: bool,
    pub(crate) keys: Arc<KeyStore>,
    pub(crate) token_cache: TokenCache,
    pub(crate) replay: Arc<dyn ReplayStore>,
    /// Warm-up and readiness (`crate::health`).
    pub(crate) health: crate::health::Health,
    pub(crate) on_refusal: Option<RefusalHook>,
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
        let exchange = crate::exchange::Exchange::new(
            crate::exchange::Settings {
                client_id: config.client_id.as_deref(),
                client_secret: config.client_secret.as_deref(),
                client_assertion_key: config.client_assertion_key.as_ref(),
                exchange_domain: config.exchange_domain.as_deref(),
                domains: &config.domains,
                exchange_cache_entries: config.exchange_cache_entries,
            },
            http.clone(),
        )?;
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
            peer_unknown_warned: std::sync::atomic::AtomicBool::new(false),
            resolver: config.domains_resolver,
            resolver_failures: crate::throttle::Throttle::new(std::time::Duration::from_secs(10)),
            warnings: crate::throttle::Throttle::new(std::time::Duration::from_secs(10)),
            log_subject: config.log_subject,
            keys,
            token_cache: TokenCache::new(config.token_cache_entries),
            replay,
            health,
            on_refusal: config.on_refusal,
            exchange,
        }));
        if let Some(client) = warm_up {
            crate::health::warm_at_startup(&auth0, client);
        }
        Ok(auth0)
    }

    /// Verifies a request given as plain parts, without Actix: the entry point for another
    /// framework's adapter (and for benchmarks). Completes without awaiting anything when the
    /// signing key is cached. Route requirements are the caller's: see [`TokenClaims::has_scope`](crate::TokenClaims::has_scope).
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

    /// How this validator answers `error`: the challenges of its configuration (schemes, DPoP
    /// algorithms, resource metadata), a `DPoP-Nonce` for `use_dpop_nonce`, then the
    /// [`Auth0Config::on_refusal`] hook. `dpop` says the request used the DPoP scheme (its error
    /// goes on the DPoP challenge). What every adapter sends.
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
        match &self.0.on_refusal {
            Some(hook) => hook(error, refusal),
            None => refusal,
        }
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
}
