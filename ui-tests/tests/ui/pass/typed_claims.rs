// `Claims<T>` with a user struct for custom claims.
use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[derive(serde::Deserialize)]
struct Roles {
    #[serde(rename = "https://myapp.example.com/roles", default)]
    roles: Vec<String>,
}

#[get("/")]
#[require_auth(scopes = ["read:roles"])]
async fn index(claims: Claims<Roles>) -> impl Responder {
    format!("{} {}", claims.sub, claims.custom().roles.join(","))
}

#[get("/path")]
#[require_auth]
async fn by_path(claims: auth0_runtime::Claims<Roles>) -> impl Responder {
    claims.into_custom().roles.join(",")
}

fn main() {
    let _ = || App::new().service(index).service(by_path);
}
