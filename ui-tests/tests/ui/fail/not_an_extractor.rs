// A parameter that is not an extractor is reported as it would be without the attribute.
use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

struct NotAnExtractor;

#[get("/")]
#[require_auth]
async fn handler(_value: NotAnExtractor) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler);
}
