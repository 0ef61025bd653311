//! Typed custom claims: Auth0 Actions add namespaced claims such as roles; `Claims<T>` reads them
//! into your own struct.
//!
//! ```text
//! cargo run -p examples --example custom_claims
//! ```

use actix_web::{App, HttpResponse, HttpServer, Responder, get};
use auth0_runtime::{Claims, require_auth};
use serde::Deserialize;
use serde_json::json;

const AUDIENCE: &str = "https://custom-claims.example.com";
const ROLES: &str = "https://myapp.example.com/roles";

/// The claims an Auth0 Action adds to the access token.
#[derive(Debug, Deserialize)]
struct AppClaims {
    #[serde(rename = "https://myapp.example.com/roles", default)]
    roles: Vec<String>,
    #[serde(rename = "https://myapp.example.com/tenant")]
    tenant: Option<String>,
}

#[get("/api/me")]
#[require_auth]
async fn me(claims: Claims<AppClaims>) -> impl Responder {
    let custom = claims.custom();
    HttpResponse::Ok().json(json!({
        "sub": claims.sub,
        "roles": custom.roles,
        "tenant": custom.tenant,
        "scheme": claims.scheme(),
    }))
}

#[get("/api/admin")]
#[require_auth(permissions = ["admin:all"])]
async fn admin(claims: Claims<AppClaims>) -> impl Responder {
    if !claims.custom().roles.iter().any(|r| r == "admin") {
        return HttpResponse::Forbidden().json(json!({"detail": "admins only"}));
    }
    HttpResponse::Ok().json(json!({"message": format!("welcome, admin {}", claims.sub)}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3001);
    let issuer = examples::init_auth0(AUDIENCE)?;
    if let Some(issuer) = &issuer {
        let token = issuer
            .token()
            .audience(AUDIENCE)
            .permissions(["admin:all"])
            .claim(ROLES, json!(["admin", "support"]))
            .claim("https://myapp.example.com/tenant", json!("acme"))
            .sign();
        println!("Try:\n");
        println!("  curl -i http://localhost:{port}/api/me -H 'Authorization: Bearer {token}'");
        println!("  curl -i http://localhost:{port}/api/admin -H 'Authorization: Bearer {token}'\n");
    }
    HttpServer::new(|| App::new().service(me).service(admin))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
