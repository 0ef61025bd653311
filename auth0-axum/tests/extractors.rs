//! The layer's options and the extractors over real HTTP, against a loopback test issuer.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use auth0_axum::Auth0;
use auth0_axum::testing::{DpopKey, TestIssuer};
use auth0_axum::{AccessToken, Auth0Layer, Claims, Validator};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

const AUDIENCE: &str = "https://api.example.com";
const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

struct Api {
    base: String,
    issuer: TestIssuer,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Api {
    async fn start(routes: impl FnOnce(Auth0) -> Router) -> Self {
        let issuer = TestIssuer::start();
        let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = routes(auth0);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, issuer, server }
    }

    async fn get(&self, path: &str, authorization: Option<String>) -> (u16, Option<String>, String) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, resp.text().await.expect("body"))
    }
}

async fn hello(claims: Claims) -> String {
    claims.sub.clone()
}

async fn maybe(claims: Option<Claims>) -> String {
    claims.map_or_else(|| "anonymous".to_owned(), |c| c.sub.clone())
}

async fn token(token: AccessToken) -> String {
    format!("{} bytes", token.as_str().len())
}

#[derive(Deserialize)]
struct Roles {
    #[serde(rename = "https://example.com/roles")]
    roles: Vec<String>,
}

async fn roles(claims: Claims<Roles>) -> String {
    claims.custom().roles.join(",")
}

async fn ready(Validator(auth0): Validator) -> String {
    auth0.ready().await.is_ready().to_string()
}

/// `Option<Claims>` is `None` only without an `Authorization` header: a bad token is refused,
/// with or without the optional layer.
#[tokio::test]
async fn option_claims_is_none_only_without_credentials() {
    let api = Api::start(|auth0| {
        Router::new()
            .route("/bare", get(maybe))
            .route(
                "/layered",
                get(maybe).route_layer(Auth0Layer::optional().validator(auth0.clone())),
            )
            .layer(Extension(auth0))
    })
    .await;
    let good = api.issuer.token().audience(AUDIENCE).subject("carol").sign();
    for path in ["/bare", "/layered"] {
        assert_eq!(api.get(path, None).await.2, "anonymous", "{path}");
        assert_eq!(
            api.get(path, Some(format!("Bearer {good}"))).await.2,
            "carol",
            "{path}"
        );
        let (status, challenge, body) = api.get(path, Some("Bearer nope".to_owned())).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("\"invalid_token\""), "{path}: {body}");
        assert!(challenge.unwrap().contains("error=\"invalid_token\""), "{path}");
    }
}

/// Under a router's layer and a route's layer of the same validator, a DPoP request is verified
/// once: the proof is single-use, so a second verification would refuse it as a replay.
#[tokio::test]
async fn nested_layers_verify_once_and_check_both_requirements() {
    let api = Api::start(|auth0| {
        Router::new()
            .route(
                "/scoped",
                get(hello).route_layer(
                    Auth0Layer::new()
                        .validator(auth0.clone())
                        .scopes(["read:messages"]),
                ),
            )
            .route_layer(Auth0Layer::new().validator(auth0))
    })
    .await;
    let key = DpopKey::generate();
    let bound = |scope: &str| {
        api.issuer
            .token()
            .audience(AUDIENCE)
            .subject("dave")
            .scope(scope)
            .bind_to(&key)
            .sign()
    };
    let url = format!("{}/scoped", api.base);
    let send = |token: String| {
        let proof = key.proof("GET", &url).access_token(&token).sign();
        reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let ok = send(bound("read:messages")).await.expect("request");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "dave");
    let refused = send(bound("other")).await.expect("request");
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        "Bearer realm=\"api\", DPoP error=\"insufficient_scope\", error_description=\"the access token \
         lacks a required scope\", scope=\"read:messages\", algs=\"ES256\""
    );
}

/// `any_scopes`, `permissions` and step-up (`acr_values`, `max_age`) on the layer, as on
/// `RequireAuth`.
#[tokio::test]
async fn the_layer_checks_every_kind_of_requirement() {
    let api = Api::start(|auth0| {
        let layer = || Auth0Layer::new().validator(auth0.clone());
        Router::new()
            .route("/any", get(hello).route_layer(layer().any_scopes(["a", "b"])))
            .route(
                "/perm",
                get(hello).route_layer(layer().permissions(["delete:all"])),
            )
            .route(
                "/mfa",
                get(hello).route_layer(layer().acr_values([MFA]).max_age(Duration::from_secs(300))),
            )
    })
    .await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let token = |scope: &str| api.issuer.token().audience(AUDIENCE).subject("erin").scope(scope);
    let bearer = |t: String| Some(format!("Bearer {t}"));
    assert_eq!(api.get("/any", bearer(token("b").sign())).await.0, 200);
    let (status, challenge, _) = api.get("/any", bearer(token("c").sign())).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().contains("scope=\"a b\""));
    let (status, _, body) = api.get("/perm", bearer(token("").sign())).await;
    assert_eq!(status, 403, "{body}");
    let with_perm = token("").claim("permissions", vec!["delete:all"]).sign();
    assert_eq!(api.get("/perm", bearer(with_perm)).await.0, 200);
    let weak = token("").claim("acr", "pwd").claim("auth_time", now).sign();
    let (status, challenge, body) = api.get("/mfa", bearer(weak)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("insufficient_user_authentication"));
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer realm=\"api\", error=\"insufficient_user_authentication\", error_description=\"a \
             different authentication level is required\", acr_values=\"http://schemas.openid.net/pape/\
             policies/2007/06/multi-factor\", max_age=\"300\", DPoP algs=\"ES256\""
        )
    );
    let strong = token("").claim("acr", MFA).claim("auth_time", now - 10).sign();
    assert_eq!(api.get("/mfa", bearer(strong)).await.0, 200);
    let old = token("").claim("acr", MFA).claim("auth_time", now - 1000).sign();
    assert_eq!(api.get("/mfa", bearer(old)).await.0, 401);
}

