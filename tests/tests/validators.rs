//! Several validators in one app (nested scopes, shared replay stores), an adapter on another
//! executor, and the refusal hook: real HTTP to a real Actix server, real test issuers.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use auth0_runtime::testing::{DpopKey, Fault, TestIssuer};
use auth0_runtime::{Auth0, Claims, MemoryReplayStore, ProofUse, ReplayCheck, ReplayStore, RequireAuth};
use common::{AUDIENCE, Answer, Parts, serve};

async fn sub(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().body(claims.sub.clone())
}

async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Answer::read(req.send().await.expect("request")).await
}

/// Two tenants: the app's validator is tenant A's, as plain app data; the `/b` scope is tenant
/// B's, as `web::Data<Auth0>`. Actix finds a plain `Auth0` in any container before a `Data` one,
/// so A's outer validator used to shadow B's inner one: A's tokens opened B's scope. Which form is
/// the inner one cannot be told, so two different validators in the two forms are refused (500);
/// one form nests as expected.
#[tokio::test]
async fn validators_in_two_forms_are_refused_rather_than_guessed() {
    let tenant_a = TestIssuer::start();
    let tenant_b = TestIssuer::start();
    let a = tenant_a.validator(AUDIENCE);
    let b = tenant_b.validator(AUDIENCE);
    let (base, _server) = serve(move |cfg| {
        cfg.app_data(a.clone()).service(
            web::scope("/b")
                .app_data(web::Data::new(b.clone()))
                .route("/claims", web::get().to(sub))
                .service(
                    web::scope("/mw")
                        .wrap(RequireAuth::new())
                        .route("", web::get().to(|| async { HttpResponse::Ok().body("secret") })),
                ),
        );
    });
    let own = tenant_b.token().subject("b-user").sign();
    let foreign = tenant_a.token().subject("a-user").sign();
    let mut seen = Vec::new();
    for path in ["/b/claims", "/b/mw"] {
        let own = get(&base, path, &[("authorization", &format!("Bearer {own}"))]).await;
        let foreign = get(&base, path, &[("authorization", &format!("Bearer {foreign}"))]).await;
        seen.push((path, own.status, foreign.status));
    }
    assert_eq!(
        seen,
        [("/b/claims", 500, 500), ("/b/mw", 500, 500)],
        "(path, tenant B's token, tenant A's token) on tenant B's scope"
    );

    // Both as `Data`, or both plain: the inner one is found first.
    for plain in [false, true] {
        let a = tenant_a.validator(AUDIENCE);
        let b = tenant_b.validator(AUDIENCE);
        let (base, _server) = serve(move |cfg| {
            let scope = web::scope("/b").route("/claims", web::get().to(sub));
            if plain {
                cfg.app_data(a.clone()).service(scope.app_data(b.clone()));
            } else {
                cfg.app_data(web::Data::new(a.clone()))
                    .service(scope.app_data(web::Data::new(b.clone())));
            }
        });
        let own = get(&base, "/b/claims", &[("authorization", &format!("Bearer {own}"))]).await;
        let foreign = get(
            &base,
            "/b/claims",
            &[("authorization", &format!("Bearer {foreign}"))],
        )
        .await;
        assert_eq!((own.status, foreign.status), (200, 401), "plain: {plain}");
    }
}

/// A `ReplayStore` shared by two validators (as two validators of one process share one Redis):
/// a real in-memory store behind an `Arc`.
#[derive(Debug, Clone)]
struct Shared(Arc<MemoryReplayStore>);

impl ReplayStore for Shared {
    fn check_and_record(&self, proof: &ProofUse<'_>) -> ReplayCheck {
        self.0.check_and_record(proof)
    }
}

