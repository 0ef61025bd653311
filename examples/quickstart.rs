//! The Auth0 API quickstart: a public, a private and a scoped route.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```
//!
//! With `AUTH0_DOMAIN` and `AUTH0_AUDIENCE` set (in the environment or `.env`) it verifies tokens of
//! your tenant. Without them it starts the embedded test issuer and prints `curl` commands with
//! fresh tokens, so it runs on a fresh machine with no Auth0 account.

use actix_web::{App, HttpResponse, HttpServer, Responder, get};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Claims, require_auth};
use serde_json::json;

#[get("/api/public")]
async fn public() -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a public endpoint! You don't need to be authenticated to see this."
    }))
}

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a private endpoint! You need to be authenticated to see this.",
        "sub": claims.sub,
    }))
}

#[get("/api/private-scoped")]
#[require_auth(scopes = "read:messages")]
async fn private_scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this.",
        "sub": claims.sub,
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let tenant = std::env::var_os("AUTH0_DOMAIN").is_some() || std::env::var_os("AUTH0_DOMAINS").is_some();
    let tenant = tenant || dotenv_names_domain();
    // The embedded issuer lives as long as the server.
    let _issuer = if tenant {
        auth0_runtime::init_from_env().map_err(std::io::Error::other)?;
        println!("Verifying tokens of your tenant; listening on http://localhost:{port}");
        None
    } else {
        let issuer = TestIssuer::try_start()?;
        auth0_runtime::init(issuer.config(AUDIENCE)).map_err(std::io::Error::other)?;
        print_try_it(&issuer, port);
        Some(issuer)
    };
    HttpServer::new(|| {
        App::new()
            .service(public)
            .service(private)
            .service(private_scoped)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

const AUDIENCE: &str = "https://quickstart.example.com";

fn dotenv_names_domain() -> bool {
    std::fs::read_to_string(".env")
        .is_ok_and(|env| env.lines().any(|l| l.trim_start().starts_with("AUTH0_DOMAIN")))
}

fn print_try_it(issuer: &TestIssuer, port: u16) {
    let base = format!("http://localhost:{port}/api");
    let with_scope = issuer.token().audience(AUDIENCE).scope("read:messages").sign();
    let without_scope = issuer.token().audience(AUDIENCE).sign();
    println!(
        "No AUTH0_DOMAIN set: using the embedded test issuer at {}",
        issuer.issuer()
    );
    println!("Listening on http://localhost:{port}. Try, from another terminal:\n");
    println!("  curl -i {base}/public");
    println!("  curl -i {base}/private                                   # 401, no token");
    println!(
        "  curl -i {base}/private-scoped -H 'Authorization: Bearer {without_scope}'   # 403, no read:messages"
    );
    println!("  curl -i {base}/private-scoped -H 'Authorization: Bearer {with_scope}'   # 200");
    println!();
}
