//! The process-wide validator: `init` once (warmed up), a second `init` is an error, handlers use
//! it.

mod common;

use actix_web::{App, HttpServer, get};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Claims, ConfigError, require_auth};
use common::{AUDIENCE, Answer};

#[get("/me")]
#[require_auth]
async fn me(claims: Claims) -> String {
    claims.sub.clone()
}

#[tokio::test]
async fn init_once_then_handlers_use_the_global_validator() {
    let issuer = TestIssuer::start();
    // With the warm-up, `init` returns with the keys cached, here inside a running runtime.
    auth0_runtime::init(issuer.config(AUDIENCE).warm_up(true)).expect("first init");
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
    assert_eq!(
        auth0_runtime::init(issuer.config(AUDIENCE)).err(),
        Some(ConfigError::AlreadyInitialized)
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/me", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| App::new().service(me))
                .workers(1)
                .listen(listener)
                .expect("listen");
            let _ = server.run().await;
        });
    });
    let http = reqwest::Client::new();
    let token = issuer.token().audience(AUDIENCE).subject("global-user").sign();
    let resp = http.get(&url).bearer_auth(token).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "global-user");
    assert_eq!(
        (issuer.discovery_fetches(), issuer.jwks_fetches()),
        (1, 1),
        "the first request fetched nothing"
    );
    let refused = Answer::read(http.get(&url).send().await.expect("request")).await;
    refused.assert_refused(401, "unauthorized");
}
