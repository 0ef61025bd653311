// Handlers in other shapes: an associated function (bare form), a `fn` returning a future, two
// `Claims` (one verification), and the 16 extractors Actix-web allows.
#![deny(warnings)]

use std::future::Future;

use actix_web::{App, HttpRequest, Responder, web};
use auth0_runtime::{Claims, require_auth};

struct Api;

impl Api {
    /// The bare form generates no item next to the handler, so it works in an `impl` block.
    #[require_auth]
    async fn handler(claims: Claims, id: web::Path<u32>) -> impl Responder {
        format!("{} {id}", claims.sub)
    }

    #[require_auth]
    fn future(claims: Claims) -> impl Future<Output = String> {
        async move { claims.sub.clone() }
    }
}

#[require_auth(scopes = "read:messages")]
fn returns_future(claims: Claims, id: web::Path<u32>) -> impl Future<Output = String> + 'static {
    async move { format!("{} {id}", claims.sub) }
}

#[require_auth]
async fn two_claims(claims: Claims, again: auth0_runtime::Claims) -> impl Responder {
    format!("{} {}", claims.sub, again.sub)
}

type R = HttpRequest;

#[require_auth(permissions = "read:all")]
#[allow(clippy::too_many_arguments)]
async fn sixteen(
    a: R, b: R, c: R, d: R, e: R, f: R, g: R, h: R, i: R, j: R, k: R, l: R, m: R, n: R, o: R,
    claims: Claims,
) -> impl Responder {
    let all = [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o];
    format!("{} {}", claims.sub, all.len())
}

fn main() {
    let _ = || {
        App::new()
            .route("/method/{id}", web::get().to(Api::handler))
            .route("/method-future", web::get().to(Api::future))
            .route("/future/{id}", web::get().to(returns_future))
            .route("/two", web::get().to(two_claims))
            .route("/sixteen", web::get().to(sixteen))
    };
}
