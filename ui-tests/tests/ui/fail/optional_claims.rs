// Under `#[require_auth]` the claims are never absent: optional authentication is the middleware's.
use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[derive(serde::Deserialize)]
struct Strict {
    #[allow(dead_code)]
    tenant: String,
}

#[get("/")]
#[require_auth]
async fn index(claims: Option<Claims>) -> impl Responder {
    if claims.is_some() { "signed in" } else { "anonymous" }
}

#[get("/typed")]
#[require_auth(scopes = "read:tenant")]
async fn typed(claims: Option<auth0_runtime::Claims<Strict>>) -> impl Responder {
    if claims.is_some() { "signed in" } else { "anonymous" }
}

fn main() {
    let _ = || App::new().service(index).service(typed);
}
