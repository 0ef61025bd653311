// A protected handler is called by Actix-web with the request, not by hand.
use actix_web::{Responder, web};
use auth0_runtime::{Claims, require_auth};

#[require_auth]
async fn handler(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("{} {id}", claims.sub)
}

async fn test(claims: Claims) {
    let _ = handler(claims, web::Path::from(1)).await;
}

fn main() {
    let _ = test;
}
