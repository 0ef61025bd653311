use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

#[get("/")]
#[require_auth(scopes)]
async fn handler() -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
