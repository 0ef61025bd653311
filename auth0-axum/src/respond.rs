//! Responses: refusals, exchange failures, readiness and the RFC 9728 metadata.

use auth0_core::{AuthError, ExchangeError, Readiness, Refusal};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderName, HeaderValue};

use crate::extract::Validator;

/// A request refused by [`Auth0Layer`](crate::Auth0Layer) or an extractor: the status, JSON body
/// and headers the Actix adapter sends for the same refusal (`WWW-Authenticate` with the
/// validator's schemes, `algs` and `resource_metadata`; `Retry-After` on 503; `Cache-Control:
/// no-store`; `DPoP-Nonce` with `use_dpop_nonce`).
#[derive(Debug, Clone)]
pub struct Rejection(Refusal);

impl Rejection {
    /// The refusal, framework-neutral.
    pub fn refusal(&self) -> &Refusal {
        &self.0
    }

    /// Takes the refusal out, to render it another way.
    pub fn into_refusal(self) -> Refusal {
        self.0
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Self(refusal)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request refused with {}: {}", self.0.status, self.0.body)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let Refusal {
            status,
            headers,
            body,
            ..
        } = self.0;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let map = response.headers_mut();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                map.append(name, value);
            }
        }
        response
    }
}

/// No validator: neither the layer's, nor an `Extension<Auth0>`, nor the global one. Fails closed
/// with 500, and says how to fix it, loudly once.
pub(crate) fn not_configured() -> Rejection {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if first {
        tracing::error!(
            target: "auth0_axum",
            "a protected route was called, but no Auth0 validator is configured, so every protected \
             route answers 500. Fix: call `auth0_axum::init_from_env()` (AUTH0_DOMAIN, \
             AUTH0_AUDIENCE) or `auth0_axum::init(Auth0Config::new(domain, audience))` in `main` \
             before `axum::serve`, or give the layer a validator with \
             `Auth0Layer::new().validator(auth0)`"
        );
    } else {
        tracing::debug!(
            target: "auth0_axum",
            "a protected route was called, but no Auth0 validator is configured (answered 500)"
        );
    }
    Rejection(Refusal::from(AuthError::Internal(
        "authentication is not configured",
    )))
}

/// A failed token exchange as a response: `{"detail": {"error", "error_description"}}` with the
/// error's status and `Cache-Control: no-store`, as in the Actix adapter. `?` on an exchange in a
/// handler that returns `Result<_, ExchangeFailure>` answers the caller properly.
#[derive(Debug)]
pub struct ExchangeFailure(pub ExchangeError);

impl From<ExchangeError> for ExchangeFailure {
    fn from(error: ExchangeError) -> Self {
        Self(error)
    }
}

impl std::fmt::Display for ExchangeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ExchangeFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for ExchangeFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = serde_json::json!({
            "detail": {"error": self.0.code(), "error_description": self.0.description()}
        });
        json(status, "no-store", body.to_string())
    }
}

/// [`Readiness`] as a response: 200 when ready, 503 when not, the details as JSON, never cached.
#[derive(Debug, Clone)]
pub struct ReadinessResponse(pub Readiness);

impl IntoResponse for ReadinessResponse {
    fn into_response(self) -> Response {
        let status = if self.0.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        match serde_json::to_string(&self.0) {
            Ok(body) => json(status, "no-store", body),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// A readiness handler for a health route: [`Auth0::ready`](auth0_core::Auth0::ready) of the
/// request's validator, 200 when ready, 503 when not, never cached.
///
/// ```
/// use axum::{Router, routing::get};
///
/// let app: Router = Router::new().route("/health", get(auth0_axum::readiness));
/// # let _ = app;
/// ```
pub async fn readiness(Validator(auth0): Validator) -> ReadinessResponse {
    ReadinessResponse(auth0.ready().await)
}

/// Serves the RFC 9728 Protected Resource Metadata of the request's validator: mount it at
/// [`Auth0::resource_metadata_path`](auth0_core::Auth0::resource_metadata_path). 404 when
/// metadata is not published
/// ([`Auth0Config::resource_metadata`](auth0_core::Auth0Config::resource_metadata)).
///
/// ```no_run
/// use axum::{Router, routing::get};
///
/// # async fn run() -> std::io::Result<()> {
/// let auth0 = auth0_axum::init_from_env().map_err(std::io::Error::other)?;
/// let path = auth0.resource_metadata_path().unwrap_or("/.well-known/oauth-protected-resource");
/// let app = Router::new().route(path, get(auth0_axum::protected_resource_metadata));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
pub async fn protected_resource_metadata(Validator(auth0): Validator) -> Response {
    match auth0.resource_metadata_document() {
        Some(document) => json(StatusCode::OK, "max-age=3600", document.to_owned()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn json(status: StatusCode, cache_control: &'static str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
