//! The Auth0 API quickstart as an axum router: the same routes and answers as the Actix app in
//! [`crate::quickstart`], protected by `auth0-axum`.

use auth0_axum::Auth0;
use auth0_axum::{Auth0Layer, Claims};
use axum::routing::get;
use axum::{Extension, Json, Router};

use crate::quickstart::{private_message, private_scoped_message, public_message};

async fn public() -> Json<serde_json::Value> {
    Json(public_message())
}

async fn private(claims: Claims) -> Json<serde_json::Value> {
    Json(private_message(&claims.sub))
}

async fn private_scoped(claims: Claims) -> Json<serde_json::Value> {
    Json(private_scoped_message(&claims.sub))
}

/// The quickstart as an axum router: `/api/public`, `/api/private`, `/api/private-scoped` (needs
/// `read:messages`), `/health`, and the RFC 9728 metadata when published. `auth0` is its
/// validator (the global one when `None`).
pub fn router(auth0: Option<Auth0>) -> Router {
    let protect = |layer: Auth0Layer| match &auth0 {
        Some(auth0) => layer.validator(auth0.clone()),
        None => layer,
    };
    let mut router = Router::new()
        .route("/api/public", get(public))
        .route(
            "/api/private",
            get(private).route_layer(protect(Auth0Layer::new())),
        )
        .route(
            "/api/private-scoped",
            get(private_scoped).route_layer(protect(Auth0Layer::new().scopes(["read:messages"]))),
        )
        .route("/health", get(auth0_axum::readiness));
    let metadata = auth0
        .as_ref()
        .or_else(|| Auth0::global())
        .and_then(|a| a.resource_metadata_path().map(str::to_owned));
    if let Some(path) = metadata {
        router = router.route(&path, get(auth0_axum::protected_resource_metadata));
    }
    match auth0 {
        // The unprotected handlers (readiness, metadata) find the validator here.
        Some(auth0) => router.layer(Extension(auth0)),
        None => router,
    }
}
