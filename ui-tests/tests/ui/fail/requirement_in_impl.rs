// A requirement needs a type next to the handler, which an `impl` block cannot hold.
use actix_web::{App, Responder, web};
use auth0_runtime::{Claims, require_auth};

struct Api;

impl Api {
    #[require_auth(scopes = "read:messages")]
    async fn handler(claims: Claims) -> impl Responder {
        claims.sub.clone()
    }
}

fn main() {
    let _ = || App::new().route("/", web::get().to(Api::handler));
}
