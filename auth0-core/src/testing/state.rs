//! The issuer's shared state (keys, faults, counters, the token endpoint's records) and how it
//! answers each request: the tenant side of [`TestIssuer`](super::TestIssuer).

use super::*;

/// Path of the discovery document.
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the key set.
const JWKS_PATH: &str = "/.well-known/jwks.json";

/// A key the issuer created (published or not).
#[derive(Debug, Clone)]
pub(super) struct IssuerKey {
    pub(super) kid: String,
    pub(super) alg: Algorithm,
    pub(super) signer: Arc<Signer>,
    pub(super) published: bool,
    /// Part of the RS256 rotation (`key-N`), as opposed to a key from [`TestIssuer::add_key`].
    pub(super) rotating: bool,
}

#[derive(Debug)]
pub(super) struct State {
    /// Every key created, oldest first.
    pub(super) keys: Vec<IssuerKey>,
    /// Verbatim JWKs published after the generated ones.
    pub(super) raw_jwks: Vec<Value>,
    /// `kid` of the current RS256 key.
    pub(super) current: String,
    /// Last number used in a generated `kid`.
    pub(super) serial: u32,
    pub(super) discovery_fault: Fault,
    pub(super) jwks_fault: Fault,
    pub(super) max_age: Option<u64>,
    pub(super) discovery_issuer: Option<String>,
    /// The default `aud` of tokens: the audience of the last [`TestIssuer::config`] or
    /// [`TestIssuer::validator`] call, else [`DEFAULT_AUDIENCE`].
    pub(super) audience: String,
}

/// State shared by the handle, the token builders and the server thread.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) issuer: String,
    pub(super) state: Mutex<State>,
    pub(super) discovery_fetches: AtomicUsize,
    pub(super) jwks_fetches: AtomicUsize,
    /// Keys never published, one per kind, made on first use.
    pub(super) strangers: Mutex<HashMap<KeyKind, Arc<Signer>>>,
    /// The token endpoint: registered clients, recorded requests, scripted replies.
    pub(super) token: Mutex<token_endpoint::State>,
}

/// What the server sends for one request.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: std::borrow::Cow<'static, str>,
    pub(super) content_type: std::borrow::Cow<'static, str>,
    pub(super) body: Vec<u8>,
    pub(super) max_age: Option<u64>,
    pub(super) delay: Option<Duration>,
    /// No `Content-Length`: the body ends when the connection closes.
    pub(super) unframed: bool,
    /// Close the connection (after the delay) without answering.
    pub(super) hang_up: bool,
}

impl Response {
    pub(super) fn json(
        status: impl Into<std::borrow::Cow<'static, str>>,
        body: &Value,
        max_age: Option<u64>,
    ) -> Self {
        Self {
            status: status.into(),
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            max_age,
            delay: None,
            unframed: false,
            hang_up: false,
        }
    }
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Both endpoints are [`Fault::Down`]: connections are closed before TLS.
    pub(super) fn down(&self) -> bool {
        let state = self.state();
        state.discovery_fault == Fault::Down && state.jwks_fault == Fault::Down
    }

    pub(super) fn jwks(&self) -> Value {
        let state = self.state();
        let mut keys: Vec<Value> = state
            .keys
            .iter()
            .filter(|key| key.published)
            .map(|key| key.signer.jwk(&key.kid, key.alg))
            .collect();
        keys.extend(state.raw_jwks.iter().cloned());
        json!({ "keys": keys })
    }

