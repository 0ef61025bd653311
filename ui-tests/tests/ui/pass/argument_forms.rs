// Every argument form, the combinations that are allowed, and `#[require_auth]` above or below the
// routing attribute, with `#[get]`, `#[post]` and `#[route]`.
use actix_web::{App, Responder, get, post, route};
use auth0_runtime::{Claims, require_auth};

#[get("/none")]
#[require_auth]
async fn none() -> impl Responder {
    ""
}

#[get("/empty-parens")]
#[require_auth()]
async fn empty_parens() -> impl Responder {
    ""
}

#[get("/string")]
#[require_auth(scopes = "read:messages")]
async fn string() -> impl Responder {
    ""
}

#[get("/string-several")]
#[require_auth(scopes = "read:data  write:data ")]
async fn string_several() -> impl Responder {
    ""
}

#[get("/list")]
#[require_auth(scopes = ["read:data", "write:data"])]
async fn list() -> impl Responder {
    ""
}

#[get("/trailing-comma")]
#[require_auth(scopes = ["read:data", "write:data",],)]
async fn trailing_comma() -> impl Responder {
    ""
}

#[get("/any")]
#[require_auth(any_scopes = ["admin", "read:data"])]
async fn any() -> impl Responder {
    ""
}

#[get("/any-string")]
#[require_auth(any_scopes = "admin read:data")]
async fn any_string() -> impl Responder {
    ""
}

#[get("/permissions")]
#[require_auth(permissions = ["read:messages"])]
async fn permissions() -> impl Responder {
    ""
}

#[get("/scopes-and-permissions")]
#[require_auth(permissions = ["delete:messages"], scopes = "read:messages")]
async fn scopes_and_permissions() -> impl Responder {
    ""
}

#[get("/any-and-permissions")]
#[require_auth(any_scopes = ["a", "b"], permissions = "p q")]
async fn any_and_permissions() -> impl Responder {
    ""
}

#[get("/raw-strings")]
#[require_auth(scopes = [r"read:a", r#"odd!#$%&'()*+,-./:;<=>?@[]^_`{|}~"#])]
async fn raw_strings() -> impl Responder {
    ""
}

#[get("/path")]
#[auth0_runtime::require_auth(scopes = "read:messages")]
async fn path() -> impl Responder {
    ""
}

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

#[get("/step-up")]
#[require_auth(acr_values = "urn:example:mfa urn:example:hwk", max_age = 300)]
async fn step_up() -> impl Responder {
    ""
}

#[get("/step-up-list")]
#[require_auth(scopes = "read:data", acr_values = ["urn:example:mfa"], max_age = 0u64)]
async fn step_up_list(_claims: Claims) -> impl Responder {
    ""
}

fn main() {
    let _ = || {
        App::new()
            .service(step_up)
            .service(step_up_list)
            .service(none)
            .service(empty_parens)
            .service(string)
            .service(string_several)
            .service(list)
            .service(trailing_comma)
            .service(any)
            .service(any_string)
            .service(permissions)
            .service(scopes_and_permissions)
            .service(any_and_permissions)
            .service(raw_strings)
            .service(path)
            .service(below)
            .service(above)
            .service(post_below)
            .service(post_above)
            .service(route_below)
            .service(route_above)
    };
}
