// A lint attribute on one parameter applies to that parameter only.
#![deny(unused_variables)]

use actix_web::{App, Responder, get, web};
use auth0_runtime::{Claims, require_auth};

#[get("/{id}")]
#[require_auth]
async fn handler(#[allow(unused_variables)] claims: Claims, id: web::Path<u32>) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
