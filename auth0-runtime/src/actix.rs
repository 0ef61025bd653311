//! The Actix-web adapter: extractors, the guard behind `#[require_auth]`, the middleware and the
//! rendering of refusals. A thin layer over [`crate::verify`].

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use crate::answer::{AuthError, Challenges};
use crate::claims::Claims;
use crate::exchange::ExchangeError;
use crate::policy::{authorize, authorize_step_up};
use crate::verify::{Auth0, Denied, RequestParts, Verification, Verified};

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl RequestParts for HttpRequest {
    fn method(&self) -> &str {
        self.head().method.as_str()
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers().get_all(name).map(HeaderValue::as_bytes)
    }

    fn scheme(&self) -> &str {
        // The connection itself, never `Forwarded`/`X-Forwarded-*` (those are honoured only with
        // `trust_proxy`, by the verifier).
        if self.app_config().secure() {
            "https"
        } else {
            "http"
        }
    }

    fn host(&self) -> &str {
        match self.headers().get(header::HOST) {
            // A Host that is not visible ASCII must not fall back to anything: "" is refused.
            Some(host) => host.to_str().unwrap_or_default(),
            None => self
                .uri()
                .authority()
                .map_or_else(|| self.app_config().host(), |a| a.as_str()),
        }
    }

    fn path(&self) -> &str {
        self.path()
    }

    fn peer(&self) -> Option<std::net::IpAddr> {
        self.peer_addr().map(|a| a.ip())
    }

    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect()
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The validator for this request: app data first, then the global one.
fn validator(req: &HttpRequest) -> Option<&Auth0> {
    req.app_data::<Auth0>()
        .or_else(|| req.app_data::<actix_web::web::Data<Auth0>>().map(|d| d.get_ref()))
        .or_else(|| crate::GLOBAL.get())
}

fn not_configured() -> actix_web::Error {
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
    let response = render(&error, Challenges::Both, false, "ES256", None);
    actix_web::error::InternalError::from_response(error, response).into()
}

impl Auth0 {
    /// The response for a refusal, through the configured error handler.
    pub(crate) fn respond(&self, denied: Denied) -> actix_web::Error {
        // Logged once, where the verification is watched (`observe`), with its precise reason.
        let Denied { error, dpop, .. } = denied;
        let mut response = render(
            &error,
            self.0.accepted,
            dpop,
            &self.0.dpop_algs,
            self.resource_metadata_url(),
        );
        if matches!(error, AuthError::UseDpopNonce(_))
            && let Some(nonce) = self.dpop_nonce().and_then(|n| HeaderValue::try_from(n).ok())
        {
            response.headers_mut().insert(DPOP_NONCE, nonce);
        }
        if let Some(handler) = &self.0.error_handler {
            response = handler(&error, response);
        }
        actix_web::error::InternalError::from_response(error, response).into()
    }

    /// Verifies `req`, synchronously when the key is cached and the replay store answers at once.
    fn verify_request(
        &self,
        req: &HttpRequest,
    ) -> Result<Result<Verified, Denied>, LocalBoxFuture<Result<Verified, Denied>>> {
        match self.verify(req) {
            Verification::Done(result) => Ok(result),
            Verification::Later(future) => Err(future),
        }
    }
}

fn render(
    error: &AuthError,
    accepted: Challenges,
    dpop: bool,
    dpop_algs: &str,
    resource_metadata: Option<&str>,
) -> HttpResponse {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(challenge) = error.challenge(accepted, dpop, dpop_algs, resource_metadata)
        && let Ok(value) = HeaderValue::try_from(challenge)
    {
        response.insert_header((header::WWW_AUTHENTICATE, value));
    }
    if let Some(seconds) = error.retry_after() {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    response.content_type("application/json").body(body(error))
}

fn body(error: &AuthError) -> String {
    serde_json::json!({"detail": {"error": error.code(), "error_description": error.description()}})
        .to_string()
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Renders with the default challenges (Bearer and DPoP); refusals produced by the extractors
    /// and middleware use the validator's configuration instead.
    fn error_response(&self) -> HttpResponse {
        render(self, Challenges::Both, false, "ES256", None)
    }
}

/// The verification already done for this request (by the guard or the middleware), and the
/// validator that did it: a handler under another validator (app data of an inner scope) verifies
/// again under its own configuration.
#[derive(Clone)]
struct Done {
    by: Auth0,
    verified: Verified,
    /// The `Authorization` value that was verified (a reference-counted handle, not a copy):
    /// [`AccessToken`] reads the token from it, so it hands out the verified token even if a later
    /// middleware edits the request's headers, and the hot path copies nothing.
    authorization: Option<HeaderValue>,
}

fn remember(req: &HttpRequest, by: &Auth0, verified: &Verified) {
    if verified.scheme == crate::Scheme::Dpop && by.0.nonces.is_some() {
        check_nonce_renewal(req, by);
    }
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    req.extensions_mut().insert(Done {
        by: by.clone(),
        verified: verified.clone(),
        authorization,
    });
}

/// Set on a request by [`DpopNonces`] and [`RequireAuth`] before the app sees it: its successful
/// answer will carry a renewed `DPoP-Nonce` when the proof needs one.
#[derive(Clone, Copy)]
struct NonceRenewal;

/// With server nonces on, a successful DPoP request that neither [`DpopNonces`] nor
/// [`RequireAuth`] handles gets no renewed nonce: say so, once per validator. Startup cannot see
/// the app; its first such request shows it.
fn check_nonce_renewal(req: &HttpRequest, by: &Auth0) {
    use std::sync::atomic::Ordering;
    if by.0.nonce_renewal_warned.load(Ordering::Relaxed)
        || req.extensions().get::<NonceRenewal>().is_some()
        || by.0.nonce_renewal_warned.swap(true, Ordering::Relaxed)
    {
        return;
    }
    tracing::warn!(
        target: "auth0_runtime",
        route = req.match_pattern().as_deref().unwrap_or("(no route)"),
        "DPoP server nonces are on (AUTH0_DPOP_NONCE_SECRET), but no DpopNonces middleware wraps \
         this route: successful answers never carry the next nonce, so DPoP clients get 401 \
         use_dpop_nonce and retry whenever theirs expires (every one to two minutes); wrap the \
         app: App::new().wrap(auth0_runtime::DpopNonces)"
    );
}

/// The guard, the middleware and `Claims` share one verification per request and validator.
fn verified_by(req: &HttpRequest, auth0: &Auth0) -> Option<Verified> {
    let extensions = req.extensions();
    let done = extensions.get::<Done>()?;
    std::sync::Arc::ptr_eq(&done.by.0, &auth0.0).then(|| done.verified.clone())
}

/// The future of the [`Claims`] extractor: ready at once when the signing key is cached.
#[doc(hidden)]
pub struct Verifying<T> {
    state: VerifyingState<T>,
}

enum VerifyingState<T> {
    Ready(Option<Result<T, actix_web::Error>>),
    Waiting {
        future: LocalBoxFuture<Result<Verified, Denied>>,
        auth0: Auth0,
        req: HttpRequest,
        finish: fn(&HttpRequest, Verified) -> Result<T, actix_web::Error>,
    },
}

impl<T> std::fmt::Debug for Verifying<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifying")
    }
}

