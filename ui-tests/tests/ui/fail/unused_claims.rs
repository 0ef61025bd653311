// An unused parameter is still reported on the user's own binding, as without the attribute.
#![deny(unused_variables)]

use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[get("/")]
#[require_auth]
async fn handler(claims: Claims) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
