use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::{App, HttpResponse, test, web};

use super::*;
use crate::claims::Claims;
use crate::testing::{DpopKey, TestIssuer};

static CLOCK: AtomicI64 = AtomicI64::new(0);

fn clock() -> i64 {
    CLOCK.load(Ordering::Relaxed)
}

async fn hello(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().body(claims.sub.clone())
}

/// A success whose proof carried last step's nonce carries the current one, through
/// `DpopNonces` and through `RequireAuth`; one with the current nonce carries none.
#[actix_web::test]
async fn successes_carry_a_fresh_nonce_when_the_step_changes() {
    let issuer = TestIssuer::start();
    let t = (crate::clock::now() / 60) * 60 + 5;
    CLOCK.store(t, Ordering::Relaxed);
    let mut config = issuer
        .config("https://api.test")
        .dpop_nonce_secrets([vec![5u8; 32]]);
    config.clock = clock;
    let auth0 = Auth0::new(config).unwrap();
    let app = test::init_service(
        App::new()
            .app_data(auth0.clone())
            .service(web::scope("/a").wrap(DpopNonces).route("", web::get().to(hello)))
            .service(
                web::scope("/b")
                    .wrap(RequireAuth::new())
                    .route("", web::get().to(hello)),
            ),
    )
    .await;
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience("https://api.test")
        .bind_to(&key)
        .issued_at(t - 10)
        .expires_at(t + 3600)
        .sign();
    let old = auth0.dpop_nonce().unwrap();
    for (now, path, renewed) in [(t, "/a", false), (t + 60, "/a", true), (t + 60, "/b", true)] {
        CLOCK.store(now, Ordering::Relaxed);
        let proof = key
            .proof("GET", &format!("http://api.test{path}"))
            .access_token(&token)
            .issued_at(now)
            .nonce(&old)
            .sign();
        let request = test::TestRequest::get()
            .uri(path)
            .insert_header(("host", "api.test"))
            .insert_header(("authorization", format!("DPoP {token}")))
            .insert_header(("dpop", proof))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 200, "{path} at {now}");
        let nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(nonce.is_some(), renewed, "{path} at {now}");
        if let Some(nonce) = nonce {
            assert_ne!(nonce, old);
            assert_eq!(Some(nonce), auth0.dpop_nonce());
        }
    }
}
