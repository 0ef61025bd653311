//! Optional authentication: anonymous callers are welcome, but credentials that are sent must be
//! valid. `RequireAuth::optional()` makes `Option<Claims>` safe (see its docs).
//!
//! ```text
//! cargo run -p examples --example optional_auth
//! ```

use actix_web::{App, HttpResponse, HttpServer, Responder, web};
use auth0_runtime::{Claims, RequireAuth};
use serde_json::json;

const AUDIENCE: &str = "https://optional.example.com";

async fn greeting(claims: Option<Claims>) -> impl Responder {
    match claims {
        Some(claims) => HttpResponse::Ok().json(json!({"message": format!("welcome back, {}", claims.sub)})),
        None => HttpResponse::Ok().json(json!({"message": "hello, stranger"})),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3002);
    let issuer = examples::init_auth0(AUDIENCE)?;
    if let Some(issuer) = &issuer {
        let valid = issuer.token().audience(AUDIENCE).subject("auth0|alice").sign();
        let expired = issuer.token().audience(AUDIENCE).expires_in(-60).sign();
        println!("Try:\n");
        println!("  curl -i http://localhost:{port}/api/greeting                     # anonymous");
        println!("  curl -i http://localhost:{port}/api/greeting -H 'Authorization: Bearer {valid}'");
        println!(
            "  curl -i http://localhost:{port}/api/greeting -H 'Authorization: Bearer {expired}'   # 401\n"
        );
    }
    HttpServer::new(|| {
        App::new().service(
            web::scope("/api")
                .wrap(RequireAuth::optional())
                .route("/greeting", web::get().to(greeting)),
        )
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
