//! The README's "Testing your API" example, as written: `actix_web::test` with the testing kit.

use actix_web::{App, HttpResponse, Responder, get, test};
use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Auth0, Claims, require_auth};

#[get("/api/private-scoped")]
#[require_auth(scopes = "read:messages")]
async fn private_scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("{:?}", claims.scheme()))
}

#[actix_web::test]
async fn the_readme_example_works() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config("https://api.example.com")).expect("config");
    let app = test::init_service(
        App::new()
            .app_data(auth0)
            .service(private_scoped)
            .service(private),
    )
    .await;

    let token = issuer
        .token()
        .audience("https://api.example.com")
        .scope("read:messages")
        .sign();
    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .insert_header(("authorization", format!("Bearer {token}")));
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 200);

    let expired = issuer
        .token()
        .audience("https://api.example.com")
        .expires_in(-10)
        .sign();
    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .insert_header(("authorization", format!("Bearer {expired}")));
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 401);

    // In `actix_web::test` the request URL is http://localhost:8080/…
    let key = DpopKey::generate();
    let bound = issuer
        .token()
        .audience("https://api.example.com")
        .bind_to(&key)
        .sign();
    let proof = key
        .proof("GET", "http://localhost:8080/api/private")
        .access_token(&bound)
        .sign();
    let req = test::TestRequest::get()
        .uri("/api/private")
        .insert_header(("authorization", format!("DPoP {bound}")))
        .insert_header(("dpop", proof));
    let resp = test::call_service(&app, req.to_request()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(test::read_body(resp).await, "DPoP");
}
