//! The Auth0 API quickstart, shared by its two servers (`examples/quickstart.rs` on Actix,
//! `examples/axum_quickstart.rs` on axum) and by their conformance tests: the Actix app, the
//! configuration and what the embedded mode prints.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, Responder, get, web};
use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Auth0, Claims, DpopNonces, Readiness, require_auth};
use serde_json::json;

/// The audience of the embedded test issuer's tokens.
pub const AUDIENCE: &str = "https://quickstart.example.com";

/// The answer of `GET /api/public`.
pub fn public_message() -> serde_json::Value {
    json!({
        "message": "Hello from a public endpoint! You don't need to be authenticated to see this."
    })
}

/// The answer of `GET /api/private`.
pub fn private_message(sub: &str) -> serde_json::Value {
    json!({
        "message": "Hello from a private endpoint! You need to be authenticated to see this.",
        "sub": sub,
    })
}

/// The answer of `GET /api/private-scoped`.
pub fn private_scoped_message(sub: &str) -> serde_json::Value {
    json!({
        "message": "Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this.",
        "sub": sub,
    })
}

#[get("/api/public")]
async fn public() -> impl Responder {
    HttpResponse::Ok().json(public_message())
}

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(private_message(&claims.sub))
}

#[get("/api/private-scoped")]
#[require_auth(scopes = "read:messages")]
async fn private_scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(private_scoped_message(&claims.sub))
}

/// Readiness: 200 when ready, 503 when not, with the details as JSON.
#[get("/health")]
async fn health(auth0: Auth0) -> Readiness {
    auth0.ready().await
}

/// The quickstart as an Actix app: `/api/public`, `/api/private`, `/api/private-scoped` (needs
/// `read:messages`), `/health`, and the RFC 9728 metadata when published. `auth0` is its validator
/// (the global one when `None`).
pub fn actix_app(
    auth0: Option<Auth0>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metadata = auth0
        .as_ref()
        .or_else(|| Auth0::global())
        .and_then(|a| a.resource_metadata_path().map(str::to_owned));
    App::new()
        // Successes carry the next nonce when the step changes (server nonces on).
        .wrap(DpopNonces)
        .configure(|cfg| {
            if let Some(auth0) = auth0 {
                cfg.app_data(auth0);
            }
            if let Some(path) = metadata {
                cfg.route(&path, web::get().to(auth0_runtime::protected_resource_metadata));
            }
        })
        .service(public)
        .service(private)
        .service(private_scoped)
        .service(health)
}

/// The nonce secret from `AUTH0_DPOP_NONCE_SECRET`, for the embedded mode (a tenant's
/// configuration reads it itself). A value that is not base64 ends the program with the fix.
pub fn nonce_secret() -> Vec<Vec<u8>> {
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

/// Configures the global validator (a tenant, or the embedded issuer with `nonces`) and says how
/// to try the API on `port`. Returns the embedded issuer, to keep alive while the server runs.
///
/// # Errors
/// The embedded issuer failing to start.
pub fn init(port: u16) -> std::io::Result<Option<TestIssuer>> {
    // The embedded issuer's keys are cached before the port is bound; a tenant's with AUTH0_WARM_UP.
    let nonces = nonce_secret();
    let issuer = crate::init_auth0_with(AUDIENCE, |_, config| {
        config.warm_up(true).dpop_nonce_secrets(nonces.clone())
    })?;
    match &issuer {
        Some(issuer) => print_try_it(issuer, port, &nonces),
        None => println!("Verifying tokens of your tenant; listening on http://localhost:{port}"),
    }
    Ok(issuer)
}

/// Prints `curl` commands with fresh tokens for the embedded issuer.
pub fn print_try_it(issuer: &TestIssuer, port: u16, nonces: &[Vec<u8>]) {
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
