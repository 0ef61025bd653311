// Step-up arguments the attribute refuses: `max_age` that is not whole seconds, empty or
// malformed `acr_values`.
use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

const MAX_AGE: u64 = 300;

#[get("/string")]
#[require_auth(max_age = "300")]
async fn string() -> impl Responder {
    ""
}

#[get("/negative")]
#[require_auth(max_age = -5)]
async fn negative() -> impl Responder {
    ""
}

#[get("/fraction")]
#[require_auth(max_age = 1.5)]
async fn fraction() -> impl Responder {
    ""
}

#[get("/constant")]
#[require_auth(max_age = MAX_AGE)]
async fn constant() -> impl Responder {
    ""
}

#[get("/empty")]
#[require_auth(acr_values = "")]
async fn empty() -> impl Responder {
    ""
}

#[get("/quote")]
#[require_auth(acr_values = ["urn:\"mfa\""])]
async fn quote() -> impl Responder {
    ""
}

fn main() {
    let _ = || {
        App::new()
            .service(string)
            .service(negative)
            .service(fraction)
            .service(constant)
            .service(empty)
            .service(quote)
    };
}
