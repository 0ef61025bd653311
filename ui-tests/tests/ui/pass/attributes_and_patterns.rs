// Doc comments, other attributes, visibilities and parameter patterns are kept, and user code may
// use the names the expansion uses: the guard parameter and the tuple are hygienic.
#![deny(warnings)]

use actix_web::{App, HttpResponse, Responder, get, post, web};
use auth0_runtime::{Claims, require_auth};

mod api {
    use super::*;

    /// Documented handler.
    ///
    /// With two paragraphs.
    #[post("/pair")]
    #[require_auth(scopes = "read:pairs")]
    #[allow(clippy::needless_pass_by_value)]
    #[cfg_attr(any(), deprecated)]
    pub async fn pair(web::Json((a, b)): web::Json<(u32, String)>, _: Claims) -> impl Responder {
        format!("{a} {b}")
    }

    /// Visible in the crate, attribute above.
    #[require_auth]
    #[get("/crate")]
    pub(crate) async fn in_crate(#[allow(unused_variables)] claims: Claims) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }

    /// Visible in the parent module.
    #[require_auth]
    #[get("/super")]
    pub(super) async fn in_super(mut query: web::Query<Vec<(String, String)>>) -> String {
        query.0.push((String::new(), String::new()));
        query.len().to_string()
    }
}

macro_rules! handler {
    ($name:ident, $path:literal, $scope:literal, $permission:expr) => {
        #[get($path)]
        #[require_auth(scopes = $scope, permissions = [$permission])]
        async fn $name() -> impl Responder {
            stringify!($name)
        }
    };
}

handler!(from_macro, "/macro", "read:macro", "read:all");

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

#[get("/args/{id}")]
#[require_auth]
async fn args_named_parameter(_claims: Claims, __auth0_args: web::Path<u32>, id: web::Path<u32>) -> String {
    let __auth0_args = __auth0_args.into_inner() + id.into_inner();
    __auth0_args.to_string()
}

fn main() {
    let _ = || {
        App::new()
            .service(api::pair)
            .service(api::in_crate)
            .service(api::in_super)
            .service(from_macro)
            .service(guard_named_parameter)
            .service(guard_named_local)
            .service(args_named_parameter)
    };
}
