use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[get("/")]
#[require_auth]
async fn handler(_claims: Claims, _again: Option<Claims>) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