// `T` is only ever moved out, never pinned, so the future is `Unpin` whatever `T` is.
impl<T> Unpin for Verifying<T> {}

impl<T> Future for Verifying<T> {
    type Output = Result<T, actix_web::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            VerifyingState::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
            VerifyingState::Waiting {
                future,
                auth0,
                req,
                finish,
            } => {
                let result = match std::task::ready!(future.as_mut().poll(cx)) {
                    Ok(v) => {
                        remember(req, auth0, &v);
                        finish(req, v)
                    }
                    Err(denied) => Err(auth0.respond(denied)),
                };
                Poll::Ready(result)
            }
        }
    }
}

/// Runs verification for `req` (or reuses an earlier one) and maps the result with `finish`.
fn verify_then<T>(
    req: &HttpRequest,
    finish: fn(&HttpRequest, Verified) -> Result<T, actix_web::Error>,
) -> Verifying<T> {
    let ready_with = |r| Verifying {
        state: VerifyingState::Ready(Some(r)),
    };
    // Test claims (`TestRequestExt::authenticated`) stand for the verification, validator or not.
    // Without the `testing` feature neither this check nor the marker type exists; with it, only
    // the testing kit can build the marker, and only on a test request (see `testing/claims.rs`).
    #[cfg(feature = "testing")]
    if let Some(v) = crate::testing::test_claims(req) {
        return ready_with(finish(req, v));
    }
    let Some(auth0) = validator(req) else {
        return ready_with(Err(not_configured()));
    };
    if let Some(v) = verified_by(req, auth0) {
        return ready_with(finish(req, v));
    }
    match auth0.verify_request(req) {
        Ok(Ok(v)) => {
            remember(req, auth0, &v);
            ready_with(finish(req, v))
        }
        Ok(Err(denied)) => ready_with(Err(auth0.respond(denied))),
        Err(future) => Verifying {
            state: VerifyingState::Waiting {
                future,
                auth0: auth0.clone(),
                req: req.clone(),
                finish,
            },
        },
    }
}

