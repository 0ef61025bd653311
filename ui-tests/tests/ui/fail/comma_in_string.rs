use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

#[get("/")]
#[require_auth(scopes = "read:messages, write:messages")]
async fn handler() -> impl Responder {
    ""
}

#[get("/list")]
#[require_auth(scopes = ["read:messages, write:messages"], permissions = ["a,b"])]
async fn list() -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler).service(list);
}
