//! What an attacker with a token of their own might try against the axum adapter, and where it
//! must answer as the Actix adapter does: real HTTP requests to a real axum server, verifying
//! against a loopback test issuer.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::time::Duration;

use auth0_axum::testing::{DpopKey, Endpoint, Fault, TestIssuer};
use auth0_axum::{Auth0, Auth0Config, Auth0Layer, Claims, Validator};
use axum::routing::get;
use axum::{Extension, Router};

const AUDIENCE: &str = "https://api.example.com";
const ADMIN: &str = "https://admin.example.com";

async fn hello(claims: Claims) -> String {
    claims.sub.clone()
}

async fn maybe(claims: Option<Claims>) -> String {
    claims.map_or_else(|| "anonymous".to_owned(), |c| c.sub.clone())
}

/// Serves `app` on 127.0.0.1:0 (plain `axum::serve`, as the README does); aborted on drop.
struct Server {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, task }
}

/// A response: status, lower-case headers, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    /// A refusal: this status, and this error code in the JSON body.
    #[track_caller]
    fn assert_refused(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.body.contains(&format!("\"error\":\"{error}\"")), "{self:?}");
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line and headers, without the final blank line) byte for byte over a
/// fresh TCP connection and reads the whole answer (`Connection: close` is added).
async fn raw(addr: std::net::SocketAddr, head: String) -> Answer {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
            .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .expect("raw request")
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: resp.text().await.expect("body"),
    }
}

/// A router-wide layer verifies with one validator (a public audience), and the admin route names
/// its own (`Extension(admin)`): the public token must not pass there on the layer's verification.
/// The route's validator verifies again, as Actix does under a scope's app data.
#[tokio::test]
async fn an_inner_validator_is_not_satisfied_by_an_outer_layers_verification() {
    let issuer = TestIssuer::start();
    let public = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let admin = Auth0::new(issuer.config(ADMIN)).expect("valid configuration");
    for optional in [false, true] {
        let layer = if optional {
            Auth0Layer::optional()
        } else {
            Auth0Layer::new()
        };
        let app = Router::new()
            .route("/admin", get(hello).layer(Extension(admin.clone())))
            .route_layer(layer.validator(public.clone()));
        let server = serve(app).await;
        let public_token = issuer.token().audience(AUDIENCE).subject("mallory").sign();
        let answer = send(
            reqwest::Client::new()
                .get(format!("http://{}/admin", server.addr))
                .bearer_auth(&public_token),
        )
        .await;
        // optional={optional}: a token for AUDIENCE must not get into the ADMIN validator's route.
        answer.assert_refused(401, "invalid_token");
    }
}

/// The route's own validator is the one `Validator` hands out; a route naming the layer's own
/// validator reuses its verification (a DPoP proof, single-use, is not checked twice).
#[tokio::test]
async fn the_routes_validator_is_handed_out_and_the_same_one_verifies_once() {
    let issuer = TestIssuer::start();
    let public = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let admin = Auth0::new(issuer.config(ADMIN)).expect("valid configuration");
    let which = {
        let admin = admin.clone();
        move |Validator(auth0): Validator| async move { if auth0.same_as(&admin) { "admin" } else { "other" } }
    };
    let app = Router::new()
        .route("/which", get(which).layer(Extension(admin.clone())))
        .route("/same", get(hello).layer(Extension(public.clone())))
        .route_layer(Auth0Layer::optional().validator(public.clone()));
    let server = serve(app).await;
    let anonymous = send(reqwest::Client::new().get(format!("http://{}/which", server.addr))).await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (200, "admin"),
        "{anonymous:?}"
    );

    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience(AUDIENCE)
        .subject("alice")
        .bind_to(&key)
        .sign();
    let url = format!("http://{}/same", server.addr);
    let proof = key.proof("GET", &url).access_token(&token).sign();
    let answer = send(
        reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "alice"),
        "{answer:?}"
    );
}

/// The DPoP `htu` scheme is the connection's, never the client's: an absolute-form target
/// (`GET https://host/path`, RFC 9112 §3.2.2) over plain HTTP does not make a proof for
/// `https://` pass. (TLS served by the app itself is told by `public_origins`.)
#[tokio::test]
async fn an_absolute_form_target_does_not_choose_the_scheme() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let server = serve(
        Router::new()
            .route("/hello", get(hello))
            .route_layer(Auth0Layer::new().validator(auth0)),
    )
    .await;
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience(AUDIENCE)
        .subject("mallory")
        .bind_to(&key)
        .sign();
    let authority = server.addr.to_string();
    let https = format!("https://{authority}/hello");
    let proof = key.proof("GET", &https).access_token(&token).sign();
    let answer = raw(
        server.addr,
        format!("GET {https} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: DPoP {token}\r\nDPoP: {proof}"),
    )
    .await;
    // A proof for https:// must not pass on a plain-HTTP connection.
    answer.assert_refused(401, "invalid_dpop_proof");
}