/// A refusal of an already verified request (its claims do not satisfy the route).
fn refuse(req: &HttpRequest, v: &Verified, error: AuthError) -> actix_web::Error {
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
        // Test claims need no validator: default challenges, as `AuthError`'s `ResponseError`.
        #[cfg(feature = "testing")]
        None if crate::testing::test_claims(req).is_some() => {
            let response = render(&denied.error, Challenges::Both, denied.dpop, "ES256", None);
            actix_web::error::InternalError::from_response(denied.error, response).into()
        }
        None => not_configured(),
    }
}

fn claims_from<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    v: Verified,
) -> Result<Claims<T>, actix_web::Error> {
    match v.claims.custom::<T>() {
        Ok(custom) => Ok(Claims::new(v.claims, v.scheme, custom)),
        Err(_) => Err(refuse(
            req,
            &v,
            AuthError::InvalidToken("the access token's custom claims do not have the expected shape"),
        )),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Claims<T> {
    type Error = actix_web::Error;
    type Future = Verifying<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        verify_then(req, claims_from::<T>)
    }
}

/// The guard behind `#[require_auth]`: authenticates, checks the route's requirement, and only then
/// extracts the handler's own parameters `A`, so no body is read for a refused request.
///
/// Named for the message a user reads when calling a protected handler directly ("expected
/// `ExtractedByActix<..>`, found `Claims`"): its one parameter comes from Actix-web, from a
/// request.
#[doc(hidden)]
pub struct ExtractedByActix<R, A> {
    args: A,
    requirement: PhantomData<fn() -> R>,
}

impl<R, A> ExtractedByActix<R, A> {
    /// The handler's own parameters.
    pub fn into_inner(self) -> A {
        self.args
    }
}

impl<R, A> std::fmt::Debug for ExtractedByActix<R, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtractedByActix")
    }
}

/// What a route requires, fixed at compile time by `#[require_auth]`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub all_scopes: &'static [&'static str],
    pub any_scopes: &'static [&'static str],
    pub permissions: &'static [&'static str],
    pub acr_values: &'static [&'static str],
    pub max_age: Option<u64>,
}

/// Carries a route's [`Requirement`] in a type, so the guard extractor can read it.
#[doc(hidden)]
pub trait Requires {
    const REQUIREMENT: Requirement;
}

/// The requirement of a bare `#[require_auth]`: a valid access token, nothing more. A fixed type,
/// so the bare form generates no item next to the handler and works inside an `impl` block.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

impl Requires for Authenticated {
    const REQUIREMENT: Requirement = Requirement {
        all_scopes: &[],
        any_scopes: &[],
        permissions: &[],
        acr_values: &[],
        max_age: None,
    };
}

fn check_requirement<R: Requires>(req: &HttpRequest, v: Verified) -> Result<(), actix_web::Error> {
    let r = R::REQUIREMENT;
    let now = validator(req).map_or_else(crate::clock::now, Auth0::now);
    authorize_step_up(&v.claims, r.acr_values, r.max_age, now)
        .and_then(|()| authorize(&v.claims, r.all_scopes, r.any_scopes, r.permissions))
        .map_err(|error| refuse(req, &v, error))
}

