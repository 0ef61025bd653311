// Every argument form, and the combinations that are allowed.
use actix_web::{App, Responder, get};
use auth0_runtime::require_auth;

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

fn main() {
    let _ = || {
        App::new()
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
    };
}
