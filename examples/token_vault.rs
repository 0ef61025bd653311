//! Acting on behalf of the caller: an API that exchanges the caller's verified access token at the
//! tenant's token endpoint, for an upstream provider's token (Token Vault) or for a token to a
//! downstream API (on-behalf-of).
//!
//! ```text
//! cargo run -p examples --example token_vault
//! ```
//!
//! With `AUTH0_DOMAIN` set (environment or `.env`) it uses your tenant: set `AUTH0_AUDIENCE`,
//! `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET` (or `AUTH0_CLIENT_ASSERTION_KEY`) of an application
//! allowed to use Token Vault and token exchange. Without them it starts the embedded test issuer,
//! whose token endpoint answers like Auth0, and prints `curl` commands with a fresh token, so it
//! runs with no Auth0 account. `PORT` changes the port (default 3000).
//!
//! Routes:
//! - `GET /api/connection/{connection}`: the caller's token exchanged at Token Vault; answers
//!   `{"connection", "scope", "expires_at"}`, never the upstream token itself.
//! - `GET /api/on-behalf-of?audience=…&scope=…`: a token for a downstream API; answers
//!   `{"audience", "scope", "expires_in", "token_type", "issued_token_type"}`, or, without
//!   `audience`, 400 `invalid_request`.
//!
//! A failed exchange is the handler's `?`: `ExchangeError` answers with the token endpoint's status
//! and `error` (or 502/504 `network_error`, `timeout_error`, …) in the usual JSON body.

use actix_web::{App, HttpResponse, HttpServer, get, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{
    AccessToken, Auth0, ConnectionTokenRequest, ExchangeError, OnBehalfOfRequest, require_auth,
};
use serde::Deserialize;
use serde_json::json;

const AUDIENCE: &str = "https://token-vault.example.com";

#[get("/api/connection/{connection}")]
#[require_auth]
async fn connection(
    auth0: Auth0,
    token: AccessToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ExchangeError> {
    let connection = path.into_inner();
    let upstream = auth0
        .token_for_connection(ConnectionTokenRequest::new(connection.as_str(), &token))
        .await?;
    // Here the API would call the provider with `upstream.access_token.expose()`.
    Ok(HttpResponse::Ok().json(json!({
        "connection": connection,
        "scope": upstream.scope,
        "expires_at": upstream.expires_at,
    })))
}

#[derive(Deserialize)]
struct Downstream {
    // Optional here so that a missing `audience` reaches the exchange, which answers the JSON 400
    // `invalid_request`; a required field would fail the extractor with Actix's plain-text 400.
    #[serde(default)]
    audience: String,
    scope: Option<String>,
}

#[get("/api/on-behalf-of")]
#[require_auth]
async fn on_behalf_of(
    auth0: Auth0,
    token: AccessToken,
    query: web::Query<Downstream>,
) -> Result<HttpResponse, ExchangeError> {
    let Downstream { audience, scope } = query.into_inner();
    let mut request = OnBehalfOfRequest::new(&token, audience.as_str());
    if let Some(scope) = scope {
        request = request.scope(scope);
    }
    let downstream = auth0.token_on_behalf_of(request).await?;
    Ok(HttpResponse::Ok().json(json!({
        "audience": audience,
        "scope": downstream.scope,
        "expires_in": downstream.expires_in,
        "token_type": downstream.token_type,
        "issued_token_type": downstream.issued_token_type,
    })))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port = examples::port(3000);
    // The embedded issuer registers a client and configures the validator with it.
    let issuer = examples::init_auth0_with(AUDIENCE, |issuer, config| {
        issuer.set_connection_scope(
            "google-oauth2",
            "https://www.googleapis.com/auth/calendar.readonly",
        );
        issuer.set_connection_scope("github", "repo read:user");
        issuer.client().configure(config)
    })?;
    match &issuer {
        Some(issuer) => print_try_it(issuer, port),
        None => println!("Exchanging at your tenant's token endpoint; listening on http://localhost:{port}"),
    }
    HttpServer::new(|| App::new().service(connection).service(on_behalf_of))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}

fn print_try_it(issuer: &TestIssuer, port: u16) {
    let base = format!("http://localhost:{port}/api");
    let token = issuer.token().audience(AUDIENCE).subject("auth0|alice").sign();
    println!("Listening on http://localhost:{port}. Try, from another terminal:\n");
    println!("  TOKEN={token}\n");
    println!("  curl -i {base}/connection/google-oauth2 -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -i {base}/connection/github -H \"Authorization: Bearer $TOKEN\"");
    println!(
        "  curl -i '{base}/on-behalf-of?audience=https%3A%2F%2Fbilling.example.com&scope=read%3Ainvoices' \
         -H \"Authorization: Bearer $TOKEN\""
    );
    println!("  curl -i {base}/on-behalf-of -H \"Authorization: Bearer $TOKEN\"   # 400, no audience");
    println!("  curl -i {base}/connection/google-oauth2                    # 401, no token");
    println!();
    println!(
        "A repeat exchange with the same inputs is answered from the cache until 60 s before the token \
         expires, and never after the caller's token has."
    );
}
