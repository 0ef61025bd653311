//! The test issuer's token endpoint (`POST /oauth/token`): Token Vault and RFC 8693 token exchange
//! (custom profiles and on-behalf-of), client authentication by `client_secret_basic`,
//! `client_secret_post` or `private_key_jwt`, Auth0-like answers and error bodies, recorded
//! requests, and scripted replies.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::MutexGuard;
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::server::Request;
use super::signer::{KeyKind, Signer};
use super::{Response, Shared, TestIssuer, TokenBuilder, kit_failure};
use crate::Algorithm;
use crate::clock::now;

/// Path of the token endpoint.
pub(super) const TOKEN_PATH: &str = "/oauth/token";

/// The token endpoint's state, inside the issuer's shared state.
#[derive(Debug, Default)]
pub(super) struct State {
    clients: HashMap<String, Registered>,
    /// `jti`s of client assertions already used.
    seen_jtis: HashSet<String>,
    requests: Vec<TokenRequest>,
    script: VecDeque<TokenReply>,
    connection_scopes: HashMap<String, String>,
    serial: u64,
}

#[derive(Debug, Clone)]
struct Registered {
    secret: Option<String>,
    /// Algorithm and public key (PKCS#1 DER for RSA, the point for P-256).
    key: Option<(Algorithm, Vec<u8>)>,
}

/// A confidential application registered at the [`TestIssuer`], with a client secret
/// ([`TestIssuer::client`]) or a `private_key_jwt` key pair ([`TestIssuer::client_with_key`]).
/// Its `Debug` output shows neither the secret nor the key.
///
/// ```
/// use auth0_runtime::{testing::TestIssuer, Auth0};
///
/// let issuer = TestIssuer::start();
/// let client = issuer.client();
/// let auth0 = Auth0::new(client.configure(issuer.config("https://api.example.com")))?;
/// # Ok::<(), auth0_runtime::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TestClient {
    id: String,
    secret: Option<String>,
    key_pem: Option<String>,
    alg: Algorithm,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client secret (clients from [`TestIssuer::client`]).
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The private key, PKCS#8 PEM (clients from [`TestIssuer::client_with_key`]): what
    /// `AUTH0_CLIENT_ASSERTION_KEY` points at.
    pub fn private_key_pem(&self) -> Option<&str> {
        self.key_pem.as_deref()
    }

    /// The algorithm of the client's assertions (RS256 for secret clients, where it is unused).
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// `config` with this client's credentials: [`Auth0Config::client_credentials`] or
    /// [`Auth0Config::client_assertion`].
    ///
    /// [`Auth0Config::client_credentials`]: crate::Auth0Config::client_credentials
    /// [`Auth0Config::client_assertion`]: crate::Auth0Config::client_assertion
    ///
    /// # Panics
    /// If the kit's own key cannot be read back (a bug).
    pub fn configure(&self, config: crate::Auth0Config) -> crate::Auth0Config {
        match (&self.secret, &self.key_pem) {
            (Some(secret), _) => config.client_credentials(&self.id, secret),
            (None, Some(pem)) => match crate::ClientAssertionKey::from_pem(pem) {
                Ok(key) => config.client_assertion(&self.id, key.algorithm(self.alg)),
                Err(error) => kit_failure("reading the client's key", error),
            },
            (None, None) => config,
        }
    }
}

/// One request the token endpoint received (see [`TestIssuer::token_requests`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body, as sent.
    pub body: String,
    /// The form fields, decoded, in order (a name sent twice appears twice).
    pub form: Vec<(String, String)>,
}

impl TokenRequest {
    /// The first value of the form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of the form field `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The names of the form fields, in order.
    pub fn names(&self) -> Vec<&str> {
        self.form.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The client id and secret of a `Basic` `Authorization` header (form-decoded, RFC 6749
    /// §2.3.1).
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        let value = self.authorization.as_deref()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    }

    /// The header and the claims of the `client_assertion`, decoded (not verified).
    pub fn client_assertion(&self) -> Option<(Value, Value)> {
        let jwt = self.field("client_assertion")?;
        let mut parts = jwt.split('.');
        let mut json =
            || -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok() };
        Some((json()?, json()?))
    }
}

/// A scripted answer of the token endpoint (see [`TestIssuer::push_token_reply`]): a status and
/// body of your choosing, the issuer's own answer, or a dropped connection, each optionally late.
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::testing::{TestIssuer, TokenReply};
/// use serde_json::json;
///
/// let issuer = TestIssuer::start();
/// issuer.push_token_reply(TokenReply::json(403, json!({"error": "access_denied"})));
/// issuer.push_token_reply(TokenReply::body(502, "text/html", "<h1>Bad gateway</h1>"));
/// issuer.push_token_reply(TokenReply::normal().delay(Duration::from_secs(2)));
/// issuer.push_token_reply(TokenReply::hang_up());
/// ```
#[derive(Debug, Clone)]
pub struct TokenReply {
    kind: ReplyKind,
    delay: Option<Duration>,
}