/// `AccessToken` hands out the verified token; custom claims of the wrong shape are refused as an
/// invalid token; `Validator` finds the layer's validator.
#[tokio::test]
async fn access_token_custom_claims_and_the_validator() {
    let api = Api::start(|auth0| {
        Router::new()
            .route("/token", get(token))
            .route("/roles", get(roles))
            .route("/ready", get(ready))
            .route_layer(Auth0Layer::new().validator(auth0))
    })
    .await;
    let plain = api.issuer.token().audience(AUDIENCE).sign();
    let (status, _, body) = api.get("/token", Some(format!("Bearer  {plain}"))).await;
    assert_eq!((status, body), (200, format!("{} bytes", plain.len())));
    let with_roles = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .claim("https://example.com/roles", vec!["admin", "ops"])
        .sign();
    assert_eq!(
        api.get("/roles", Some(format!("Bearer {with_roles}"))).await.2,
        "admin,ops"
    );
    let (status, challenge, body) = api.get("/roles", Some(format!("Bearer {plain}"))).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge
            .unwrap()
            .contains("custom claims do not have the expected shape")
    );
    assert_eq!(api.get("/ready", Some(format!("Bearer {plain}"))).await.2, "true");
}

#[tokio::test]
async fn the_refusal_hook_applies_under_axum_too() {
    let issuer = TestIssuer::start();
    let config = issuer.config(AUDIENCE).on_refusal(|error, mut refusal| {
        refusal.set_header("x-auth-error", error.code());
        refusal
    });
    let auth0 = Auth0::new(config).expect("valid configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/hello", get(hello))
        .layer(Auth0Layer::new().validator(auth0));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let resp = reqwest::Client::new()
        .get(format!("{base}/hello"))
        .bearer_auth(issuer.token().audience(AUDIENCE).expires_in(-60).sign())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers().get("x-auth-error").map(|v| v.to_str().unwrap()),
        Some("invalid_token")
    );
    server.abort();
}

static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn fake_now() -> i64 {
    NOW.load(std::sync::atomic::Ordering::Relaxed)
}

/// With DPoP server nonces on, the layer answers a proof without a nonce 401 `use_dpop_nonce`
/// with the nonce to use; a success whose proof carried the previous step's nonce carries the
/// current one in `DPoP-Nonce` (RFC 9449 §8.2), so the client moves on without another 401; a
/// success with the current nonce carries none.
#[tokio::test]
async fn the_layer_asks_for_nonces_and_renews_them_on_success() {
    let issuer = TestIssuer::start();
    let real_now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let t = (real_now / 60) * 60 + 5;
    NOW.store(t, std::sync::atomic::Ordering::Relaxed);
    let config = issuer
        .config(AUDIENCE)
        .dpop_nonce_secrets([vec![7u8; 32]])
        .clock(fake_now);
    let auth0 = Auth0::new(config).expect("valid configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hello", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/hello", get(hello))
        .route_layer(Auth0Layer::new().validator(auth0.clone()));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience(AUDIENCE)
        .subject("frank")
        .bind_to(&key)
        .issued_at(t - 10)
        .expires_at(t + 3600)
        .sign();
    let send = |now: i64, nonce: Option<&str>| {
        let mut proof = key.proof("GET", &url).access_token(&token).issued_at(now);
        if let Some(nonce) = nonce {
            proof = proof.nonce(nonce);
        }
        reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof.sign())
            .send()
    };
    let header = |resp: &reqwest::Response, name: &str| {
        resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
    };

    let asked = send(t, None).await.expect("request");
    assert_eq!(asked.status().as_u16(), 401);
    let old = header(&asked, "dpop-nonce").expect("a nonce to retry with");
    assert_eq!(Some(&old), auth0.dpop_nonce().as_ref());
    let challenge = header(&asked, "www-authenticate").unwrap();
    assert!(challenge.contains("DPoP error=\"use_dpop_nonce\""), "{challenge}");
    assert!(asked.text().await.unwrap().contains("\"use_dpop_nonce\""));

    let current = send(t, Some(&old)).await.expect("request");
    assert_eq!(current.status().as_u16(), 200);
    assert_eq!(header(&current, "dpop-nonce"), None, "the nonce is current");

    NOW.store(t + 60, std::sync::atomic::Ordering::Relaxed);
    let renewed = send(t + 60, Some(&old)).await.expect("request");
    assert_eq!(renewed.status().as_u16(), 200);
    let new = header(&renewed, "dpop-nonce").expect("the next nonce, on a success");
    assert_ne!(new, old);
    assert_eq!(Some(&new), auth0.dpop_nonce().as_ref());
    assert_eq!(renewed.text().await.unwrap(), "frank");

    let moved_on = send(t + 60, Some(&new)).await.expect("request");
    assert_eq!(moved_on.status().as_u16(), 200);
    assert_eq!(header(&moved_on, "dpop-nonce"), None);
    server.abort();
}
