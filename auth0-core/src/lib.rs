// The crate's page is its README: what the core is and which adapter to depend on. Its item docs
// are the adapters' too (they re-export them), so their examples speak as a user of
// `auth0_runtime` and compile against it (a dev-dependency).
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::OnceLock;

#[cfg(feature = "actix")]
mod actix;
mod adapter;
mod algorithm;
mod answer;
mod auth0;
mod cache;
mod claims;
mod clock;
mod config;
mod domain;
mod dpop;
mod exchange;
mod health;
mod http;
mod jws;
mod keys;
mod metadata;
mod observe;
mod policy;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod throttle;
mod verify;

#[cfg(feature = "actix")]
pub use actix::{
    AccessToken, DpopNonces, DpopNoncesMiddleware, RequireAuth, RequireAuthMiddleware,
    protected_resource_metadata,
};
pub use adapter::{Authenticating, Verified, access_token_in};
pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use answer::{AuthError, ConfigError, Refusal};
pub use auth0::Auth0;
pub use claims::{Actor, Audience, Claims, Scheme, Scopes, TokenClaims};
pub use config::{Auth0Config, DomainRequest, RefusalHook, ResolverError};
pub use dpop::{
    HealthCheck, MemoryReplayStore, ProofUse, ReplayCheck, ReplayOutcome, ReplayStore, normalize_htu,
};
#[cfg(feature = "redis")]
pub use dpop::{RedisReplayStore, RedisReplayStoreBuilder};
pub use exchange::{
    ClientAssertionKey, ConnectionToken, ConnectionTokenRequest, ExchangeError, ExchangedToken, ExtraValue,
    MAX_EXTRA_VALUES, OnBehalfOfRequest, OnBehalfOfToken, RESERVED_PARAMETERS, SecretToken,
    TokenExchangeRequest,
};
pub use health::{IssuerReadiness, Readiness, StoreState};
pub use keys::KeysState;
pub use metadata::ResourceMetadata;
pub use policy::Requirement;
pub use verify::RequestParts;

static GLOBAL: OnceLock<Auth0> = OnceLock::new();

/// Installs `config` as the process-wide validator every adapter falls back to: Actix's
/// `#[require_auth]`, `Claims` and `RequireAuth`, axum's layer and extractors (a validator the
/// application hands the adapter, as app data or an extension, takes precedence). Call it once,
/// at startup.
///
/// # Errors
/// A [`ConfigError`] that says which setting is wrong and how to fix it, or
/// [`ConfigError::AlreadyInitialized`] on a second call.
pub fn init(config: Auth0Config) -> Result<&'static Auth0, ConfigError> {
    if GLOBAL.get().is_some() {
        return Err(ConfigError::AlreadyInitialized);
    }
    let auth0 = Auth0::new(config)?;
    GLOBAL.set(auth0).map_err(|_| ConfigError::AlreadyInitialized)?;
    GLOBAL.get().ok_or(ConfigError::AlreadyInitialized)
}

/// [`init`] with [`Auth0Config::from_env`]: reads `AUTH0_DOMAIN`, `AUTH0_AUDIENCE` and the other
/// `AUTH0_*` variables (and `.env`, which never overrides the environment, with the default
/// `dotenv` feature).
///
/// # Errors
/// As [`init`], plus a missing or malformed variable.
pub fn init_from_env() -> Result<&'static Auth0, ConfigError> {
    init(Auth0Config::from_env()?)
}

/// Support for the code `#[require_auth]` generates, re-exported by `auth0_runtime`. Not a public
/// API: it may change in any release.
#[doc(hidden)]
#[cfg(feature = "actix")]
pub mod __private {
    pub use crate::actix::{Authenticated, ExtractedByActix, GuardedFuture, Requirement, Requires};
}
