// Attribute macros that read the parameters (`#[tracing::instrument]`) see the handler as written,
// whether they come before or after `#[require_auth]`, with the routing attribute anywhere.
#![deny(warnings)]

use actix_web::{App, Responder, get, web};
use auth0_runtime::{Claims, require_auth};

#[get("/below/{id}")]
#[require_auth]
#[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
async fn below(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("{} {id}", claims.sub)
}

#[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
#[get("/above/{id}")]
#[require_auth(scopes = "read:messages")]
async fn above(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("{} {id}", claims.sub)
}

#[require_auth(any_scopes = ["a", "b"])]
#[tracing::instrument(level = "debug", ret)]
#[get("/plain/{id}")]
async fn plain(id: web::Path<u32>) -> String {
    id.to_string()
}

#[require_auth]
#[tracing::instrument(skip_all, fields(sub = %claims.sub, id = *id))]
async fn registered_by_hand(claims: Claims, id: web::Path<u32>, _: Claims) -> impl Responder {
    format!("{} {id}", claims.sub)
}

fn main() {
    let _ = || {
        App::new()
            .service(below)
            .service(above)
            .service(plain)
            .route("/by-hand/{id}", web::get().to(registered_by_hand))
    };
}
