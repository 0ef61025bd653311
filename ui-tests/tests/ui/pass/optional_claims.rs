// `Option<Claims>` as the claims parameter.
use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[get("/")]
#[require_auth]
async fn index(claims: Option<Claims>) -> impl Responder {
    if claims.is_some() { "signed in" } else { "anonymous" }
}

fn main() {
    let _ = || App::new().service(index);
}
