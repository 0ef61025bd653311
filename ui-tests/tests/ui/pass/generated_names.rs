// User code may use the names the expansion uses: the guard parameter is hygienic.
use actix_web::{App, Responder, get, web};
use auth0_runtime::{Claims, require_auth};

#[get("/{id}")]
#[require_auth]
async fn guard_named_parameter(__auth0_guard: web::Path<u32>, _claims: Claims) -> impl Responder {
    let __auth0_guard = __auth0_guard.into_inner() + 1;
    __auth0_guard.to_string()
}

#[require_auth]
#[get("/local")]
async fn guard_named_local() -> impl Responder {
    let __auth0_guard = "local";
    __auth0_guard
}

fn main() {
    let _ = || App::new().service(guard_named_parameter).service(guard_named_local);
}
