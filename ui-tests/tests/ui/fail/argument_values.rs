// Values the attribute cannot take: a constant, a macro call, a value without its name, a crate
// path that is not a path.
use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

const SCOPES: &str = "read:messages";

#[get("/")]
#[require_auth(scopes = SCOPES)]
async fn constant() -> impl Responder {
    ""
}

#[get("/concat")]
#[require_auth(permissions = concat!("read:", "all"))]
async fn concatenated() -> impl Responder {
    ""
}

#[get("/unnamed")]
#[require_auth("read:messages")]
async fn unnamed() -> impl Responder {
    ""
}

#[get("/crate")]
#[require_auth(crate = "auth0-runtime")]
async fn crate_path() -> impl Responder {
    ""
}

fn main() {
    let _ = || {
        App::new()
            .service(constant)
            .service(concatenated)
            .service(unnamed)
            .service(crate_path)
    };
}