/// Nested validators over one shared replay store: the outer `RequireAuth` verifies and records
/// the proof; the inner route's validator verifies the same request again and used to find the
/// proof recorded and refuse a first use as a replay. Now it is not a replay of itself; sent
/// again, the request is still refused.
#[tokio::test]
async fn a_second_validator_does_not_take_the_requests_own_proof_for_a_replay() {
    let issuer = TestIssuer::start();
    let store = Shared(Arc::new(MemoryReplayStore::new(10_000)));
    let outer = Auth0::new(
        issuer
            .config("https://outer.example.com")
            .replay_store(store.clone()),
    )
    .expect("config");
    let inner = Auth0::new(
        issuer
            .config("https://inner.example.com")
            .replay_store(store.clone()),
    )
    .expect("config");
    let (base, _server) = serve(move |cfg| {
        cfg.service(
            web::scope("/outer")
                .app_data(outer.clone())
                .wrap(RequireAuth::new())
                .service(
                    web::scope("/inner")
                        .app_data(inner.clone())
                        .route("", web::get().to(sub)),
                ),
        );
    });
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audiences(["https://outer.example.com", "https://inner.example.com"])
        .bind_to(&key)
        .sign();
    let proof = key
        .proof("GET", &format!("{base}/outer/inner"))
        .access_token(&token)
        .sign();
    let answer = get(
        &base,
        "/outer/inner",
        &[("authorization", &format!("DPoP {token}")), ("dpop", &proof)],
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "a first use of a fresh proof was refused: {answer:?}"
    );
    let again = get(
        &base,
        "/outer/inner",
        &[("authorization", &format!("DPoP {token}")), ("dpop", &proof)],
    )
    .await;
    again.assert_refused(401, "invalid_dpop_proof");
}

/// Polls `future` to completion on this thread, outside any Tokio runtime (as a framework on
/// another executor would).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// An adapter on another executor (smol, a hand-rolled one) verifying on a cold cache: the HTTP
/// client needs Tokio and used to panic; now the request is refused 503 and the cause logged.
#[test]
fn a_cold_verification_outside_tokio_is_unavailable_not_a_panic() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("config");
    let token = issuer.token().sign();
    let parts = Parts(vec![("authorization", format!("Bearer {token}"))]);
    let verifying = auth0.authenticate_request(&parts);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(verifying)));
    match outcome {
        Ok(Ok(_)) => panic!("verified without fetching the keys"),
        Ok(Err(refusal)) => assert_eq!(refusal.status, 503, "{refusal:?}"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("the verification panicked outside Tokio: {message}");
        }
    }
}

