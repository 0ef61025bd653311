//! Protect Actix-web APIs with Auth0 access tokens.
//!
//! Configure a validator once at startup, then mark handlers with [`require_auth`] and read the
//! verified claims through [`Claims`]:
//!
//! ```no_run
//! use actix_web::{get, App, HttpServer, Responder};
//! use auth0_runtime::{require_auth, Claims};
//!
//! #[get("/api/private-scoped")]
//! #[require_auth(scopes = "read:messages")]
//! async fn private_scoped(claims: Claims) -> impl Responder {
//!     format!("hello {}", claims.sub)
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     auth0_runtime::init_from_env().expect("Auth0 configuration"); // AUTH0_DOMAIN, AUTH0_AUDIENCE
//!     HttpServer::new(|| App::new().service(private_scoped))
//!         .bind(("127.0.0.1", 3000))?
//!         .run()
//!         .await
//! }
//! ```
//!
//! Every request is checked as RFC 6750, RFC 9449 (DPoP) and RFC 8725 ask: one `Authorization`
//! header, a strictly formed token, an allowed algorithm, the configured issuer (decided before any
//! network I/O), a key from the issuer's published key set, the signature, expiry, audience, and the
//! route's scopes. Refusals are answered with the right status, a JSON body and a
//! `WWW-Authenticate` challenge; see [`AuthError`].
//!
//! # Features
//! - `macros` (default): the [`require_auth`] attribute.
//! - `testing`: [`testing`], a real issuer on loopback and a token builder, for your tests.
//! - `redis`: `RedisReplayStore`, a DPoP replay store shared by the instances of an API
//!   (`AUTH0_REPLAY_STORE=redis://…`).

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::OnceLock;

mod actix;
mod cache;
mod claims;
mod config;
mod dpop;
mod error;
mod jws;
mod keys;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod verify;

pub use actix::{RequireAuth, RequireAuthMiddleware};
#[cfg(feature = "macros")]
#[doc(inline)]
pub use auth0_macros::require_auth;
pub use claims::{Actor, Audience, Claims, Scheme, Scopes, TokenClaims};
pub use config::{Auth0Config, ConfigError, ErrorHandler};
pub use dpop::{MemoryReplayStore, ProofUse, ReplayCheck, ReplayOutcome, ReplayStore, normalize_htu};
#[cfg(feature = "redis")]
pub use dpop::{RedisReplayStore, RedisReplayStoreBuilder};
pub use error::AuthError;
pub use jsonwebtoken::Algorithm;
pub use verify::{Auth0, RequestParts};

static GLOBAL: OnceLock<Auth0> = OnceLock::new();

/// Installs `config` as the process-wide validator used by `#[require_auth]`, [`Claims`] and
/// [`RequireAuth`] (an [`Auth0`] in the app data takes precedence). Call it once, at startup.
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
/// `AUTH0_*` variables (and `.env`, which never overrides the environment).
///
/// # Errors
/// As [`init`], plus a missing or malformed variable.
pub fn init_from_env() -> Result<&'static Auth0, ConfigError> {
    init(Auth0Config::from_env()?)
}

/// Selects jsonwebtoken's aws-lc backend explicitly, so that feature unification in a user's
/// dependency graph (both backends enabled) can never make it panic at runtime.
pub(crate) fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Support for the code `#[require_auth]` generates. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use crate::actix::{Guarded, GuardedFuture, Requirement, Requires};
}
