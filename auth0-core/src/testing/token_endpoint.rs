//! The test issuer's token endpoint (`POST /oauth/token`): Token Vault and RFC 8693 token exchange
//! (custom profiles and on-behalf-of), client authentication by `client_secret_basic`,
//! `client_secret_post` or `private_key_jwt`, Auth0-like answers and error bodies, recorded
//! requests, and scripted replies.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::server::Request;
use super::signer::{KeyKind, Signer};
use super::{Response, Shared, TestIssuer, TokenBuilder, kit_failure};
use crate::Algorithm;
use crate::clock::now;

/// Path of the token endpoint.
pub(super) const TOKEN_PATH: &str = "/oauth/token";

const GRANT_FEDERATED: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const FEDERATED_TOKEN_TYPE: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of the Auth0 access tokens the endpoint issues (Auth0's default for APIs).
const EXCHANGED_LIFETIME: i64 = 86_400;
/// Lifetime of the upstream tokens Token Vault hands out.
const UPSTREAM_LIFETIME: i64 = 3600;

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

/// A failed check: the answer to send.
type Refusal = Box<Response>;

fn refuse(status: u16, error: &str, description: &str) -> Refusal {
    Box::new(oauth_error(status, error, description))
}

impl Shared {
    fn token_state(&self) -> MutexGuard<'_, State> {
        self.token.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `POST /oauth/token`.
    pub(super) fn token_endpoint(self: &Arc<Self>, request: &Request) -> Response {
        if request.method != "POST" {
            return oauth_error(405, "method_not_allowed", "use POST");
        }
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let form = parse_form(&body);
        let record = TokenRequest {
            authorization: request.header("authorization").map(str::to_owned),
            content_type: request.header("content-type").map(str::to_owned),
            body,
            form: form.clone().unwrap_or_default(),
        };
        let scripted = {
            let mut state = self.token_state();
            state.requests.push(record.clone());
            state.script.pop_front()
        };
        let (kind, delay) = match scripted {
            Some(reply) => (reply.kind, reply.delay),
            None => (ReplyKind::Normal, None),
        };
        let mut response = match kind {
            ReplyKind::HangUp => Response {
                hang_up: true,
                ..answer(200, &Value::Null)
            },
            ReplyKind::Custom {
                status,
                content_type,
                body,
            } => {
                let mut response = answer(status, &Value::Null);
                response.content_type = content_type.into();
                response.body = body;
                response
            }
            ReplyKind::Normal => match form {
                None => oauth_error(400, "invalid_request", "the body is not form-urlencoded"),
                Some(_) => self.grant(&record).unwrap_or_else(|refusal| *refusal),
            },
        };
        response.delay = delay;
        response
    }

    fn grant(self: &Arc<Self>, request: &TokenRequest) -> Result<Response, Refusal> {
        let content_type = request.content_type.as_deref().unwrap_or_default();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(refuse(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (name, _) in &request.form {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        // Only parameters of the profile's Action may repeat.
        for single in [
            "grant_type",
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
            "subject_token",
            "subject_token_type",
            "requested_token_type",
            "audience",
            "scope",
            "connection",
            "login_hint",
            "organization",
            "actor_token",
            "actor_token_type",
        ] {
            if counts.get(single).is_some_and(|n| *n > 1) {
                return Err(refuse(
                    400,
                    "invalid_request",
                    &format!("Parameter {single} must be sent once"),
                ));
            }
        }
        let client_id = self.authenticate(request)?;
        match request.field("grant_type") {
            Some(GRANT_FEDERATED) => self.token_vault(request),
            Some(GRANT_TOKEN_EXCHANGE) => self.token_exchange(request, &client_id),
            None => Err(refuse(
                400,
                "invalid_request",
                "Missing required parameter: grant_type",
            )),
            Some(other) => Err(refuse(
                400,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            )),
        }
    }

    /// Client authentication, as Auth0 does it: Basic, a secret in the body, or a client
    /// assertion; exactly one. Returns the client id.
    fn authenticate(&self, request: &TokenRequest) -> Result<String, Refusal> {
        let unauthorized = || refuse(401, "access_denied", "Unauthorized");
        let basic = request.basic_credentials();
        let assertion = request.field("client_assertion");
        let post_secret = request.field("client_secret");
        let methods = usize::from(basic.is_some())
            + usize::from(assertion.is_some())
            + usize::from(post_secret.is_some());
        if methods > 1 {
            return Err(refuse(
                400,
                "invalid_request",
                "Use one client authentication method",
            ));
        }
        let body_id = request.field("client_id");
        let clients = self.token_state().clients.clone();
        if let Some((id, secret)) = basic {
            if body_id.is_some_and(|b| b != id) {
                return Err(unauthorized());
            }
            return match clients.get(&id) {
                Some(Registered {
                    secret: Some(expected),
                    ..
                }) if *expected == secret => Ok(id),
                _ => Err(unauthorized()),
            };
        }
        if let Some(secret) = post_secret {
            let id = body_id.ok_or_else(unauthorized)?;
            return match clients.get(id) {
                Some(Registered {
                    secret: Some(expected),
                    ..
                }) if expected == secret => Ok(id.to_owned()),
                _ => Err(unauthorized()),
            };
        }
        if let Some(assertion) = assertion {
            if request.field("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(refuse(
                    400,
                    "invalid_request",
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
            }
            return self.check_assertion(assertion, body_id, &clients);
        }
        Err(unauthorized())
    }

    fn check_assertion(
        &self,
        assertion: &str,
        body_id: Option<&str>,
        clients: &HashMap<String, Registered>,
    ) -> Result<String, Refusal> {
        let invalid = |why: &str| refuse(401, "invalid_client", &format!("Invalid client assertion: {why}"));
        let (header, claims, input, signature) = decode_jws(assertion).ok_or_else(|| invalid("malformed"))?;
        let id = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no iss"))?
            .to_owned();
        if claims.get("sub").and_then(Value::as_str) != Some(id.as_str()) || body_id.is_some_and(|b| b != id)
        {
            return Err(invalid("iss, sub and client_id must name the client"));
        }
        let Some(Registered {
            key: Some((alg, public)),
            ..
        }) = clients.get(&id)
        else {
            return Err(invalid("unknown client or no registered key"));
        };
        let (name, verify): (&str, &'static dyn sig::VerificationAlgorithm) = match alg {
            Algorithm::PS256 => ("PS256", &sig::RSA_PSS_2048_8192_SHA256),
            Algorithm::ES256 => ("ES256", &sig::ECDSA_P256_SHA256_FIXED),
            _ => ("RS256", &sig::RSA_PKCS1_2048_8192_SHA256),
        };
        if header.get("alg").and_then(Value::as_str) != Some(name) {
            return Err(invalid("unexpected alg"));
        }
        UnparsedPublicKey::new(verify, public)
            .verify(input.as_bytes(), &signature)
            .map_err(|_| invalid("bad signature"))?;
        let audience_ok = |aud: &str| aud == self.issuer || aud == format!("{}oauth/token", self.issuer);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => audience_ok(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(audience_ok),
            _ => false,
        };
        if !aud_ok {
            return Err(invalid("aud must be the issuer"));
        }
        let now = now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("no exp"))?;
        if exp <= now {
            return Err(invalid("expired"));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| invalid("no jti"))?;
        if !self.token_state().seen_jtis.insert(jti.to_owned()) {
            return Err(invalid("jti already used"));
        }
        Ok(id)
    }

    /// The claims of a token this issuer signed with a published key and that has not expired.
    fn own_token(&self, token: &str) -> Result<Map<String, Value>, Refusal> {
        let invalid = |why: &str| refuse(400, "invalid_request", &format!("Invalid subject_token: {why}"));
        let (header, claims, input, signature) = decode_jws(token).ok_or_else(|| invalid("malformed"))?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no kid"))?;
        let alg: Algorithm = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| invalid("bad alg"))?;
        let signer: Arc<Signer> = {
            let state = self.state();
            state
                .keys
                .iter()
                .find(|k| k.published && k.kid == kid)
                .map(|k| Arc::clone(&k.signer))
                .ok_or_else(|| invalid("unknown key"))?
        };
        let verify: &'static dyn sig::VerificationAlgorithm = match (alg, signer.kind()) {
            (Algorithm::RS256, KeyKind::Rsa) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (Algorithm::PS256, KeyKind::Rsa) => &sig::RSA_PSS_2048_8192_SHA256,
            (Algorithm::ES256, KeyKind::P256) => &sig::ECDSA_P256_SHA256_FIXED,
            (Algorithm::ES384, KeyKind::P384) => &sig::ECDSA_P384_SHA384_FIXED,
            (Algorithm::EdDSA, KeyKind::Ed25519) => &sig::ED25519,
            _ => return Err(invalid("bad alg")),
        };
        UnparsedPublicKey::new(verify, signer.public_bytes())
            .verify(input.as_bytes(), &signature)
            .map_err(|_| invalid("bad signature"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(invalid("another issuer"));
        }
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now())
        {
            return Err(invalid("expired"));
        }
        Ok(claims)
    }

    fn token_vault(&self, request: &TokenRequest) -> Result<Response, Refusal> {
        let connection = request
            .field("connection")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| refuse(400, "invalid_request", "Missing required parameter: connection"))?;
        if request.field("requested_token_type") != Some(FEDERATED_TOKEN_TYPE) {
            return Err(refuse(
                400,
                "invalid_request",
                "requested_token_type must be http://auth0.com/oauth/token-type/federated-connection-access-token",
            ));
        }
        let subject = request
            .field("subject_token")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                refuse(
                    400,
                    "invalid_request",
                    "Missing required parameter: subject_token",
                )
            })?;
        match request.field("subject_token_type") {
            Some(ACCESS_TOKEN_TYPE) => {
                self.own_token(subject)?;
            }
            Some(REFRESH_TOKEN_TYPE) => {}
            _ => {
                return Err(refuse(
                    400,
                    "invalid_request",
                    "subject_token_type must be an access or refresh token type",
                ));
            }
        }
        let scope = self.token_state().connection_scopes.get(connection).cloned();
        let mut body = json!({
            "access_token": format!("upstream-{connection}-{}", random_hex(12)),
            "expires_in": UPSTREAM_LIFETIME,
            "token_type": "Bearer",
            "issued_token_type": FEDERATED_TOKEN_TYPE,
        });
        if let (Some(scope), Some(map)) = (scope, body.as_object_mut()) {
            map.insert("scope".to_owned(), json!(scope));
        }
        Ok(answer(200, &body))
    }

    fn token_builder(self: &Arc<Self>) -> TokenBuilder {
        TokenBuilder::new(Arc::clone(self))
    }

    fn token_exchange(
        self: &Arc<Self>,
        request: &TokenRequest,
        client_id: &str,
    ) -> Result<Response, Refusal> {
        let subject = request
            .field("subject_token")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                refuse(
                    400,
                    "invalid_request",
                    "Missing required parameter: subject_token",
                )
            })?;
        let subject_type = request
            .field("subject_token_type")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                refuse(
                    400,
                    "invalid_request",
                    "Missing required parameter: subject_token_type",
                )
            })?;
        if let Some(requested) = request.field("requested_token_type")
            && requested != ACCESS_TOKEN_TYPE
        {
            return Err(refuse(400, "invalid_request", "Unsupported requested_token_type"));
        }
        let (sub, subject_aud) = if subject_type == ACCESS_TOKEN_TYPE {
            let claims = self.own_token(subject)?;
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("user")
                .to_owned();
            let aud = match claims.get("aud") {
                Some(Value::String(a)) => Some(a.clone()),
                Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            (sub, aud)
        } else {
            let digest = digest::digest(&digest::SHA256, subject.as_bytes());
            let hex: String = digest
                .as_ref()
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            (format!("custom|{hex}"), None)
        };
        let audience = request
            .field("audience")
            .map(str::to_owned)
            .or(subject_aud)
            .unwrap_or_else(|| "https://api.example.com".to_owned());
        let scope = request.field("scope");
        let mut builder = self
            .token_builder()
            .subject(sub.clone())
            .audience(audience)
            .expires_in(EXCHANGED_LIFETIME)
            .claim("azp", client_id);
        if let Some(scope) = scope {
            builder = builder.scope(scope);
        }
        if let Some(org) = request.field("organization") {
            builder = builder.claim("org_id", org);
        }
        if let Some(actor) = request.field("actor_token") {
            let actor_sub = self
                .own_token(actor)
                .ok()
                .and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "actor".to_owned());
            builder = builder.claim("act", json!({"sub": actor_sub}));
        }
        let mut body = json!({
            "access_token": builder.sign(),
            "expires_in": EXCHANGED_LIFETIME,
            "token_type": "Bearer",
            "issued_token_type": ACCESS_TOKEN_TYPE,
        });
        if let (Some(map), Some(scope)) = (body.as_object_mut(), scope) {
            map.insert("scope".to_owned(), json!(scope));
            let on_behalf_of = subject_type == ACCESS_TOKEN_TYPE;
            let scopes: Vec<&str> = scope.split_ascii_whitespace().collect();
            if !on_behalf_of && scopes.contains(&"openid") {
                let id_token = self
                    .token_builder()
                    .subject(sub)
                    .audience(client_id)
                    .expires_in(EXCHANGED_LIFETIME)
                    .sign();
                map.insert("id_token".to_owned(), json!(id_token));
            }
            if !on_behalf_of && scopes.contains(&"offline_access") {
                map.insert(
                    "refresh_token".to_owned(),
                    json!(format!("v1.refresh-{}", random_hex(16))),
                );
            }
        }
        Ok(answer(200, &body))
    }
}

/// Header, claims, signing input and signature of a compact JWS.
type DecodedJws = (Map<String, Value>, Map<String, Value>, String, Vec<u8>);

/// Decodes a compact JWS (without verifying it).
fn decode_jws(jws: &str) -> Option<DecodedJws> {
    let mut parts = jws.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let object = |part: &str| match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    };
    Some((
        object(h)?,
        object(c)?,
        format!("{h}.{c}"),
        URL_SAFE_NO_PAD.decode(s).ok()?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
