//! The grants: client authentication, Token Vault and RFC 8693 token exchange, each answered as
//! Auth0 answers (or refused with its error body).

use std::sync::{Arc, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::*;

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

/// A failed check: the answer to send.
type Refusal = Box<Response>;

fn refuse(status: u16, error: &str, description: &str) -> Refusal {
    Box::new(oauth_error(status, error, description))
}

impl Shared {
    pub(super) fn token_state(&self) -> MutexGuard<'_, State> {
        self.token.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `POST /oauth/token`.
    pub(in crate::testing) fn token_endpoint(self: &Arc<Self>, request: &Request) -> Response {
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
