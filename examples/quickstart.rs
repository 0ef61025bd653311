//! The Auth0 API quickstart: a public, a private and a scoped route.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```
//!
//! With `AUTH0_DOMAIN` and `AUTH0_AUDIENCE` set (in the environment or `.env`) it verifies tokens of
//! your tenant. Without them it starts the embedded test issuer and prints `curl` commands with
//! fresh tokens (Bearer, and DPoP with a bound token and a one-time proof), so it runs on a fresh
//! machine with no Auth0 account.
//!
//! `GET /health` is the readiness a load balancer or an orchestrator probes: 200 once the signing
//! keys are cached, 503 before (with `AUTH0_WARM_UP=true` they are fetched before the port is
//! bound).
//!
//! With `AUTH0_DPOP_NONCE_SECRET` set (base64 of 32 random bytes: `openssl rand -base64 32`), DPoP
//! server nonces are on, and the embedded mode also prints the nonce round trip: a proof without a
//! nonce gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header, and the retry with it passes.

use actix_web::{App, HttpResponse, HttpServer, Responder, get};
use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Auth0, Claims, DpopNonces, Readiness, require_auth};
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

/// Readiness: 200 when ready, 503 when not, with the details as JSON.
#[get("/health")]
async fn health(auth0: Auth0) -> Readiness {
    auth0.ready().await
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3000);
    // The embedded issuer (when there is no tenant) lives as long as the server.
    // The embedded issuer's keys are cached before the port is bound; a tenant's with AUTH0_WARM_UP.
    let nonces = nonce_secret();
    let issuer = examples::init_auth0_with(AUDIENCE, |_, config| {
        config.warm_up(true).dpop_nonce_secrets(nonces.clone())
    })?;
    match &issuer {
        Some(issuer) => print_try_it(issuer, port, &nonces),
        None => println!("Verifying tokens of your tenant; listening on http://localhost:{port}"),
    }
    HttpServer::new(|| {
        App::new()
            // Successes carry the next nonce when the step changes (server nonces on).
            .wrap(DpopNonces)
            .service(public)
            .service(private)
            .service(private_scoped)
            .service(health)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

const AUDIENCE: &str = "https://quickstart.example.com";

/// The nonce secret from `AUTH0_DPOP_NONCE_SECRET`, for the embedded mode (a tenant's configuration
/// reads it itself).
fn nonce_secret() -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let Ok(text) = std::env::var("AUTH0_DPOP_NONCE_SECRET") else {
        return Vec::new();
    };
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(secret) => vec![secret],
        Err(_) => {
            eprintln!("error: AUTH0_DPOP_NONCE_SECRET must be standard base64 (openssl rand -base64 32)");
            std::process::exit(2);
        }
    }
}

fn print_try_it(issuer: &TestIssuer, port: u16, nonces: &[Vec<u8>]) {
    let base = format!("http://localhost:{port}/api");
    let with_scope = issuer.token().audience(AUDIENCE).scope("read:messages").sign();
    let without_scope = issuer.token().audience(AUDIENCE).sign();
    println!("Listening on http://localhost:{port}. Try, from another terminal:\n");
    println!("  curl -i {base}/public");
    println!("  curl -i {base}/private                                   # 401, no token");
    println!(
        "  curl -i {base}/private-scoped -H 'Authorization: Bearer {without_scope}'   # 403, no read:messages"
    );
    println!("  curl -i {base}/private-scoped -H 'Authorization: Bearer {with_scope}'   # 200");
    println!(
        "  curl -i http://localhost:{port}/health                         # 200 when the keys are cached"
    );
    if std::env::var_os("QUICKSTART_PRINT_TOKENS").is_some() {
        // Machine-readable, for scripts/load.sh.
        println!("TOKEN_WITH_SCOPE={with_scope}");
    }
    println!();

    // DPoP (RFC 9449): a token bound to a key, and a proof of that key for one request.
    let key = DpopKey::generate();
    let bound = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let proof = key
        .proof("GET", &format!("{base}/private"))
        .access_token(&bound)
        .sign();
    println!("DPoP: a token bound to a key, with a proof for GET {base}/private.");
    println!(
        "The proof is single-use and time-limited: it works once, within 5 minutes of startup (restart the example for a new one).\n"
    );
    if nonces.is_empty() {
        println!("  curl -i {base}/private -H 'Authorization: DPoP {bound}' -H 'DPoP: {proof}'   # 200");
        println!("  # Sent a second time, or as 'Authorization: Bearer', it is refused (401).");
        println!();
        return;
    }
    // Server nonces: the first proof has none, the retry carries the one the API sends back.
    // Nonces are stateless, so a validator with the same secret computes the API's current one.
    let nonce = Auth0::new(issuer.config(AUDIENCE).dpop_nonce_secrets(nonces.to_vec()))
        .ok()
        .and_then(|auth0| auth0.dpop_nonce())
        .unwrap_or_default();
    let retry = key
        .proof("GET", &format!("{base}/private"))
        .access_token(&bound)
        .nonce(&nonce)
        .sign();
    println!("  curl -i {base}/private -H 'Authorization: DPoP {bound}' -H 'DPoP: {proof}'");
    println!(
        "  # 401 use_dpop_nonce, with 'DPoP-Nonce: {nonce}': sign a new proof with that nonce and retry:"
    );
    println!("  curl -i {base}/private -H 'Authorization: DPoP {bound}' -H 'DPoP: {retry}'   # 200");
    println!("  # (the nonce is good for one to two minutes after startup)");
    println!();
}
