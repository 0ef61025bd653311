//! The crate README's "Testing your API" example (`auth0-runtime/README.md`, the crate's
//! documentation page), as written: the code between the two marker lines below is its code block,
//! verbatim (`the_readme_shows_this_file` checks it).

// README example: begin
use actix_web::{App, HttpResponse, Responder, get, test};
use auth0_runtime::testing::*;
use auth0_runtime::{Auth0, Claims, require_auth};

#[get("/api/private-scoped")]
#[require_auth(scopes = "read:messages")]
async fn private_scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("hello {}", claims.sub))
}

/// Test claims, no token: no issuer, no signature, no validator; the route's scopes still apply.
#[actix_web::test]
async fn scopes_without_a_token() {
    let app = test::init_service(App::new().service(private_scoped)).await;

    let reader = claims().subject("auth0|alice").scope("read:messages");
    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .authenticated(reader);
    assert_eq!(test::call_service(&app, req).await.status(), 200);

    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .authenticated(claims());
    assert_eq!(test::call_service(&app, req).await.status(), 403); // insufficient_scope
}

/// Real tokens, offline: signed by an issuer with no server, verified with every check, no fetch.
#[actix_web::test]
async fn real_tokens_offline() {
    let issuer = TestIssuer::offline();
    let auth0 = issuer.validator("https://api.example.com"); // tokens now default to this audience
    let app = test::init_service(App::new().app_data(auth0).service(private_scoped)).await;

    let token = issuer.token().scope("read:messages").sign();
    let req = test::TestRequest::get().uri("/api/private-scoped").bearer(&token);
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 200);

    let expired = issuer.token().scope("read:messages").expires_in(-10).sign();
    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .bearer(&expired);
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 401);

    // DPoP: a bound token, and a fresh proof for this request's own method and URL.
    let key = DpopKey::generate();
    let bound = issuer.token().scope("read:messages").bind_to(&key).sign();
    let req = test::TestRequest::get()
        .uri("/api/private-scoped")
        .dpop(&key, &bound);
    assert_eq!(test::call_service(&app, req).await.status(), 200);
}

/// A real issuer on loopback: discovery and keys over HTTPS, as from a tenant.
#[actix_web::test]
async fn a_real_issuer_over_https() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config("https://api.example.com")).unwrap(); // trusts its CA
    let app = test::init_service(App::new().app_data(auth0).service(private_scoped)).await;

    let token = issuer.token().scope("read:messages").sign();
    let req = test::TestRequest::get().uri("/api/private-scoped").bearer(&token);
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 200);
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
    // Negative cases: .kid("other"), .audience("x"), .header("alg", "none"), issuer.rotate_key(),
    // issuer.set_fault(Fault::Down), ...
}
// README example: end

/// Outside the example, where `test` is the built-in attribute rather than Actix's.
mod pin {
    /// The crate README's code block under "## Testing your API" is the code above, verbatim.
    #[test]
    fn the_readme_shows_this_file() {
        let readme = include_str!("../../auth0-runtime/README.md");
        let (_, section) = readme
            .split_once("\n## Testing your API\n")
            .expect("the README has a \"Testing your API\" section");
        let block = section
            .split_once("\n```rust\n")
            .and_then(|(_, rest)| rest.split_once("\n```\n"))
            .map(|(block, _)| block)
            .expect("the section has a rust code block");
        let this = include_str!("readme.rs");
        let example = this
            .split_once("\n// README example: begin\n")
            .and_then(|(_, rest)| rest.split_once("\n// README example: end\n"))
            .map(|(example, _)| example)
            .expect("the markers");
        assert_eq!(
            block, example,
            "copy the example of tests/tests/readme.rs into auth0-runtime/README.md"
        );
    }
}
