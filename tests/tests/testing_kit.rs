//! The testing kit as a user's tests use it, through `actix_web::test` (issue 11, items 7–9): test
//! claims through the real guard and middleware, the offline validator, and the request
//! one-liners.

#![allow(clippy::expect_used)]

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpMessage, HttpResponse, Responder, get, post, test, web};
use auth0_runtime::testing::*;
use auth0_runtime::{Auth0, Claims, RequireAuth, Scheme, require_auth};
use serde::Deserialize;
use serde_json::{Value, json};

const AUDIENCE: &str = "https://api.example.com";

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("{} {}", claims.sub, claims.scheme()))
}

#[get("/api/scoped")]
#[require_auth(scopes = "read:messages write:messages")]
async fn scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

#[get("/api/any")]
#[require_auth(any_scopes = ["admin", "read:data"])]
async fn any(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

#[get("/api/admin")]
#[require_auth(permissions = ["read:admin"])]
async fn admin(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

#[derive(Deserialize)]
struct Profile {
    #[serde(rename = "https://myapp.example.com/roles", default)]
    roles: Vec<String>,
}

#[get("/api/profile")]
#[require_auth]
async fn profile(claims: Claims<Profile>) -> impl Responder {
    let org = claims.org_id.clone().unwrap_or_default();
    HttpResponse::Ok().json(json!({
        "sub": claims.sub,
        "org": org,
        "roles": claims.custom().roles,
        "permissions": claims.permissions,
        "aud": claims.aud.iter().collect::<Vec<_>>(),
    }))
}

#[post("/api/messages")]
#[require_auth(scopes = "write:messages")]
async fn create(claims: Claims, body: web::Json<Value>) -> impl Responder {
    HttpResponse::Created().body(format!("{} {}", claims.sub, body["text"]))
}

async fn plain(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().body(claims.sub.clone())
}

async fn maybe(claims: Option<Claims>) -> HttpResponse {
    HttpResponse::Ok().body(claims.map_or_else(|| "anonymous".to_owned(), |c| c.sub.clone()))
}

/// Every route of this file, with `auth0` in the app data when given.
fn routes(
    auth0: Option<Auth0>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = App::new();
    let app = match auth0 {
        Some(auth0) => app.app_data(auth0),
        None => app,
    };
    app.service(private)
        .service(scoped)
        .service(any)
        .service(admin)
        .service(profile)
        .service(create)
        .service(
            web::scope("/mw")
                .wrap(
                    RequireAuth::new()
                        .scopes(["read:messages"])
                        .permissions(["read:admin"]),
                )
                .route("", web::get().to(plain)),
        )
        .service(
            web::scope("/optional")
                .wrap(RequireAuth::optional().scopes(["read:messages"]))
                .route("", web::get().to(maybe)),
        )
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: String,
}

impl Answer {
    async fn read(resp: ServiceResponse) -> Self {
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).expect("utf-8");
        Self {
            status,
            challenge,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// A refusal with this status and `error` code.
    fn assert_refused(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.json()["detail"]["error"], error, "{self:?}");
    }
}

/// The header `name` of a finished request.
fn header(req: &impl HttpMessage, name: &str) -> actix_web::http::header::HeaderValue {
    req.headers().get(name).cloned().expect("header")
}

async fn call<S, R>(app: &S, req: R) -> Answer
where
    S: Service<R, Response = ServiceResponse, Error = actix_web::Error>,
{
    Answer::read(test::call_service(app, req).await).await
}

// Item 7: test claims, no token.

#[actix_web::test]
async fn test_claims_reach_the_handler_without_any_validator() {
    let app = test::init_service(routes(None)).await;
    let get = |path: &str, claims: ClaimsBuilder| test::TestRequest::get().uri(path).authenticated(claims);

    let answer = call(&app, get("/api/private", claims().subject("auth0|alice"))).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "auth0|alice Bearer"));
    let answer = call(&app, get("/api/private", claims().scheme(Scheme::Dpop))).await;
    assert_eq!(answer.body, "user|123 DPoP");

    let alice = claims()
        .subject("auth0|alice")
        .org_id("org_1")
        .permissions(["read:admin"])
        .audiences([AUDIENCE, "https://other.example.com"])
        .claim("https://myapp.example.com/roles", json!(["admin", "editor"]));
    let answer = call(&app, get("/api/profile", alice)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({
            "sub": "auth0|alice",
            "org": "org_1",
            "roles": ["admin", "editor"],
            "permissions": ["read:admin"],
            "aud": [AUDIENCE, "https://other.example.com"],
        })
    );
    // Custom claims of the wrong shape for `Claims<Profile>`: refused as a token would be.
    let wrong = claims().claim("https://myapp.example.com/roles", "admin");
    call(&app, get("/api/profile", wrong))
        .await
        .assert_refused(401, "invalid_token");

    // The handler's own extractors still run, after the guard.
    let req = test::TestRequest::post()
        .uri("/api/messages")
        .set_json(json!({"text": "hi"}))
        .authenticated(claims().scope("write:messages"));
    let answer = call(&app, req).await;
    assert_eq!((answer.status, answer.body.as_str()), (201, "user|123 \"hi\""));

    // Without test claims, an app with no validator still fails closed.
    let req = test::TestRequest::get().uri("/api/private").to_request();
    call(&app, req).await.assert_refused(500, "internal_server_error");
}

