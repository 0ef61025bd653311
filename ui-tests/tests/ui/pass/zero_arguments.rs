// A handler without parameters.
#![deny(warnings)]

use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

#[get("/")]
#[require_auth(scopes = "read:messages")]
async fn index() -> impl Responder {
    "hello"
}

#[require_auth]
#[get("/above")]
async fn above() -> &'static str {
    "hello"
}

fn main() {
    let _ = || App::new().service(index).service(above);
}