/// An `on_refusal` hook that answers 200 and adds a header with an invalid name and one with a
/// CR/LF value: the 200 carries the refusal's body, the bad headers are dropped, the handler
/// never runs, and the connection stays usable.
#[tokio::test]
async fn a_hook_that_answers_200_with_bad_headers_is_rendered_safely() {
    let issuer = TestIssuer::start();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let auth0 = Auth0::new(issuer.config(AUDIENCE).on_refusal(|_, mut refusal| {
        refusal.status = 200;
        refusal.headers.push(("bad name".to_owned(), "x".to_owned()));
        refusal.headers.push(("x-split".to_owned(), "a\r\nb".to_owned()));
        refusal.set_header("x-kept", "yes");
        refusal
    }))
    .expect("config");
    let counter = Arc::clone(&ran);
    let (base, _server) = serve(move |cfg| {
        let counter = Arc::clone(&counter);
        cfg.app_data(auth0.clone())
            .service(web::scope("/mw").wrap(RequireAuth::new()).route(
                "",
                web::get().to(move || {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async { HttpResponse::Ok().body("secret") }
                }),
            ));
        cfg.route("/claims", web::get().to(sub));
    });
    let http = reqwest::Client::new();
    for path in ["/mw", "/claims", "/mw"] {
        let resp = http.get(format!("{base}{path}")).send().await.expect("request");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers().get("x-kept").map(|v| v.as_bytes()),
            Some(&b"yes"[..])
        );
        assert!(resp.headers().get("x-split").is_none());
        let body = resp.text().await.expect("body");
        assert!(body.contains("\"unauthorized\""), "{body}");
    }
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A client that gives up while its request waits on a slow key-set fetch
/// leaves nothing half-done: the fetch finishes in its own task (one fetch), and the next
/// request is served from the cache.
#[tokio::test]
async fn a_cancelled_cold_request_leaves_the_key_fetch_whole() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("config");
    let (base, _server) = serve(move |cfg| {
        cfg.app_data(auth0.clone()).route("/claims", web::get().to(sub));
    });
    issuer.set_fault_on(
        auth0_runtime::testing::Endpoint::Jwks,
        Fault::Slow(Duration::from_millis(1500)),
    );
    let token = issuer.token().sign();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let gave_up = impatient
        .get(format!("{base}/claims"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(gave_up.is_err(), "the client should have timed out");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    issuer.set_fault(Fault::None);
    let answer = get(&base, "/claims", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(issuer.jwks_fetches(), 1);
}

/// `RequireAuth::optional()` on the app (validator A) over a scope of validator B: the handler's
/// `Option<Claims>` verifies under B, and Actix's `Option` reads B's refusal as `None` (documented
/// on `RequireAuth::optional`). The documented fix, the middleware on a resource inside B's
/// scope, refuses the token B does not accept.
#[tokio::test]
async fn optional_auth_refuses_under_the_routes_own_validator() {
    let issuer = TestIssuer::start();
    let a = Auth0::new(issuer.config("https://a.example.com")).expect("config");
    let b = Auth0::new(issuer.config("https://b.example.com")).expect("config");
    let (base, _server) = serve(move |cfg| {
        cfg.service(
            web::scope("")
                .app_data(a.clone())
                .wrap(RequireAuth::optional())
                .service(
                    web::scope("/b").app_data(b.clone()).service(
                        web::resource("")
                            .wrap(RequireAuth::optional())
                            .route(web::get().to(|claims: Option<Claims>| async move {
                                HttpResponse::Ok()
                                    .body(claims.map_or("anonymous".to_owned(), |c| c.sub.clone()))
                            })),
                    ),
                ),
        );
    });
    let for_a_only = issuer.token().audience("https://a.example.com").sign();
    let answer = get(&base, "/b", &[("authorization", &format!("Bearer {for_a_only}"))]).await;
    answer.assert_refused(401, "invalid_token");
    // The outer middleware checks every token under A too.
    let for_b = issuer
        .token()
        .audiences(["https://a.example.com", "https://b.example.com"])
        .subject("bob")
        .sign();
    let answer = get(&base, "/b", &[("authorization", &format!("Bearer {for_b}"))]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let anonymous = get(&base, "/b", &[]).await;
    assert_eq!(anonymous.status, 200, "{anonymous:?}");
}

/// What Actix sends for a 503 (keys down, nothing cached) is exactly
/// `Auth0::refusal` for the same error: status, body, Retry-After, Cache-Control, Content-Type,
/// no WWW-Authenticate.
#[tokio::test]
async fn actix_sends_what_auth0_refusal_renders() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("config");
    let expected = auth0.refusal(
        &auth0_runtime::AuthError::Unavailable(
            "the signing keys cannot be fetched right now, try again later",
        ),
        false,
    );
    let served = auth0.clone();
    let (base, _server) = serve(move |cfg| {
        cfg.app_data(served.clone()).route("/claims", web::get().to(sub));
    });
    issuer.set_fault(Fault::Down);
    let token = issuer.token().sign();
    let resp = reqwest::Client::new()
        .get(format!("{base}/claims"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), expected.status);
    for name in ["retry-after", "cache-control", "content-type", "www-authenticate"] {
        assert_eq!(
            resp.headers().get(name).and_then(|v| v.to_str().ok()),
            expected.header(name),
            "{name}"
        );
    }
    assert_eq!(resp.text().await.expect("body"), expected.body);
}
