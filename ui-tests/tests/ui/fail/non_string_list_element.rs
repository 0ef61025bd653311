use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

const WRITE: &str = "write:data";

#[get("/")]
#[require_auth(permissions = ["read:data", WRITE])]
async fn handler() -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
