//! CORS outside the authentication, as the README shows: preflights pass, refusals carry the CORS
//! headers and expose the challenge.

mod common;

use actix_cors::Cors;
use actix_web::{App, HttpResponse, HttpServer, Responder, get};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Claims, require_auth};
use common::AUDIENCE;

#[get("/api/private")]
#[require_auth(scopes = "read:messages")]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

const ORIGIN: &str = "https://app.example.com";

#[tokio::test]
async fn preflights_pass_and_refusals_carry_cors_headers() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).unwrap_or_else(|e| panic!("{e}"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let base = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let cors = Cors::default()
                    .allowed_origin(ORIGIN)
                    .allowed_methods(["GET", "POST"])
                    .allowed_headers(["authorization", "dpop", "content-type"])
                    .expose_headers(["WWW-Authenticate", "DPoP-Nonce"])
                    .max_age(3600);
                App::new().app_data(auth0.clone()).wrap(cors).service(private)
            })
            .workers(1)
            .listen(listener)
            .unwrap_or_else(|e| panic!("{e}"))
            .run();
            let _ = tx.send(server.handle());
            let _ = server.await;
        });
    });
    let handle = rx.recv().unwrap_or_else(|e| panic!("{e}"));
    let http = reqwest::Client::new();
    let url = format!("{base}/api/private");
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    // The preflight carries no token and is answered by the CORS layer.
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, dpop")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some(ORIGIN)
    );

    // A refusal (401, then 403) still carries CORS headers and exposes the challenge.
    for (token, status) in [
        (issuer.token().audience("https://other").sign(), 401),
        (issuer.token().audience(AUDIENCE).sign(), 403),
    ] {
        let refused = http
            .get(&url)
            .header("origin", ORIGIN)
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refused.status(), status);
        assert_eq!(
            header(&refused, "access-control-allow-origin").as_deref(),
            Some(ORIGIN)
        );
        let exposed = header(&refused, "access-control-expose-headers")
            .unwrap_or_default()
            .to_lowercase();
        assert!(
            exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
            "{exposed}"
        );
        assert!(header(&refused, "www-authenticate").is_some());
    }
    let ok = http
        .get(&url)
        .header("origin", ORIGIN)
        .bearer_auth(issuer.token().audience(AUDIENCE).scope("read:messages").sign())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.status(), 200);
    drop(handle.stop(false));
}