#[actix_web::test]
async fn the_guard_checks_the_scopes_and_permissions_of_test_claims() {
    let app = test::init_service(routes(None)).await;
    let status = |path: &'static str, claims: ClaimsBuilder| {
        let app = &app;
        async move {
            let req = test::TestRequest::get().uri(path).authenticated(claims);
            call(app, req).await
        }
    };
    let both = claims().scope("read:messages write:messages");
    assert_eq!(status("/api/scoped", both).await.status, 200);
    let refused = status("/api/scoped", claims().scope("read:messages")).await;
    refused.assert_refused(403, "insufficient_scope");
    assert_eq!(
        refused.challenge.as_deref(),
        Some(
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"the access token \
             lacks a required scope\", scope=\"read:messages write:messages\", DPoP algs=\"ES256\""
        )
    );
    assert_eq!(status("/api/any", claims().scope("read:data")).await.status, 200);
    status("/api/any", claims().scope("write:data"))
        .await
        .assert_refused(403, "insufficient_scope");
    assert_eq!(
        status("/api/admin", claims().permissions(["read:admin"]))
            .await
            .status,
        200
    );
    // Scopes are not permissions.
    status("/api/admin", claims().scope("read:admin"))
        .await
        .assert_refused(403, "insufficient_scope");
}

#[actix_web::test]
async fn a_validator_renders_the_refusals_of_test_claims() {
    let issuer = TestIssuer::offline();
    let config = issuer
        .config(AUDIENCE)
        .dpop_required(true)
        .on_refusal(|_, mut refusal| {
            refusal.set_header("x-refused", "yes");
            refusal
        });
    let app = test::init_service(routes(Some(Auth0::new(config).expect("config")))).await;
    let req = test::TestRequest::get()
        .uri("/api/admin")
        .authenticated(claims().scheme(Scheme::Dpop));
    let resp = test::call_service(&app, req).await;
    assert_eq!(
        resp.headers().get("x-refused").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    let answer = Answer::read(resp).await;
    answer.assert_refused(403, "insufficient_scope");
    let challenge = answer.challenge.unwrap_or_default();
    // DPoP required: the DPoP challenge only.
    assert_eq!(
        challenge,
        "DPoP error=\"insufficient_scope\", error_description=\"the access token lacks a required \
         permission\", scope=\"read:admin\", algs=\"ES256\""
    );
    // Test claims take precedence over a token, even a bad one, and over the validator's modes.
    let req = test::TestRequest::get()
        .uri("/api/private")
        .bearer("not-a-token")
        .authenticated(claims().subject("auth0|carol"));
    assert_eq!(call(&app, req).await.body, "auth0|carol Bearer");
}

#[actix_web::test]
async fn the_middleware_checks_test_claims() {
    let app = test::init_service(routes(None)).await;
    let get = |path: &str, claims: ClaimsBuilder| test::TestRequest::get().uri(path).authenticated(claims);
    let ok = claims()
        .subject("auth0|dave")
        .scope("read:messages")
        .permissions(["read:admin"]);
    let answer = call(&app, get("/mw", ok.clone())).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "auth0|dave"));
    call(&app, get("/mw", claims().scope("read:messages")))
        .await
        .assert_refused(403, "insufficient_scope");
    call(&app, get("/mw", claims().permissions(["read:admin"])))
        .await
        .assert_refused(403, "insufficient_scope");

    // Optional authentication: test claims are credentials, so the route's scopes apply.
    let answer = call(&app, get("/optional", ok)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "auth0|dave"));
    call(&app, get("/optional", claims()))
        .await
        .assert_refused(403, "insufficient_scope");
    let anonymous = call(&app, test::TestRequest::get().uri("/optional").to_request()).await;
    assert_eq!((anonymous.status, anonymous.body.as_str()), (200, "anonymous"));
}

// Item 8: the offline validator, and tokens for the configured audience.

#[actix_web::test]
async fn the_offline_validator_verifies_real_signatures_without_fetching() {
    let issuer = TestIssuer::start();
    let app = test::init_service(routes(Some(issuer.validator(AUDIENCE)))).await;
    let bearer = |path: &str, token: &str| test::TestRequest::get().uri(path).bearer(token).to_request();

    let token = issuer.token().scope("read:messages write:messages").sign();
    let answer = call(&app, bearer("/api/scoped", &token)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Real verification: a forged signature, an expired token, another audience, an unknown kid.
    let refusals = [
        issuer.token().sign_with_unknown_key(),
        issuer.token().expires_in(-10).sign(),
        issuer.token().audience("https://other.example.com").sign(),
        issuer.token().kid("nobody").sign(),
    ];
    for token in refusals {
        call(&app, bearer("/api/private", &token))
            .await
            .assert_refused(401, "invalid_token");
    }
    // Nothing was fetched, not even for the unknown kid.
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (0, 0));
}

