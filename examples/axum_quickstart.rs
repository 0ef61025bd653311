//! The Auth0 API quickstart on axum: the same public, private and scoped routes as
//! `examples/quickstart.rs`, protected by `auth0-axum`.
//!
//! ```text
//! cargo run -p examples --example axum_quickstart
//! ```
//!
//! With `AUTH0_DOMAIN` and `AUTH0_AUDIENCE` set (in the environment or `.env`) it verifies tokens of
//! your tenant. Without them it starts the embedded test issuer and prints `curl` commands with
//! fresh tokens, so it runs on a fresh machine with no Auth0 account. `GET /health` is the
//! readiness; `AUTH0_DPOP_NONCE_SECRET` turns DPoP server nonces on, as in the Actix quickstart.
//!
//! The router is in `examples/src/axum_quickstart.rs`, shared with the tests that check that it
//! answers exactly as the Actix quickstart does.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3000);
    // The embedded issuer (when there is no tenant) lives as long as the server.
    let _issuer = examples::quickstart::init(port)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // `ConnectInfo` gives the verifier the peer address, which `AUTH0_TRUSTED_PROXIES` needs.
    let app = examples::axum_quickstart::router(None);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