/// With `trusted_proxies`, forwarded headers are honoured only from a known peer, which axum
/// gives from `ConnectInfo`: served with it, the proxy's request passes; without it, the peer is
/// unknown and the proof is refused (the README says so, and a warning names the fix).
#[tokio::test]
async fn trusted_proxies_need_connect_info() {
    let issuer = TestIssuer::start();
    let config: Auth0Config = issuer
        .config(AUDIENCE)
        .trust_proxy(true)
        .trusted_proxies(["127.0.0.1"]);
    let auth0 = Auth0::new(config).expect("valid configuration");
    let app = Router::new()
        .route("/hello", get(hello))
        .route_layer(Auth0Layer::new().validator(auth0));
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience(AUDIENCE)
        .subject("alice")
        .bind_to(&key)
        .sign();
    let through_proxy = |addr: std::net::SocketAddr| {
        let proof = key
            .proof("GET", "https://api.example.com/hello")
            .access_token(&token)
            .sign();
        send(
            reqwest::Client::new()
                .get(format!("http://{addr}/hello"))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "api.example.com"),
        )
    };
    // Control: served with `ConnectInfo`, the proxy is trusted and the proof passes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = app
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let _with_info = Server {
        addr,
        task: tokio::spawn(async move {
            let _ = axum::serve(listener, service).await;
        }),
    };
    let control = through_proxy(addr).await;
    assert_eq!(
        (control.status, control.body.as_str()),
        (200, "alice"),
        "{control:?}"
    );
    // Without `ConnectInfo`: the same proxy, the same kind of proof, an unknown peer.
    let server = serve(app).await;
    let answer = through_proxy(server.addr).await;
    answer.assert_refused(401, "invalid_dpop_proof");
}

/// `Auth0Layer::optional()` lets a request without `Authorization` through before it looks for a
/// validator, as Actix's `RequireAuth::optional()` does: no validator is needed to be anonymous.
#[tokio::test]
async fn an_optional_layer_without_a_validator_lets_anonymous_requests_through() {
    assert!(
        Auth0::global().is_none(),
        "this binary never installs a global validator"
    );
    let server = serve(
        Router::new()
            .route("/maybe", get(maybe))
            .route_layer(Auth0Layer::optional()),
    )
    .await;
    let answer = send(reqwest::Client::new().get(format!("http://{}/maybe", server.addr))).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "anonymous"),
        "{answer:?}"
    );
}

/// A client that gives up while the layer waits on a cold key fetch does not stall or
/// poison the next request (the fetch outlives the dropped future, single flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_cold_verification_does_not_hurt_the_next_request() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let server = serve(
        Router::new()
            .route("/hello", get(hello))
            .route_layer(Auth0Layer::new().validator(auth0)),
    )
    .await;
    issuer.set_fault_on(Endpoint::Jwks, Fault::Slow(Duration::from_millis(1500)));
    let url = format!("http://{}/hello", server.addr);
    let token = issuer.token().audience(AUDIENCE).subject("bob").sign();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(impatient.get(&url).bearer_auth(&token).send().await.is_err());
    issuer.set_fault_on(Endpoint::Jwks, Fault::None);
    let answer = send(reqwest::Client::new().get(&url).bearer_auth(&token)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "bob"), "{answer:?}");
    assert!(issuer.jwks_fetches() <= 2, "{}", issuer.jwks_fetches());
}

/// Two `Authorization` lines are a 400 under the optional layer and for `Option<Claims>`
/// (never anonymous); a `DPoP` header without `Authorization` is anonymous, as under Actix;
/// refusals carry the Actix headers.
#[tokio::test]
async fn optional_credentials_edge_cases_answer_as_actix() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let server = serve(
        Router::new()
            .route("/layered", get(maybe))
            .route_layer(Auth0Layer::optional().validator(auth0.clone()))
            .route("/bare", get(maybe))
            .layer(Extension(auth0)),
    )
    .await;
    let token = issuer.token().audience(AUDIENCE).subject("carol").sign();
    let authority = server.addr.to_string();
    for path in ["/layered", "/bare"] {
        let two = raw(
            server.addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
                 Authorization: Bearer {token}"
            ),
        )
        .await;
        two.assert_refused(400, "invalid_request");
        assert_eq!(two.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(two.header("content-type"), Some("application/json"), "{path}");
        let proof_only = raw(
            server.addr,
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nDPoP: eyJhbGciOi.e30.sig"),
        )
        .await;
        assert_eq!(
            (proof_only.status, proof_only.body.as_str()),
            (200, "anonymous"),
            "{path}"
        );
    }
}

/// A replay store shared by two validators (one Redis for the process, say).
#[derive(Debug, Clone)]
struct Shared(std::sync::Arc<auth0_axum::MemoryReplayStore>);

impl auth0_axum::ReplayStore for Shared {
    fn check_and_record(&self, proof: &auth0_axum::ProofUse<'_>) -> auth0_axum::ReplayCheck {
        self.0.check_and_record(proof)
    }
}

/// A layer of one validator over a route naming another, both on one replay store: the route's
/// verification of the same request does not take the proof the layer recorded for a replay;
/// sent again, the request is refused.
#[tokio::test]
async fn a_routes_validator_does_not_take_the_layers_recorded_proof_for_a_replay() {
    let issuer = TestIssuer::start();
    let store = Shared(std::sync::Arc::new(auth0_axum::MemoryReplayStore::new(10_000)));
    let outer = Auth0::new(issuer.config(AUDIENCE).replay_store(store.clone())).expect("valid");
    let inner = Auth0::new(issuer.config(ADMIN).replay_store(store)).expect("valid");
    let server = serve(
        Router::new()
            .route("/admin", get(hello).layer(Extension(inner)))
            .route_layer(Auth0Layer::new().validator(outer)),
    )
    .await;
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audiences([AUDIENCE, ADMIN])
        .subject("alice")
        .bind_to(&key)
        .sign();
    let url = format!("http://{}/admin", server.addr);
    let proof = key.proof("GET", &url).access_token(&token).sign();
    let send_it = || {
        send(
            reqwest::Client::new()
                .get(&url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof.clone()),
        )
    };
    let first = send_it().await;
    assert_eq!((first.status, first.body.as_str()), (200, "alice"), "{first:?}");
    let again = send_it().await;
    again.assert_refused(401, "invalid_dpop_proof");
}