pin_project_lite::pin_project! {
    #[doc(hidden)]
    #[project = GuardProj]
    pub enum GuardedFuture<R, A: FromRequest> {
        Failed { error: Option<actix_web::Error>, requirement: PhantomData<fn() -> R> },
        Authorizing { verifying: Verifying<()>, req: HttpRequest, payload: Payload },
        Extracting { #[pin] args: A::Future },
        Done,
    }
}

impl<R: Requires, A: FromRequest + 'static> FromRequest for ExtractedByActix<R, A> {
    type Error = actix_web::Error;
    type Future = GuardedFuture<R, A>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut verifying = verify_then(req, check_requirement::<R>);
        match &mut verifying.state {
            // The common case, keys cached: decided now, so the parameters are extracted at once.
            VerifyingState::Ready(result) => match result.take() {
                Some(Ok(())) => GuardedFuture::Extracting {
                    args: A::from_request(req, payload),
                },
                error => GuardedFuture::Failed {
                    error: error.and_then(Result::err),
                    requirement: PhantomData,
                },
            },
            // Waiting for keys: keep the body aside until the request is authorised.
            VerifyingState::Waiting { .. } => GuardedFuture::Authorizing {
                verifying,
                req: req.clone(),
                payload: payload.take(),
            },
        }
    }
}

impl<R, A: FromRequest> Future for GuardedFuture<R, A> {
    type Output = Result<ExtractedByActix<R, A>, actix_web::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                GuardProj::Failed { error, .. } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| AuthError::Internal("polled after completion").into());
                    return Poll::Ready(Err(error));
                }
                GuardProj::Authorizing {
                    verifying,
                    req,
                    payload,
                } => {
                    if let Err(e) = std::task::ready!(Pin::new(verifying).poll(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    let args = A::from_request(req, payload);
                    self.set(GuardedFuture::Extracting { args });
                }
                GuardProj::Extracting { args } => {
                    let args = std::task::ready!(args.poll(cx)).map_err(Into::into)?;
                    self.set(GuardedFuture::Done);
                    return Poll::Ready(Ok(ExtractedByActix {
                        args,
                        requirement: PhantomData,
                    }));
                }
                GuardProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Protects every route of an `App`, `scope` or `resource`, with the same options as
/// `#[require_auth]`.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer, Responder};
/// use auth0_runtime::{Claims, RequireAuth};
///
/// async fn messages(claims: Claims) -> impl Responder {
///     format!("messages for {}", claims.sub)
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// if let Err(error) = auth0_runtime::init_from_env() {
///     eprintln!("{error}");
///     std::process::exit(2);
/// }
/// HttpServer::new(|| {
///     App::new().service(
///         web::scope("/api")
///             .wrap(RequireAuth::new().scopes(["read:messages"]))
///             .route("/messages", web::get().to(messages)),
///     )
/// })
/// .bind(("127.0.0.1", 3000))?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RequireAuth {
    all_scopes: Arc<[String]>,
    any_scopes: Arc<[String]>,
    permissions: Arc<[String]>,
    acr_values: Arc<[String]>,
    max_age: Option<u64>,
    optional: bool,
}

impl RequireAuth {
    /// Every request must carry a valid access token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authentication is optional: a request without credentials passes through anonymously, but
    /// credentials that are sent must be valid (a bad token is refused, never treated as
    /// anonymous). Handlers read the result through `Option<Claims>`.
    ///
    /// The middleware is what makes `Option<Claims>` safe: on its own, Actix's `Option<T>`
    /// extractor turns every extraction error into `None`, so without it an invalid token would
    /// read as an anonymous request.
    pub fn optional() -> Self {
        Self {
            optional: true,
            ..Self::default()
        }
    }

    /// Scopes the token must all have (RFC 6749 `scope`, exact match).
    ///
    /// Each value is one scope: `.scopes(["read:data", "write:data"])`. A comma is allowed inside a
    /// scope, as RFC 6749 allows it (`"a,b"` is one scope named `a,b`).
    ///
    /// # Panics
    /// At startup, on an empty list or a value that is not an RFC 6749 scope-token (printable
    /// ASCII other than space, `"` and `\`): the same mistakes `#[require_auth]` refuses to compile.
    /// A list written as one value (`"read:a, write:b"` or `"read:a write:b"`) is refused with the
    /// list to write instead.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.all_scopes = scope_tokens("scopes", scopes);
        self
    }

    /// Scopes of which the token must have at least one.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn any_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.any_scopes = scope_tokens("any_scopes", scopes);
        self
    }

    /// Auth0 RBAC permissions the token must all carry.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, permissions: I) -> Self {
        self.permissions = scope_tokens("permissions", permissions);
        self
    }

    /// Step-up (RFC 9470): the token's `acr` claim must be one of these authentication context
    /// classes; otherwise 401 `insufficient_user_authentication` with `acr_values="…"`.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn acr_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.acr_values = scope_tokens("acr_values", values);
        self
    }

    /// Step-up (RFC 9470): the token's `auth_time` claim must be at most `max_age` ago (whole
    /// seconds); otherwise 401 `insufficient_user_authentication` with `max_age="…"`.
    pub fn max_age(mut self, max_age: std::time::Duration) -> Self {
        self.max_age = Some(max_age.as_secs());
        self
    }
}

