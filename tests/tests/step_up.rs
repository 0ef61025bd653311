//! Step-up authentication (RFC 9470) over real HTTP: a route that needs a stronger or a more
//! recent login answers 401 `insufficient_user_authentication` and says what it needs.

#![allow(clippy::expect_used)]

mod common;

use std::time::Duration;

use actix_web::{HttpResponse, Responder, get, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Claims, RequireAuth, require_auth};
use common::{AUDIENCE, Answer, now, serve};

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

#[get("/transfer")]
#[require_auth(acr_values = ["http://schemas.openid.net/pape/policies/2007/06/multi-factor", "urn:example:hwk"], max_age = 300, scopes = "transfer")]
async fn transfer(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

#[get("/recent")]
#[require_auth(max_age = 60)]
async fn recent(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().body("hello")
}

fn api(issuer: &TestIssuer) -> (String, common::Server) {
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    serve(move |cfg| {
        cfg.app_data(auth0.clone())
            .service(transfer)
            .service(recent)
            .service(
                web::scope("/mw")
                    .wrap(
                        RequireAuth::new()
                            .acr_values([MFA])
                            .max_age(Duration::from_secs(300)),
                    )
                    .route("/hello", web::get().to(hello)),
            );
    })
}

async fn get(url: String, token: &str) -> Answer {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await;
    match response {
        Ok(response) => Answer::read(response).await,
        Err(error) => panic!("request: {error}"),
    }
}

#[track_caller]
fn assert_step_up(answer: &Answer, description: &str, params: &str) {
    answer.assert_refused(401, "insufficient_user_authentication");
    assert_eq!(answer.description(), Some(description));
    let challenge = answer.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"api\", error=\"insufficient_user_authentication\", error_description=\"{description}\", {params}"
        )),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_route_asks_for_a_stronger_or_more_recent_login() {
    let issuer = TestIssuer::start();
    let (base, _server) = api(&issuer);
    let token = |acr: Option<&str>, auth_time: Option<i64>| {
        let mut token = issuer.token().audience(AUDIENCE).scope("transfer");
        if let Some(acr) = acr {
            token = token.claim("acr", acr);
        }
        if let Some(at) = auth_time {
            token = token.claim("auth_time", at);
        }
        token.sign()
    };
    let both = format!("acr_values=\"{MFA} urn:example:hwk\", max_age=\"300\"");
    let wrong_acr = "a different authentication level is required";
    let too_old = "more recent authentication is required";

    // No acr, another acr, a non-string acr: the classes the route accepts.
    for t in [
        token(None, Some(now())),
        token(Some("urn:example:password"), Some(now())),
        issuer
            .token()
            .audience(AUDIENCE)
            .scope("transfer")
            .claim("acr", 2)
            .claim("auth_time", now())
            .sign(),
    ] {
        assert_step_up(&get(format!("{base}/transfer"), &t).await, wrong_acr, &both);
    }
    // The right class, but a login too long ago (or no auth_time at all).
    for t in [token(Some(MFA), Some(now() - 301)), token(Some(MFA), None)] {
        assert_step_up(&get(format!("{base}/transfer"), &t).await, too_old, &both);
    }
    // Either accepted class, recent enough: 200.
    for acr in [MFA, "urn:example:hwk"] {
        let answer = get(format!("{base}/transfer"), &token(Some(acr), Some(now() - 10))).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // Step-up comes before scopes: a re-login may bring other scopes.
    let scopeless = issuer
        .token()
        .audience(AUDIENCE)
        .claim("acr", "urn:example:password")
        .sign();
    assert_step_up(
        &get(format!("{base}/transfer"), &scopeless).await,
        wrong_acr,
        &both,
    );
    let scopeless = issuer
        .token()
        .audience(AUDIENCE)
        .claim("acr", MFA)
        .claim("auth_time", now())
        .sign();
    get(format!("{base}/transfer"), &scopeless)
        .await
        .assert_refused(403, "insufficient_scope");

    // max_age alone: only auth_time matters, and the challenge names only max_age.
    let plain = |auth_time: i64| {
        issuer
            .token()
            .audience(AUDIENCE)
            .claim("auth_time", auth_time)
            .sign()
    };
    assert_step_up(
        &get(format!("{base}/recent"), &plain(now() - 120)).await,
        too_old,
        "max_age=\"60\"",
    );
    assert!(
        get(format!("{base}/recent"), &plain(now() - 120))
            .await
            .challenge
            .is_some_and(|c| !c.contains("acr_values"))
    );
    assert_eq!(get(format!("{base}/recent"), &plain(now())).await.status, 200);
}

#[tokio::test]
async fn the_middleware_asks_for_step_up_too() {
    let issuer = TestIssuer::start();
    let (base, _server) = api(&issuer);
    let weak = issuer.token().audience(AUDIENCE).claim("auth_time", now()).sign();
    assert_step_up(
        &get(format!("{base}/mw/hello"), &weak).await,
        "a different authentication level is required",
        &format!("acr_values=\"{MFA}\", max_age=\"300\""),
    );
    let strong = issuer
        .token()
        .audience(AUDIENCE)
        .claim("acr", MFA)
        .claim("auth_time", now())
        .sign();
    assert_eq!(get(format!("{base}/mw/hello"), &strong).await.status, 200);
}

/// `auth_time` is a NumericDate (RFC 7519 §2, OIDC Core §2), fractional or not, as `exp` is.
#[tokio::test]
async fn a_fractional_auth_time_is_a_time() {
    let issuer = TestIssuer::start();
    let (base, _server) = api(&issuer);
    let at = |auth_time: f64| {
        issuer
            .token()
            .audience(AUDIENCE)
            .subject("alice")
            .claim("auth_time", auth_time)
            .sign()
    };
    let fresh = get(format!("{base}/recent"), &at((now() - 1) as f64 + 0.5)).await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    let stale = get(format!("{base}/recent"), &at((now() - 120) as f64 + 0.5)).await;
    assert_step_up(&stale, "more recent authentication is required", "max_age=\"60\"");
}
