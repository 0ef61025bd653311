//! Rendering refusals (the validator's [`Refusal`]) as Actix responses, and the responders for
//! readiness, metadata and exchange errors.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::{supplied, validator};
use crate::answer::{AuthError, Challenges, Refusal};
use crate::exchange::ExchangeError;
use crate::verify::{Auth0, Denied, Verified};

pub(super) fn not_configured() -> actix_web::Error {
    // Loudly once (the fix), then quietly: every protected request would repeat it.
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if first {
        tracing::error!(
            target: "auth0_runtime",
            "a protected route was called, but no Auth0 validator is configured, so every protected \
             route answers 500. Fix: call `auth0_runtime::init_from_env()` (AUTH0_DOMAIN, \
             AUTH0_AUDIENCE) or `auth0_runtime::init(Auth0Config::new(domain, audience))` in `main` \
             before `HttpServer::new(...).run()`, or give the app a validator with \
             `App::new().app_data(auth0.clone())`"
        );
    } else {
        tracing::debug!(
            target: "auth0_runtime",
            "a protected route was called, but no Auth0 validator is configured (answered 500)"
        );
    }
    let error = AuthError::Internal("authentication is not configured");
    let response = render(Refusal::default_for(&error));
    actix_web::error::InternalError::from_response(error, response).into()
}

impl Auth0 {
    /// The response for a refusal: [`Auth0::refusal`], as Actix sends it.
    pub(crate) fn respond(&self, denied: Denied) -> actix_web::Error {
        // Logged once, where the verification is watched (`observe`), with its precise reason.
        let Denied { error, dpop, .. } = denied;
        let response = render(self.refusal(&error, dpop));
        actix_web::error::InternalError::from_response(error, response).into()
    }
}

/// An Actix response with the refusal's status, headers and body; a header the hook made
/// invalid is left out rather than failing the answer.
pub(super) fn render(refusal: Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &refusal.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.append_header((name, value));
        }
    }
    response.body(refusal.body)
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Renders with the default challenges (Bearer and DPoP); refusals produced by the extractors
    /// and middleware use the validator's configuration instead.
    fn error_response(&self) -> HttpResponse {
        render(Refusal::default_for(self))
    }
}

/// A refusal of an already verified request (its claims do not satisfy the route).
pub(super) fn refuse(req: &HttpRequest, v: &Verified, error: AuthError) -> actix_web::Error {
    if let AuthError::InsufficientScope { required, .. } = &error {
        tracing::debug!(
            target: "auth0_runtime",
            required = %required,
            scope = ?v.claims.scope,
            permissions = ?v.claims.permissions,
            "request refused: the route requires more than the token grants"
        );
    }
    let denied = Denied::new(error, v.scheme == crate::Scheme::Dpop);
    match validator(req) {
        Some(auth0) => auth0.respond(denied),
        // A supplied verification needs no validator: default challenges, as `AuthError`'s
        // `ResponseError`.
        None if supplied(req) => {
            let response = render(Refusal::of(
                &denied.error,
                Challenges::Both,
                denied.dpop,
                "ES256",
                None,
            ));
            actix_web::error::InternalError::from_response(denied.error, response).into()
        }
        None => not_configured(),
    }
}

impl actix_web::Responder for crate::Readiness {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let status = if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(&self)
    }
}

/// The readiness as JSON: 200 when ready, 503 when not, never cached; for a health route.
/// Serves the RFC 9728 Protected Resource Metadata of the validator (app data, else the global
/// one): mount it at [`Auth0::resource_metadata_path`]. 404 when metadata is not published
/// ([`Auth0Config::resource_metadata`](crate::Auth0Config::resource_metadata)).
///
/// ```no_run
/// use actix_web::{App, HttpServer, web};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let auth0 = match auth0_runtime::init_from_env() {
///         Ok(auth0) => auth0,
///         Err(error) => {
///             eprintln!("{error}");
///             std::process::exit(2);
///         }
///     };
///     let path = auth0.resource_metadata_path().unwrap_or("/.well-known/oauth-protected-resource");
///     HttpServer::new(move || {
///         App::new().route(path, web::get().to(auth0_runtime::protected_resource_metadata))
///     })
///     .bind(("127.0.0.1", 3000))?
///     .run()
///     .await
/// }
/// ```
pub async fn protected_resource_metadata(auth0: Auth0) -> HttpResponse {
    match auth0.resource_metadata_json() {
        Some(json) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")))
            .content_type("application/json")
            .body(json.to_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `{"detail": {"error", "error_description"}}` with the error's status: `?` on a token exchange
/// in a handler answers the caller properly. The description is JSON-escaped; no header carries
/// it.
impl ResponseError for ExchangeError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::json!({
            "detail": {"error": self.code(), "error_description": self.description()}
        });
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .content_type("application/json")
            .body(body.to_string())
    }
}