/// Checks a route's requirement once, when the app is built.
///
/// Each value is one RFC 6749 `scope-token`, which may contain a comma (`"a,b"` is one scope). A
/// value that is not a scope-token because it is a list written as one string (`"a, b"`, `"a b"`)
/// is refused with a message that shows the list to write instead.
fn scope_tokens<I: IntoIterator<Item = S>, S: Into<String>>(what: &str, values: I) -> Arc<[String]> {
    let values: Arc<[String]> = values.into_iter().map(Into::into).collect();
    assert!(!values.is_empty(), "RequireAuth::{what} needs at least one value");
    for v in values.iter() {
        if is_scope_token(v) {
            continue;
        }
        let parts: Vec<&str> = v.split([',', ' ']).filter(|part| !part.is_empty()).collect();
        if parts.len() > 1 && parts.iter().all(|part| is_scope_token(part)) {
            let what_it_is = if v.contains(',') {
                "looks like a comma-separated list"
            } else {
                "holds several space-delimited scopes"
            };
            panic!("RequireAuth::{what}: {v:?} {what_it_is}, expected one scope per value, like {parts:?}");
        }
        panic!(
            "RequireAuth::{what}: {v:?} is not an RFC 6749 scope-token \
             (printable ASCII other than space, '\"' and '\\')"
        );
    }
    values
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl<S, B> Transform<S, ServiceRequest> for RequireAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireAuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireAuthMiddleware {
            service: Arc::new(service),
            options: self.clone(),
        }))
    }
}

/// The service [`RequireAuth`] wraps around a route.
#[derive(Debug)]
pub struct RequireAuthMiddleware<S> {
    service: Arc<S>,
    options: RequireAuth,
}

impl<S, B> Service<ServiceRequest> for RequireAuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, actix_web::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Arc::clone(&self.service);
        let options = self.options.clone();
        req.extensions_mut().insert(NonceRenewal);
        let anonymous = options.optional && !req.headers().contains_key(header::AUTHORIZATION);
        #[cfg(feature = "testing")]
        let anonymous = anonymous && crate::testing::test_claims(req.request()).is_none();
        let verifying = (!anonymous).then(|| verify_then(req.request(), |_, v| Ok(v)));
        Box::pin(async move {
            if let Some(verifying) = verifying {
                let outcome = verifying.await.and_then(|v| {
                    let RequireAuth {
                        all_scopes,
                        any_scopes,
                        permissions,
                        acr_values,
                        max_age,
                        ..
                    } = &options;
                    let now = validator(req.request()).map_or_else(crate::clock::now, Auth0::now);
                    authorize_step_up(&v.claims, acr_values, *max_age, now)
                        .and_then(|()| authorize(&v.claims, all_scopes, any_scopes, permissions))
                        .map_err(|error| refuse(req.request(), &v, error))
                });
                if let Err(e) = outcome {
                    return Ok(req.error_response(e).map_into_right_body());
                }
            }
            let mut response = service.call(req).await?;
            renew_nonce(&mut response);
            Ok(response.map_into_left_body())
        })
    }
}

