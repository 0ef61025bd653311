// `auth0 = { package = "auth0-runtime", ... }`: the expansion names the crate it is given.
#![deny(warnings)]

use actix_web::{App, Responder, get, web};
use auth0::{Claims, require_auth};

#[get("/bare")]
#[require_auth(crate = "auth0")]
async fn bare(claims: Claims) -> impl Responder {
    claims.sub.clone()
}

#[require_auth(crate = "::auth0", scopes = "read:messages", permissions = ["read:all"])]
#[get("/scoped/{id}")]
async fn scoped(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("{} {id}", claims.sub)
}

// Deferred below another attribute macro: the hidden attribute is reached through the same path.
#[require_auth(any_scopes = ["a", "b"], crate = "auth0")]
#[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
#[get("/instrumented")]
async fn instrumented(claims: Claims) -> impl Responder {
    claims.sub.clone()
}

struct Api;

impl Api {
    #[require_auth(crate = "auth0")]
    async fn method(claims: Claims) -> impl Responder {
        claims.sub.clone()
    }
}

fn main() {
    let _ = || {
        App::new()
            .service(bare)
            .service(scoped)
            .service(instrumented)
            .route("/method", web::get().to(Api::method))
    };
}