    pub(super) fn discovery(&self) -> Value {
        let issuer = &self.issuer;
        let advertised = self
            .state()
            .discovery_issuer
            .clone()
            .unwrap_or_else(|| issuer.clone());
        json!({
            "issuer": advertised,
            "authorization_endpoint": format!("{issuer}authorize"),
            "token_endpoint": format!("{issuer}oauth/token"),
            "userinfo_endpoint": format!("{issuer}userinfo"),
            "jwks_uri": format!("{issuer}.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "PS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
            "dpop_signing_alg_values_supported": ["ES256"],
        })
    }

    /// The answer to one request; `None` closes the connection without one.
    pub(super) fn respond(self: &Arc<Self>, request: &server::Request) -> Option<Response> {
        let (method, path) = (request.method.as_str(), request.path.as_str());
        if path == token_endpoint::TOKEN_PATH {
            return Some(self.token_endpoint(request));
        }
        let is_discovery = path == DISCOVERY_PATH;
        if is_discovery {
            self.discovery_fetches.fetch_add(1, Ordering::SeqCst);
        } else if path == JWKS_PATH {
            self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        } else {
            return Some(Response::json(
                "404 Not Found",
                &json!({"error": "not_found"}),
                None,
            ));
        }
        if method != "GET" && method != "HEAD" {
            return Some(Response::json(
                "405 Method Not Allowed",
                &json!({"error": "method_not_allowed"}),
                None,
            ));
        }
        let (fault, max_age) = {
            let state = self.state();
            let fault = if is_discovery {
                state.discovery_fault
            } else {
                state.jwks_fault
            };
            (fault, state.max_age)
        };
        let document = || {
            if is_discovery {
                self.discovery()
            } else {
                self.jwks()
            }
        };
        Some(match fault {
            Fault::Down => return None,
            Fault::None => Response::json("200 OK", &document(), max_age),
            Fault::Slow(delay) => Response {
                delay: Some(delay),
                ..Response::json("200 OK", &document(), max_age)
            },
            Fault::Garbage => Response {
                content_type: "text/html".into(),
                body: b"<html><body>this is not JSON</body></html>".to_vec(),
                ..Response::json("200 OK", &Value::Null, max_age)
            },
            Fault::ServerError => Response::json(
                "500 Internal Server Error",
                &json!({"error": "server_error"}),
                None,
            ),
            Fault::Oversized => {
                let mut body = br#"{"keys":[],"padding":""#.to_vec();
                body.resize(server::OVERSIZED_BODY, b'x');
                body.extend_from_slice(br#""}"#);
                Response {
                    body,
                    unframed: true,
                    ..Response::json("200 OK", &Value::Null, max_age)
                }
            }
        })
    }

    /// The key that signs a token with `alg`: the key named `kid` if it exists and fits `alg`'s key
    /// kind, else the newest published key declared for `alg`, else the newest published key of the
    /// kind. `None` when the issuer has no such key.
    pub(super) fn pick_key(&self, alg: Algorithm, kid: Option<&str>) -> Option<(String, Arc<Signer>)> {
        let kind = KeyKind::for_alg(alg);
        let state = self.state();
        let by_kid = kid.and_then(|kid| {
            state
                .keys
                .iter()
                .find(|key| key.kid == kid && key.signer.kind() == kind)
        });
        let newest_for_alg = || {
            state
                .keys
                .iter()
                .rev()
                .find(|key| key.published && key.alg == alg)
        };
        let newest_of_kind = || {
            state
                .keys
                .iter()
                .rev()
                .find(|key| key.published && key.signer.kind() == kind)
        };
        by_kid
            .or_else(newest_for_alg)
            .or_else(newest_of_kind)
            .map(|key| (key.kid.clone(), Arc::clone(&key.signer)))
    }

    /// The current RS256 key.
    pub(super) fn current(&self) -> (String, Arc<Signer>) {
        let state = self.state();
        let current = state.keys.iter().rev().find(|key| key.kid == state.current);
        match current {
            Some(key) => (key.kid.clone(), Arc::clone(&key.signer)),
            None => kit_failure("no current key", &state.current),
        }
    }

    /// A key of `kind` that is never published.
    pub(super) fn stranger(&self, kind: KeyKind) -> Arc<Signer> {
        let mut strangers = self.strangers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signer) = strangers.get(&kind) {
            return Arc::clone(signer);
        }
        let signer = match Signer::generate(kind) {
            Ok(signer) => Arc::new(signer),
            Err(error) => kit_failure("generating a key", error),
        };
        strangers.insert(kind, Arc::clone(&signer));
        signer
    }
}