/// Adds a fresh `DPoP-Nonce` to a successful answer whose proof carried last step's nonce.
fn renew_nonce<B>(response: &mut ServiceResponse<B>) {
    let nonce = {
        let extensions = response.request().extensions();
        extensions
            .get::<Done>()
            .filter(|done| done.verified.renew_nonce)
            .and_then(|done| done.by.dpop_nonce())
    };
    if let Some(value) = nonce.and_then(|n| HeaderValue::try_from(n).ok()) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
}

/// Sends a fresh `DPoP-Nonce` on successful answers when DPoP server nonces are on
/// ([`Auth0Config::dpop_nonce_secrets`](crate::Auth0Config::dpop_nonce_secrets)) and the request's
/// proof carried the previous step's nonce, so clients move to the new nonce without a 401.
/// [`RequireAuth`] does this itself; wrap an app protected with `#[require_auth]` in this. With
/// nonces on, the first successful DPoP request that neither handles logs a warning (once per
/// validator).
///
/// ```
/// use actix_web::App;
/// use auth0_runtime::DpopNonces;
///
/// let app = App::new().wrap(DpopNonces);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DpopNonces;

impl<S, B> Transform<S, ServiceRequest> for DpopNonces
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = DpopNoncesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DpopNoncesMiddleware {
            service: Arc::new(service),
        }))
    }
}

/// The service [`DpopNonces`] wraps around an app.
#[derive(Debug)]
pub struct DpopNoncesMiddleware<S> {
    service: Arc<S>,
}

impl<S, B> Service<ServiceRequest> for DpopNoncesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, actix_web::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        req.extensions_mut().insert(NonceRenewal);
        let service = Arc::clone(&self.service);
        Box::pin(async move {
            let mut response = service.call(req).await?;
            renew_nonce(&mut response);
            Ok(response)
        })
    }
}

/// The validator of this request as an extractor: the [`Auth0`] in the app data, else the global
/// one. Without either, the request is answered 500 `internal_server_error` (and the reason is
/// logged), as protected routes are. Use it to call the token-exchange methods from a handler.
///
/// ```
/// use actix_web::{get, Responder};
/// use auth0_runtime::{require_auth, AccessToken, Auth0, ExchangeError, OnBehalfOfRequest};
///
/// #[get("/api/reports")]
/// #[require_auth]
/// async fn reports(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
///     let downstream = auth0
///         .token_on_behalf_of(OnBehalfOfRequest::new(&token, "https://reports.example.com"))
///         .await?;
///     Ok(format!("valid for {} s", downstream.expires_in))
/// }
/// ```
impl FromRequest for Auth0 {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(validator(req).cloned().ok_or_else(not_configured))
    }
}

/// The verified access token of this request, as it was sent (without the scheme), for token
/// exchange.
///
/// An extractor: it reuses the verification of `#[require_auth]`, [`RequireAuth`] or [`Claims`]
/// (or verifies the request itself, answering a refusal like [`Claims`] would), so the token it
/// hands out has always passed every check of the validator. Its `Debug` output is redacted.
///
/// ```
/// use actix_web::{get, Responder};
/// use auth0_runtime::{require_auth, AccessToken, Auth0, ConnectionTokenRequest, ExchangeError};
///
/// #[get("/api/github/repos")]
/// #[require_auth]
/// async fn repos(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
///     let github = auth0
///         .token_for_connection(ConnectionTokenRequest::new("github", &token))
///         .await?;
///     Ok(format!("granted: {}", github.scope))
/// }
/// ```
#[derive(Clone)]
pub struct AccessToken(std::sync::Arc<str>);

impl AccessToken {
    /// The token itself. Do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AccessToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl FromRequest for AccessToken {
    type Error = actix_web::Error;
    type Future = Verifying<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        verify_then(req, access_token_of)
    }
}

