//! A real token issuer on loopback, and a token builder, for tests (feature `testing`).
//!
//! [`TestIssuer`] plays an Auth0 tenant: it serves the discovery document and the key set over HTTPS
//! from `127.0.0.1`, with a certificate for `localhost` signed by a CA of its own, and signs access
//! tokens with the keys it publishes. Point a validator at it exactly as at a tenant (domain
//! [`TestIssuer::domain`], issuer [`TestIssuer::issuer`]) and trust [`TestIssuer::ca_pem`]: the
//! whole path (discovery, key set, caching, TLS) runs for real, and nothing is mocked.
//!
//! For DPoP (RFC 9449), [`DpopKey`] is a client's key and [`ProofBuilder`] the proofs it signs;
//! [`TokenBuilder::bind_to`] binds a token to the key.
//!
//! It also lets a test do what a tenant does only on bad days: rotate keys, publish broken keys, go
//! down, answer slowly or with garbage ([`Fault`]), and count the fetches it served.
//!
//! Lighter ways for tests about a handler rather than about keys:
//! - [`TestIssuer::offline`] signs the same tokens with no server at all, and
//!   [`TestIssuer::validator`] verifies them (every check, real signatures) without fetching.
//! - [`claims`] and [`TestRequestExt::authenticated`] run a protected handler with test claims and
//!   no token: no issuer, no signature, no validator, while the route's scopes and permissions are
//!   still checked by the real guard.
//! - [`TestRequestExt`] turns a `TestRequest` into an authenticated one in one call:
//!   `.bearer(&token)`, `.dpop(&key, &token)`, `.authenticated(claims)`.
//!
//! ```
//! use auth0_runtime::testing::TestIssuer;
//!
//! let issuer = TestIssuer::start();
//! assert_eq!(issuer.issuer(), format!("https://{}/", issuer.domain()));
//!
//! let token = issuer
//!     .token()
//!     .audience("https://api.example.com")
//!     .scope("read:messages")
//!     .sign();
//! assert_eq!(token.split('.').count(), 3);
//!
//! // A DPoP-bound token and a proof for one request.
//! let key = auth0_runtime::testing::DpopKey::generate();
//! let bound = issuer.token().bind_to(&key).sign();
//! let proof = key
//!     .proof("GET", "https://api.example.com/api/private")
//!     .access_token(&bound)
//!     .sign();
//! # let _ = proof;
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// JWS algorithms, for [`TokenBuilder::alg`] and [`TestIssuer::add_key`] (the crate's
/// [`Algorithm`]).
pub use crate::Algorithm;
use serde_json::{Value, json};
use tokio::sync::oneshot;

mod claims;
mod dpop;
#[cfg(feature = "redis")]
mod redis;
mod server;
mod signer;
mod state;
mod token;
mod token_endpoint;

#[cfg(feature = "actix")]
pub use crate::actix::test_request::TestRequestExt;
pub use claims::{ClaimsBuilder, claims};
pub use dpop::{DpopKey, ProofBuilder};
#[cfg(feature = "redis")]
pub use redis::RedisServer;
use signer::{KeyKind, Signer};
use state::{IssuerKey, Response, Shared, State};
pub use token::TokenBuilder;
pub use token_endpoint::{TestClient, TokenReply, TokenRequest};

/// The `aud` of tokens before any [`TestIssuer::config`] or [`TestIssuer::validator`] call.
const DEFAULT_AUDIENCE: &str = "https://api.example.com";

/// The testing kit fails like a test assertion: loudly, with what went wrong.
#[track_caller]
pub(crate) fn kit_failure(what: &str, error: impl fmt::Display) -> ! {
    panic!("auth0_runtime::testing: {what}: {error}")
}

/// How the issuer misbehaves (see [`TestIssuer::set_fault`]).
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::testing::{Fault, TestIssuer};
///
/// let issuer = TestIssuer::start();
/// issuer.set_fault(Fault::Slow(Duration::from_millis(200)));
/// issuer.set_fault(Fault::None); // healthy again
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Healthy (the default).
    #[default]
    None,
    /// Accepts connections and closes them at once, before TLS: a network failure.
    Down,
    /// Waits this long before answering (to trip client timeouts).
    Slow(Duration),
    /// Answers `200 OK` with a body that is not JSON.
    Garbage,
    /// Answers `500 Internal Server Error`.
    ServerError,
    /// Answers `200 OK` with a 2 MiB body and no `Content-Length` (over the 1 MiB response cap).
    Oversized,
}

