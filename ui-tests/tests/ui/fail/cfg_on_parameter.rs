use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

#[get("/")]
#[require_auth]
async fn handler(#[cfg(any())] _req: actix_web::HttpRequest) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