/// The token of the `Authorization` value kept by the verification just done (or reused): the
/// scheme's one header line, after the scheme and its spaces, exactly as the verifier reads it.
fn access_token_of(req: &HttpRequest, v: Verified) -> Result<AccessToken, actix_web::Error> {
    let token = {
        let extensions = req.extensions();
        extensions
            .get::<Done>()
            .and_then(|done| done.authorization.as_ref())
            .and_then(|value| value.to_str().ok())
            .and_then(|line| line.split_once(' '))
            .map(|(_, token)| token.trim_start_matches(' '))
            .filter(|token| !token.is_empty())
            .map(std::sync::Arc::<str>::from)
    };
    token.map(AccessToken).ok_or_else(|| {
        refuse(
            req,
            &v,
            AuthError::Internal("the verified access token is not available"),
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The middleware can be built once and shared across worker threads (`Arc`, not `Rc`).
    #[test]
    fn middleware_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        struct Inner;
        send_sync::<RequireAuth>();
        send_sync::<RequireAuthMiddleware<Inner>>();
        send_sync::<DpopNonces>();
        send_sync::<DpopNoncesMiddleware<Inner>>();
    }

    #[test]
    fn middleware_requirements_are_scope_tokens() {
        let ok = RequireAuth::new()
            .scopes(["read:messages", "a/b~c"])
            .permissions(["x"]);
        assert_eq!(ok.all_scopes.len(), 2);
        for bad in ["read messages", "say\"hi\"", "back\\slash", "café", ""] {
            let refused = std::panic::catch_unwind(|| RequireAuth::new().any_scopes([bad]));
            assert!(refused.is_err(), "{bad:?}");
        }
        assert!(std::panic::catch_unwind(|| RequireAuth::new().scopes(Vec::<String>::new())).is_err());
    }

    fn refusal(value: &str) -> String {
        let refused = std::panic::catch_unwind(|| RequireAuth::new().scopes([value]));
        match refused {
            Ok(_) => String::new(),
            Err(payload) => payload.downcast_ref::<String>().cloned().unwrap_or_default(),
        }
    }

    /// RFC 6749 allows a comma inside a scope-token; a list written as one string is refused with
    /// the list to write instead.
    #[test]
    fn a_list_in_one_value_is_refused_with_the_list_to_write() {
        assert_eq!(RequireAuth::new().scopes(["read:a,write:b"]).all_scopes.len(), 1);
        assert_eq!(
            refusal("read:a, write:b"),
            "RequireAuth::scopes: \"read:a, write:b\" looks like a comma-separated list, expected one \
             scope per value, like [\"read:a\", \"write:b\"]"
        );
        assert_eq!(
            refusal("read:a write:b"),
            "RequireAuth::scopes: \"read:a write:b\" holds several space-delimited scopes, expected one \
             scope per value, like [\"read:a\", \"write:b\"]"
        );
        assert!(refusal("café, b").contains("is not an RFC 6749 scope-token"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::claims::TokenClaims;

    /// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    fn is_scope_token(s: &str) -> bool {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    }

    fn scope_token() -> impl Strategy<Value = String> {
        prop_oneof![3 => "[a-cA-C:]{1,4}", 1 => "[!#-\\[\\]-~]{1,8}"]
    }

    /// Route requirements: mostly scope-tokens, sometimes anything (spaces, quotes, backslashes,
    /// controls, non-ASCII, the empty string).
    fn requirement() -> impl Strategy<Value = String> {
        prop_oneof![6 => scope_token(), 1 => ".{0,6}", 1 => "[ \"\\\\a]{0,3}"]
    }

    fn claims(scope: &str, permissions: &[String]) -> TokenClaims {
        let payload = serde_json::json!({
            "iss": "https://t/", "sub": "u", "aud": "a", "exp": 2_000_000_000, "iat": 1,
            "scope": scope, "permissions": permissions,
        });
        TokenClaims::from_payload(&serde_json::to_vec(&payload).unwrap()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        // Property: a route's scope and permission requirements are taken, unchanged and in order,
        // exactly when the list is non-empty and every value is an RFC 6749 scope-token, and
        // refused otherwise (by the documented panic when the app is built, never at request
        // time); and an accepted requirement agrees with a token's space-delimited `scope` (and its
        // `permissions`): all scopes pass iff each is granted, any scopes iff one is, exactly and
        // case-sensitively.

        #[test]
        fn scope_tokens_accept_exactly_scope_tokens(values in prop::collection::vec(requirement(), 0..4)) {
            let taken = std::panic::catch_unwind(|| scope_tokens("scopes", values.clone()));
            let valid = !values.is_empty() && values.iter().all(|v| is_scope_token(v));
            match taken {
                Ok(taken) => {
                    prop_assert!(valid, "{:?}", values);
                    prop_assert_eq!(&taken[..], &values[..]);
                }
                Err(_) => prop_assert!(!valid, "{:?}", values),
            }
        }

        #[test]
        fn requirements_agree_with_the_token(
            required in prop::collection::vec(scope_token(), 1..4),
            granted in prop::collection::vec(scope_token(), 0..6),
            separators in prop::collection::vec(" {1,3}", 1..8),
        ) {
            let route = RequireAuth::new().scopes(required.clone()).permissions(required.clone());
            let any = RequireAuth::new().any_scopes(required.clone());
            let mut scope = String::new();
            for (token, separator) in granted.iter().zip(separators.iter().cycle()) {
                scope.push_str(separator);
                scope.push_str(token);
            }
            let token = claims(&scope, &granted);
            let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
            let all_granted = required.iter().all(|r| granted.contains(r.as_str()));
            let one_granted = required.iter().any(|r| granted.contains(r.as_str()));
            prop_assert_eq!(authorize(&token, &route.all_scopes, &[], &[]).is_ok(), all_granted);
            prop_assert_eq!(authorize(&token, &[], &any.any_scopes, &[]).is_ok(), one_granted);
            prop_assert_eq!(authorize(&token, &[], &[], &route.permissions).is_ok(), all_granted);
            if let Err(refused) = authorize(&token, &route.all_scopes, &any.any_scopes, &[]) {
                prop_assert_eq!(refused.status(), 403);
            }
        }
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod nonce_tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use actix_web::{App, HttpResponse, test, web};

    use super::*;
    use crate::testing::{DpopKey, TestIssuer};

    static CLOCK: AtomicI64 = AtomicI64::new(0);

    fn clock() -> i64 {
        CLOCK.load(Ordering::Relaxed)
    }

    async fn hello(claims: Claims) -> HttpResponse {
        HttpResponse::Ok().body(claims.sub.clone())
    }

    /// A success whose proof carried last step's nonce carries the current one, through
    /// `DpopNonces` and through `RequireAuth`; one with the current nonce carries none.
    #[actix_web::test]
    async fn successes_carry_a_fresh_nonce_when_the_step_changes() {
        let issuer = TestIssuer::start();
        let t = (crate::clock::now() / 60) * 60 + 5;
        CLOCK.store(t, Ordering::Relaxed);
        let mut config = issuer
            .config("https://api.test")
            .dpop_nonce_secrets([vec![5u8; 32]]);
        config.clock = clock;
        let auth0 = Auth0::new(config).unwrap();
        let app = test::init_service(
            App::new()
                .app_data(auth0.clone())
                .service(web::scope("/a").wrap(DpopNonces).route("", web::get().to(hello)))
                .service(
                    web::scope("/b")
                        .wrap(RequireAuth::new())
                        .route("", web::get().to(hello)),
                ),
        )
        .await;
        let key = DpopKey::generate();
        let token = issuer
            .token()
            .audience("https://api.test")
            .bind_to(&key)
            .issued_at(t - 10)
            .expires_at(t + 3600)
            .sign();
        let old = auth0.dpop_nonce().unwrap();
        for (now, path, renewed) in [(t, "/a", false), (t + 60, "/a", true), (t + 60, "/b", true)] {
            CLOCK.store(now, Ordering::Relaxed);
            let proof = key
                .proof("GET", &format!("http://api.test{path}"))
                .access_token(&token)
                .issued_at(now)
                .nonce(&old)
                .sign();
            let request = test::TestRequest::get()
                .uri(path)
                .insert_header(("host", "api.test"))
                .insert_header(("authorization", format!("DPoP {token}")))
                .insert_header(("dpop", proof))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status(), 200, "{path} at {now}");
            let nonce = response
                .headers()
                .get("dpop-nonce")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(nonce.is_some(), renewed, "{path} at {now}");
            if let Some(nonce) = nonce {
                assert_ne!(nonce, old);
                assert_eq!(Some(nonce), auth0.dpop_nonce());
            }
        }
    }
}
