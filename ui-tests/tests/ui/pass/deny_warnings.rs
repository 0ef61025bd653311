//! The expansion is warning-free under strict lints in the user's crate.
#![deny(warnings)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    rust_2018_idioms,
    unused_results
)]

use actix_web::{App, Responder, get, web};
use auth0_runtime::{Claims, require_auth};

/// A module of public handlers.
pub mod handlers {
    use super::*;

    /// Reads messages.
    #[get("/messages")]
    #[require_auth(scopes = "read:messages")]
    pub async fn messages(claims: Claims) -> impl Responder {
        drop(claims);
        "messages"
    }

    /// Without parameters.
    #[require_auth(permissions = ["read:all"])]
    #[get("/all")]
    pub async fn all() -> impl Responder {
        "all"
    }

    /// Crate-visible, with an extractor.
    #[get("/items/{id}")]
    #[require_auth(any_scopes = ["a", "b"])]
    pub(crate) async fn item(id: web::Path<u32>) -> impl Responder {
        id.into_inner().to_string()
    }
}

/// Without parameters, attribute below.
#[get("/below")]
#[require_auth]
pub async fn below() -> &'static str {
    "hello"
}

/// A handler registered without a routing attribute.
#[require_auth]
pub async fn plain(_claims: Claims) -> impl Responder {
    "plain"
}

fn main() {
    let _app = || {
        App::new()
            .service(handlers::messages)
            .service(handlers::all)
            .service(handlers::item)
            .service(below)
            .route("/plain", web::get().to(plain))
    };
}