/// One of the two documents the issuer serves (see [`TestIssuer::set_fault_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `/.well-known/jwks.json`.
    Jwks,
}

/// An Auth0-like issuer on `https://localhost:PORT/`, for tests.
///
/// It serves `GET /.well-known/openid-configuration` (with `issuer`, `jwks_uri`, `token_endpoint`)
/// and `GET /.well-known/jwks.json` (the published keys) over HTTPS, one request per connection,
/// from its own thread and runtime, so it works from synchronous tests and from any async runtime.
/// It starts with one RSA-2048 key, `key-1`, for RS256. Dropping it shuts the server down.
///
/// ```
/// use auth0_runtime::testing::TestIssuer;
///
/// let issuer = TestIssuer::start();
/// let old = issuer.current_kid();
/// let new = issuer.rotate_key();
/// assert_ne!(old, new);
/// let token = issuer.token().sign(); // signed with the new key
/// # let _ = token;
/// ```
pub struct TestIssuer {
    shared: Arc<Shared>,
    domain: String,
    port: u16,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.shared.issuer)
            .field("current_kid", &self.current_kid())
            .finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// Starts an issuer on `127.0.0.1` and a free port.
    ///
    /// # Panics
    ///
    /// If it cannot start (no free port, no thread); [`TestIssuer::try_start`] returns the error
    /// instead.
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// assert!(issuer.domain().starts_with("localhost:"));
    /// ```
    #[track_caller]
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(issuer) => issuer,
            Err(error) => kit_failure("starting the test issuer", error),
        }
    }

    /// Starts an issuer on `127.0.0.1` and a free port, or says why it could not.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let issuer = auth0_runtime::testing::TestIssuer::try_start()?;
    /// assert!(issuer.port() > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (ca_pem, tls) = server::tls_identity()?;
        let domain = format!("localhost:{port}");
        let shared = Self::shared(&domain)?;
        let (shutdown, thread) = server::spawn(listener, tls, Arc::clone(&shared))?;
        Ok(Self {
            shared,
            domain,
            port,
            ca_pem,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// An issuer that serves nothing: no port, no thread, no TLS, no discovery. It signs tokens
    /// exactly as a started issuer does, and its [`TestIssuer::validator`] (or any validator built
    /// from its [`TestIssuer::config`]) holds its key set from the start, so verification never
    /// fetches anything. The quickest issuer for tests that are about a handler rather than about
    /// key fetching.
    ///
    /// Its domain is `offline-N.test-issuer.invalid` (a `.invalid` name never resolves, RFC 6761),
    /// [`TestIssuer::port`] is 0, [`TestIssuer::ca_pem`] is empty, and it has no token endpoint.
    /// Fault switches and fetch counters do nothing: use [`TestIssuer::start`] to test those.
    ///
    /// # Panics
    ///
    /// If its first key cannot be generated (the system's random source fails).
    ///
    /// ```
    /// use auth0_runtime::testing::TestIssuer;
    ///
    /// let issuer = TestIssuer::offline();
    /// assert!(issuer.domain().ends_with(".test-issuer.invalid"));
    /// let auth0 = issuer.validator("https://api.example.com"); // no fetch, ever
    /// let token = issuer.token().scope("read:messages").sign(); // aud: https://api.example.com
    /// # let _ = (auth0, token);
    /// ```
    #[track_caller]
    pub fn offline() -> Self {
        static OFFLINE: AtomicUsize = AtomicUsize::new(0);
        let serial = OFFLINE.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let domain = format!("offline-{serial}.test-issuer.invalid");
        match Self::shared(&domain) {
            Ok(shared) => Self {
                shared,
                domain,
                port: 0,
                ca_pem: String::new(),
                shutdown: None,
                thread: None,
            },
            Err(error) => kit_failure("starting an offline test issuer", error),
        }
    }

    /// The state of a new issuer for `domain`, with its first key.
    fn shared(domain: &str) -> io::Result<Arc<Shared>> {
        let first = Arc::new(Signer::generate(KeyKind::Rsa)?);
        let kid = "key-1".to_owned();
        Ok(Arc::new(Shared {
            issuer: format!("https://{domain}/"),
            state: Mutex::new(State {
                keys: vec![IssuerKey {
                    kid: kid.clone(),
                    alg: Algorithm::RS256,
                    signer: first,
                    published: true,
                    rotating: true,
                }],
                raw_jwks: Vec::new(),
                current: kid,
                serial: 1,
                discovery_fault: Fault::None,
                jwks_fault: Fault::None,
                max_age: None,
                discovery_issuer: None,
                audience: DEFAULT_AUDIENCE.to_owned(),
            }),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            strangers: Mutex::new(HashMap::new()),
            token: Mutex::new(token_endpoint::State::default()),
        }))
    }

    /// Whether this issuer serves nothing ([`TestIssuer::offline`]).
    fn is_offline(&self) -> bool {
        self.thread.is_none()
    }

    /// The port the issuer listens on (on `127.0.0.1`); 0 for an [offline](TestIssuer::offline)
    /// issuer.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The domain to configure, `localhost:PORT` (what `AUTH0_DOMAIN` holds for a tenant), or
    /// `offline-N.test-issuer.invalid` for an [offline](TestIssuer::offline) issuer.
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// assert_eq!(issuer.domain(), format!("localhost:{}", issuer.port()));
    /// ```
    pub fn domain(&self) -> String {
        self.domain.clone()
    }

    /// The issuer, `https://localhost:PORT/`: the `iss` of its tokens and of its discovery document.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The CA certificate (PEM) that signed the server's certificate: trust it in the validator's
    /// HTTP client, or point `SSL_CERT_FILE` at [`TestIssuer::write_ca_file`]. Empty for an
    /// [offline](TestIssuer::offline) issuer.
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// assert!(issuer.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// ```
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`TestIssuer::ca_pem`] to `dir/auth0-test-issuer-PORT.pem` and returns the path.
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let path = issuer.write_ca_file(&std::env::temp_dir())?;
    /// assert!(path.exists());
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_ca_file(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join(format!("auth0-test-issuer-{}.pem", self.port));
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }

    /// A configuration for an API with `audience` that trusts this issuer: its domain, and its CA
    /// next to the platform's roots. Adjust it like any [`Auth0Config`](crate::Auth0Config).
    ///
    /// A validator built from it fetches discovery and keys from the issuer over HTTPS, as from a
    /// tenant (so key rotation, fault switches and fetch counters apply). For an
    /// [offline](TestIssuer::offline) issuer it holds the issuer's key set instead, as
    /// [`TestIssuer::validator`] does.
    ///
    /// The issuer remembers `audience`: tokens from [`TestIssuer::token`] carry it as `aud` until
    /// another `config` or `validator` call, so they are accepted without `.audience(..)`.
    ///
    /// ```
    /// use auth0_runtime::{testing::TestIssuer, Auth0};
    ///
    /// let issuer = TestIssuer::start();
    /// let auth0 = Auth0::new(issuer.config("https://api.example.com").dpop_required(true))?;
    /// # Ok::<(), auth0_runtime::ConfigError>(())
    /// ```
    pub fn config(&self, audience: &str) -> crate::Auth0Config {
        audience.clone_into(&mut self.shared.state().audience);
        let config = crate::Auth0Config::new(self.domain(), audience);
        if self.is_offline() {
            self.holding_keys(config)
        } else {
            config.root_certificates_pem(self.ca_pem.as_bytes())
        }
    }

    /// A validator for an API with `audience` that already holds this issuer's key set: it
    /// verifies the issuer's tokens (real signatures, every check) without ever fetching discovery
    /// or keys, so a test needs no network round trip and, with [`TestIssuer::offline`], no server
    /// at all. Put it in the app data (`App::new().app_data(issuer.validator(..))`).
    ///
    /// It holds the keys published when it is built: after [`TestIssuer::rotate_key`] or
    /// [`TestIssuer::add_key`], build another. Like [`TestIssuer::config`], it sets the default
    /// `aud` of the issuer's tokens to `audience`. For other settings, adjust
    /// [`TestIssuer::config`] of an offline issuer and build it with [`Auth0::new`](crate::Auth0::new).
    ///
    /// # Panics
    ///
    /// If `audience` is empty (the configuration error says so).
    ///
    /// ```
    /// use auth0_runtime::testing::TestIssuer;
    ///
    /// let issuer = TestIssuer::start();
    /// let auth0 = issuer.validator("https://my-api");
    /// let token = issuer.token().sign(); // aud: https://my-api, accepted by `auth0`
    /// assert_eq!(issuer.discovery_fetches() + issuer.jwks_fetches(), 0);
    /// # let _ = (auth0, token);
    /// ```
    #[track_caller]
    pub fn validator(&self, audience: &str) -> crate::Auth0 {
        let config = self.config(audience);
        let config = if config.static_keys.is_some() {
            config
        } else {
            self.holding_keys(config)
        };
        match crate::Auth0::new(config) {
            Ok(auth0) => auth0,
            Err(error) => kit_failure("building the offline validator", error),
        }
    }

    /// `config`, holding the key set published now (no fetch for this issuer, ever).
    fn holding_keys(&self, mut config: crate::Auth0Config) -> crate::Auth0Config {
        config.static_keys = Some(Arc::new((self.issuer(), self.jwks())));
        config
    }

    /// An HTTP client that trusts this issuer's CA (and nothing else).
    ///
    /// # Panics
    ///
    /// If the client cannot be built (the TLS backend refuses the CA), and for an
    /// [offline](TestIssuer::offline) issuer, which serves nothing.
    #[track_caller]
    pub fn http_client(&self) -> reqwest::Client {
        if self.is_offline() {
            kit_failure("http_client", "an offline issuer serves nothing over HTTP");
        }
        let built = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).and_then(|ca| {
            reqwest::Client::builder()
                .tls_certs_only([ca])
                .timeout(Duration::from_secs(10))
                .build()
        });
        match built {
            Ok(client) => client,
            Err(error) => kit_failure("building an HTTP client", error),
        }
    }

    /// A token builder: `iss` = [`TestIssuer::issuer`], `sub` = `user|123`, `aud` = the audience
    /// of the last [`TestIssuer::config`] or [`TestIssuer::validator`] call (before any,
    /// `https://api.example.com`), `iat` = now, `exp` = now + 1 hour; header `alg` = `RS256`,
    /// `typ` = `JWT`, `kid` = the current key. Every member can be changed or removed.
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let token = issuer
    ///     .token()
    ///     .subject("auth0|alice")
    ///     .scope("read:messages write:messages")
    ///     .permissions(["read:admin"])
    ///     .sign();
    /// # let _ = token;
    /// ```
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(Arc::clone(&self.shared))
    }

    /// The `kid` of the current RS256 key.
    pub fn current_kid(&self) -> String {
        self.shared.state().current.clone()
    }

    /// Rotates the RS256 key: a new RSA-2048 key becomes current and the published rotation is [new,
    /// previous] (older rotation keys are unpublished; tokens signed with them fail with an unknown
    /// `kid`). Keys from [`TestIssuer::add_key`] stay. Returns the new `kid` (`key-N`).
    ///
    /// ```
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let new = issuer.rotate_key();
    /// let jwks = issuer.jwks();
    /// let kids: Vec<&str> = jwks["keys"]
    ///     .as_array()
    ///     .into_iter()
    ///     .flatten()
    ///     .filter_map(|key| key["kid"].as_str())
    ///     .collect();
    /// assert_eq!(kids, ["key-1", new.as_str()]);
    /// ```
    pub fn rotate_key(&self) -> String {
        let signer = match Signer::generate(KeyKind::Rsa) {
            Ok(signer) => Arc::new(signer),
            Err(error) => kit_failure("generating a key", error),
        };
        let mut state = self.shared.state();
        state.serial += 1;
        let kid = format!("key-{}", state.serial);
        let previous = state.current.clone();
        for key in state.keys.iter_mut().filter(|key| key.rotating) {
            key.published = key.kid == previous;
        }
        state.keys.push(IssuerKey {
            kid: kid.clone(),
            alg: Algorithm::RS256,
            signer,
            published: true,
            rotating: true,
        });
        state.current = kid.clone();
        kid
    }

    /// Publishes a new key for `alg` (RSA-2048 for `RS*`/`PS*`, P-256 for `ES256`, P-384 for
    /// `ES384`, Ed25519 for `EdDSA`), with `"alg"` set in its JWK; returns its `kid`. Tokens built
    /// with [`TokenBuilder::alg`] then sign with it.
    ///
    /// ```
    /// use auth0_runtime::testing::{Algorithm, TestIssuer};
    ///
    /// let issuer = TestIssuer::start();
    /// let kid = issuer.add_key(Algorithm::ES256);
    /// let token = issuer.token().alg(Algorithm::ES256).sign();
    /// # let _ = (kid, token);
    /// ```
    pub fn add_key(&self, alg: Algorithm) -> String {
        let signer = match Signer::generate(KeyKind::for_alg(alg)) {
            Ok(signer) => Arc::new(signer),
            Err(error) => kit_failure("generating a key", error),
        };
        let mut state = self.shared.state();
        state.serial += 1;
        let kid = format!("{}-{}", alg.as_str().to_ascii_lowercase(), state.serial);
        state.keys.push(IssuerKey {
            kid: kid.clone(),
            alg,
            signer,
            published: true,
            rotating: false,
        });
        kid
    }

    /// Publishes `jwk` verbatim after the generated keys: a broken key (bad base64, `use: "enc"`,
    /// unknown `kty`, no `kid`…) to check that it is skipped without losing the good ones.
    ///
    /// ```
    /// use serde_json::json;
    ///
    /// let issuer = auth0_runtime::testing::TestIssuer::start();
    /// issuer.publish_jwk(json!({"kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"}));
    /// assert_eq!(issuer.jwks()["keys"].as_array().map(Vec::len), Some(2));
    /// ```
    pub fn publish_jwk(&self, jwk: Value) {
        self.shared.state().raw_jwks.push(jwk);
    }

    /// Stops publishing the key `kid` (generated or from [`TestIssuer::publish_jwk`]); tokens can
    /// still be signed with it. Returns whether such a key was published.
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut state = self.shared.state();
        let mut found = false;
        for key in state.keys.iter_mut().filter(|key| key.kid == kid) {
            found |= key.published;
            key.published = false;
        }
        let before = state.raw_jwks.len();
        state
            .raw_jwks
            .retain(|jwk| jwk.get("kid").and_then(Value::as_str) != Some(kid));
        found || state.raw_jwks.len() != before
    }

    /// The key set as currently served (`{"keys": [...]}`).
    pub fn jwks(&self) -> Value {
        self.shared.jwks()
    }

    /// Discovery documents served since start (or [`TestIssuer::reset_counters`]), failed answers
    /// included; connections dropped by [`Fault::Down`] are not counted.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Key sets served since start (or [`TestIssuer::reset_counters`]), counted like
    /// [`TestIssuer::discovery_fetches`].
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Sets both fetch counters to zero.
    pub fn reset_counters(&self) {
        self.shared.discovery_fetches.store(0, Ordering::SeqCst);
        self.shared.jwks_fetches.store(0, Ordering::SeqCst);
    }

    /// Makes both endpoints misbehave from the next connection on; [`Fault::None`] heals them.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared.state();
        state.discovery_fault = fault;
        state.jwks_fault = fault;
    }

    /// Makes one endpoint misbehave (e.g. a key set failing while discovery works). With
    /// [`Fault::Down`] on one endpoint only, its requests are read and the connection is closed
    /// without an answer.
    ///
    /// ```
    /// use auth0_runtime::testing::{Endpoint, Fault, TestIssuer};
    ///
    /// let issuer = TestIssuer::start();
    /// issuer.set_fault_on(Endpoint::Jwks, Fault::ServerError);
    /// ```
    pub fn set_fault_on(&self, endpoint: Endpoint, fault: Fault) {
        let mut state = self.shared.state();
        match endpoint {
            Endpoint::Discovery => state.discovery_fault = fault,
            Endpoint::Jwks => state.jwks_fault = fault,
        }
    }

    /// Sends `Cache-Control: public, max-age=SECONDS` with both documents (`None`: no header, the
    /// default).
    pub fn set_max_age(&self, seconds: Option<u64>) {
        self.shared.state().max_age = seconds;
    }

    /// Makes the discovery document claim another `issuer` (`None`: the real one, the default), to
    /// check that a mismatch is refused.
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        self.shared.state().discovery_issuer = issuer;
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
