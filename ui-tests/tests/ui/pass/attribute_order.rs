// `#[require_auth]` above or below the routing attribute, with `#[get]`, `#[post]` and `#[route]`.
use actix_web::{App, Responder, get, post, route};
use auth0_runtime::{Claims, require_auth};

#[get("/below")]
#[require_auth]
async fn below(_claims: Claims) -> impl Responder {
    "below"
}

#[require_auth]
#[get("/above")]
async fn above(_claims: Claims) -> impl Responder {
    "above"
}

#[post("/post-below")]
#[require_auth(scopes = "write:messages")]
async fn post_below() -> impl Responder {
    "post"
}

#[require_auth(scopes = "write:messages")]
#[post("/post-above")]
async fn post_above() -> impl Responder {
    "post"
}

#[route("/route-below", method = "GET", method = "HEAD")]
#[require_auth(any_scopes = ["a", "b"])]
async fn route_below() -> impl Responder {
    "route"
}

#[require_auth(any_scopes = ["a", "b"])]
#[route("/route-above", method = "GET", method = "HEAD")]
async fn route_above() -> impl Responder {
    "route"
}

fn main() {
    let _ = || {
        App::new()
            .service(below)
            .service(above)
            .service(post_below)
            .service(post_above)
            .service(route_below)
            .service(route_above)
    };
}
