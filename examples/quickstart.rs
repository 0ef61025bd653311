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
//!
//! The routes are in `examples/src/quickstart.rs`, shared with the tests that check every answer;
//! `examples/axum_quickstart.rs` is the same API on axum.

use actix_web::HttpServer;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3000);
    // The embedded issuer (when there is no tenant) lives as long as the server.
    let _issuer = examples::quickstart::init(port)?;
    HttpServer::new(|| examples::quickstart::actix_app(None))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