#[actix_web::test]
async fn an_offline_issuer_needs_no_server() {
    let issuer = TestIssuer::offline();
    assert_eq!(issuer.port(), 0);
    assert!(issuer.ca_pem().is_empty());
    // Its configuration holds its keys: adjust it, build it, no fetch can happen.
    let auth0 = Auth0::new(issuer.config("https://my-api").dpop_required(true)).expect("config");
    let app = test::init_service(routes(Some(auth0))).await;
    let key = DpopKey::generate();
    let token = issuer.token().bind_to(&key).sign(); // aud: https://my-api
    let req = test::TestRequest::get().uri("/api/private").dpop(&key, &token);
    let answer = call(&app, req).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "user|123 DPoP"));
    // DPoP required: Bearer is refused.
    let req = test::TestRequest::get()
        .uri("/api/private")
        .bearer(&token)
        .to_request();
    call(&app, req).await.assert_refused(400, "invalid_request");
    // A token of another offline issuer is not trusted.
    let stranger = TestIssuer::offline()
        .token()
        .audience("https://my-api")
        .bind_to(&key)
        .sign();
    let req = test::TestRequest::get().uri("/api/private").dpop(&key, &stranger);
    call(&app, req).await.assert_refused(401, "invalid_token");
}

#[actix_web::test]
async fn tokens_default_to_the_audience_of_the_last_configuration() {
    let issuer = TestIssuer::start();
    // The case of issue 11: a config for another audience and a token with defaults.
    let app = test::init_service(routes(Some(
        Auth0::new(issuer.config("https://my-api")).expect("config"),
    )))
    .await;
    let req = test::TestRequest::get()
        .uri("/api/private")
        .bearer(&issuer.token().sign())
        .to_request();
    assert_eq!(call(&app, req).await.status, 200);
    // It went through discovery and the key set, as a tenant would.
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));

    let other = issuer.validator("https://other-api");
    let app = test::init_service(routes(Some(other))).await;
    let req = test::TestRequest::get()
        .uri("/api/private")
        .bearer(&issuer.token().sign())
        .to_request();
    assert_eq!(call(&app, req).await.status, 200);
}

// Item 9: the one-liners.

#[actix_web::test]
async fn the_one_liners_send_bearer_and_dpop_requests() {
    let issuer = TestIssuer::offline();
    let app = test::init_service(routes(Some(issuer.validator(AUDIENCE)))).await;

    let token = issuer.token().subject("auth0|erin").sign();
    let req = test::TestRequest::get()
        .uri("/api/private")
        .bearer(&token)
        .to_request();
    let answer = call(&app, req).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "auth0|erin Bearer"));

    // DPoP: the proof is made for the request's method and URL (the query is not part of it).
    let key = DpopKey::generate();
    let bound = issuer.token().bind_to(&key).scope("write:messages").sign();
    let req = test::TestRequest::post()
        .uri("/api/messages?draft=1")
        .set_json(json!({"text": "hi"}))
        .dpop(&key, &bound);
    let answer = call(&app, req).await;
    assert_eq!((answer.status, answer.body.as_str()), (201, "user|123 \"hi\""));
    // With a Host header, the proof names that host.
    let req = test::TestRequest::get()
        .uri("/api/private")
        .insert_header(("host", "api.example.com"))
        .dpop(&key, &bound);
    assert_eq!(call(&app, req).await.body, "user|123 DPoP");

    // Each one-liner makes a fresh proof; sending one of its proofs again is a replay.
    let first = test::TestRequest::get().uri("/api/private").dpop(&key, &bound);
    let (authorization, proof) = (header(&first, "authorization"), header(&first, "dpop"));
    assert_eq!(call(&app, first).await.status, 200);
    assert_eq!(
        call(
            &app,
            test::TestRequest::get().uri("/api/private").dpop(&key, &bound)
        )
        .await
        .status,
        200
    );
    let replayed = test::TestRequest::get()
        .uri("/api/private")
        .insert_header(("authorization", authorization))
        .insert_header(("dpop", proof))
        .to_request();
    let answer = call(&app, replayed).await;
    answer.assert_refused(401, "invalid_dpop_proof");
    assert_eq!(
        answer.json()["detail"]["error_description"],
        "the DPoP proof has already been used"
    );
    // The one-liner signs the request's own method: its proof for a GET does not pass a POST.
    let get = test::TestRequest::get().uri("/api/messages").dpop(&key, &bound);
    let post = test::TestRequest::post()
        .uri("/api/messages")
        .set_json(json!({"text": "hi"}))
        .insert_header(("authorization", header(&get, "authorization")))
        .insert_header(("dpop", header(&get, "dpop")))
        .to_request();
    call(&app, post).await.assert_refused(401, "invalid_dpop_proof");
}