#[derive(Debug, Clone)]
enum ReplyKind {
    Normal,
    Custom {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    HangUp,
}

impl TokenReply {
    /// `status` with `body` as JSON.
    pub fn json(status: u16, body: Value) -> Self {
        Self::body(status, "application/json", body.to_string())
    }

    /// `status` with any body and content type.
    pub fn body(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: ReplyKind::Custom {
                status,
                content_type: content_type.into(),
                body: body.into(),
            },
            delay: None,
        }
    }

    /// The issuer's own answer (useful with [`TokenReply::delay`]).
    pub fn normal() -> Self {
        Self {
            kind: ReplyKind::Normal,
            delay: None,
        }
    }

    /// Reads the request, then closes the connection without answering: a network failure.
    pub fn hang_up() -> Self {
        Self {
            kind: ReplyKind::HangUp,
            delay: None,
        }
    }

    /// Waits `delay` before answering (to trip a client's timeout, or to overlap requests).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn answer(status: u16, body: &Value) -> Response {
    Response::json(format!("{status} {}", reason(status)), body, None)
}

/// An Auth0-like error body.
fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    answer(status, &json!({"error": error, "error_description": description}))
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_form(body: &str) -> Option<Vec<(String, String)>> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut buf).is_err() {
        kit_failure("random bytes", "the system RNG failed");
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl TestIssuer {
    fn token_state(&self) -> MutexGuard<'_, State> {
        self.shared.token_state()
    }

    /// Registers a confidential client with a random secret (`client_secret_basic` or
    /// `client_secret_post`).
    pub fn client(&self) -> TestClient {
        let mut state = self.token_state();
        state.serial += 1;
        let id = format!("client-{}-{}", state.serial, random_hex(4));
        let secret = random_hex(24);
        state.clients.insert(
            id.clone(),
            Registered {
                secret: Some(secret.clone()),
                key: None,
            },
        );
        TestClient {
            id,
            secret: Some(secret),
            key_pem: None,
            alg: Algorithm::RS256,
        }
    }

    /// Registers a confidential client that authenticates with `private_key_jwt`: a fresh key pair
    /// for `alg` (RSA-2048 for RS256 and PS256, P-256 for ES256) whose public half the issuer
    /// keeps.
    ///
    /// # Panics
    /// For another algorithm.
    ///
    /// ```
    /// use auth0_runtime::testing::{Algorithm, TestIssuer};
    ///
    /// let issuer = TestIssuer::start();
    /// let client = issuer.client_with_key(Algorithm::ES256);
    /// assert!(client.private_key_pem().is_some_and(|pem| pem.contains("BEGIN PRIVATE KEY")));
    /// ```
    pub fn client_with_key(&self, alg: Algorithm) -> TestClient {
        let (pkcs8, public) = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .unwrap_or_else(|_| kit_failure("generating a key", "RSA"));
                let der = pair
                    .as_der()
                    .unwrap_or_else(|_| kit_failure("encoding a key", "RSA"));
                (der.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .unwrap_or_else(|_| kit_failure("generating a key", "P-256"));
                let der = pair
                    .to_pkcs8v1()
                    .unwrap_or_else(|_| kit_failure("encoding a key", "P-256"));
                (der.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
            }
            other => kit_failure(
                "client_with_key takes RS256, PS256 or ES256",
                format!("{other:?}"),
            ),
        };
        let mut state = self.token_state();
        state.serial += 1;
        let id = format!("client-{}-{}", state.serial, random_hex(4));
        state.clients.insert(
            id.clone(),
            Registered {
                secret: None,
                key: Some((alg, public)),
            },
        );
        TestClient {
            id,
            secret: None,
            key_pem: Some(pem("PRIVATE KEY", &pkcs8)),
            alg,
        }
    }

    /// Every request the token endpoint received, oldest first (scripted answers included).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_state().requests.clone()
    }

    /// Forgets the recorded token requests.
    pub fn clear_token_requests(&self) {
        self.token_state().requests.clear();
    }

    /// Queues the answer to the next token request; each request takes one queued reply, and
    /// with none queued the issuer answers on its own.
    pub fn push_token_reply(&self, reply: TokenReply) {
        self.token_state().script.push_back(reply);
    }

    /// The scopes Token Vault reports for `connection` (none by default).
    pub fn set_connection_scope(&self, connection: &str, scope: &str) {
        self.token_state()
            .connection_scopes
            .insert(connection.to_owned(), scope.to_owned());
    }
}

mod grant;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
