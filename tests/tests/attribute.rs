//! `#[require_auth]` over real HTTP in the shapes that ordinary code gives it: under other
//! attribute macros, with an RAII extractor bound to `_`, as a `fn` returning a future and as an
//! associated function.

// The helpers below are test code too.
#![allow(clippy::expect_used)]

mod common;

use std::cell::Cell;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, Responder, get, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Claims, require_auth};
use common::{AUDIENCE, Answer, Server, serve};

/// A protected API with the routes below, and its issuer.
fn start() -> (String, Server, TestIssuer) {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("valid configuration");
    let (base, server) = serve(move |cfg| {
        cfg.app_data(auth0.clone())
            .service(instrumented_below)
            .service(instrumented_above)
            .service(instrumented_plain)
            .service(permit)
            .route("/future/{id}", web::get().to(future))
            .route("/method/{id}", web::get().to(Api::method));
    });
    (base, server, issuer)
}

async fn get(url: String, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::read(request.send().await.expect("request")).await
}

// Attribute macros that read the parameters, in either order.

#[get("/instrumented/below/{id}")]
#[require_auth]
#[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
async fn instrumented_below(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("below {} {id}", claims.sub)
}

#[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
#[get("/instrumented/above/{id}")]
#[require_auth(scopes = "read:messages")]
async fn instrumented_above(claims: Claims, id: web::Path<u32>) -> impl Responder {
    format!("above {} {id}", claims.sub)
}

#[require_auth]
#[tracing::instrument]
#[get("/instrumented/plain/{id}")]
async fn instrumented_plain(id: web::Path<u32>) -> impl Responder {
    format!("plain {id}")
}

/// A span's recorded fields: name and value.
type SpanFields = Vec<(String, String)>;

/// The spans opened in this process: name and recorded fields.
static SPANS: Mutex<Vec<(String, SpanFields)>> = Mutex::new(Vec::new());

/// A subscriber that records every span's fields, to see what `#[instrument]` captured.
struct Recorder(AtomicU64);

struct Fields(SpanFields);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(Vec::new());
        span.record(&mut fields);
        if let Ok(mut spans) = SPANS.lock() {
            spans.push((span.metadata().name().to_owned(), fields.0));
        }
        tracing::span::Id::from_u64(self.0.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn record_spans() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Recorder(AtomicU64::new(1))).expect("first subscriber");
    });
}

/// The fields of the last span named `name`.
fn span(name: &str) -> SpanFields {
    let spans = SPANS.lock().expect("spans");
    let found = spans.iter().rev().find(|(n, _)| n == name);
    found.map(|(_, fields)| fields.clone()).unwrap_or_default()
}

/// `#[tracing::instrument]` written below `#[require_auth]` used to see the rewritten signature:
/// `skip(claims)` did not compile, and a plain `#[instrument]` recorded only the hidden guard.
#[tokio::test]
async fn attribute_macros_see_the_handler_as_written() {
    record_spans();
    let (base, _server, issuer) = start();
    let token = issuer.token().audience(AUDIENCE).subject("auth0|alice").sign();
    let scoped = issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|bob")
        .scope("read:messages")
        .sign();

    let answer = get(format!("{base}/instrumented/below/7"), Some(&token)).await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, "below auth0|alice 7")
    );
    let below = span("instrumented_below");
    assert!(
        below.contains(&("sub".to_owned(), "auth0|alice".to_owned())),
        "{below:?}"
    );
    assert!(
        below
            .iter()
            .any(|(name, value)| name == "id" && value.contains('7')),
        "{below:?}"
    );

    get(format!("{base}/instrumented/above/8"), Some(&token))
        .await
        .assert_refused(403, "insufficient_scope");
    let answer = get(format!("{base}/instrumented/above/8"), Some(&scoped)).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, "above auth0|bob 8"));
    let above = span("instrumented_above");
    assert!(
        above.contains(&("sub".to_owned(), "auth0|bob".to_owned())),
        "{above:?}"
    );

    get(format!("{base}/instrumented/plain/9"), None)
        .await
        .assert_refused(401, "unauthorized");
    let answer = get(format!("{base}/instrumented/plain/9"), Some(&token)).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, "plain 9"));
    let plain = span("instrumented_plain");
    let names: Vec<&str> = plain.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["id"], "{plain:?}");
}

// An RAII extractor bound to `_`.

static PERMITS_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether this request's permit is still alive, readable from the request.
#[derive(Clone)]
struct Alive(Rc<Cell<bool>>);

/// An extractor whose value matters only while it lives (a semaphore permit, a lock guard).
struct Permit(Rc<Cell<bool>>);

impl FromRequest for Permit {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let alive = Rc::new(Cell::new(true));
        req.extensions_mut().insert(Alive(Rc::clone(&alive)));
        ready(Ok(Permit(alive)))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.set(false);
        PERMITS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[get("/permit")]
#[require_auth]
async fn permit(_: Permit, req: HttpRequest, claims: Claims) -> impl Responder {
    actix_web::rt::task::yield_now().await;
    let alive = req.extensions().get::<Alive>().map(|alive| alive.0.get());
    format!("{} permit alive: {alive:?}", claims.sub)
}

/// A `_` parameter used to be dropped before the body ran (all parameters were destructured in one
/// `let (a, _, ..) = ..;`): it now lives as long as it would without the attribute.
#[tokio::test]
async fn a_wildcard_extractor_lives_until_the_body_ends() {
    let (base, _server, issuer) = start();
    let token = issuer.token().audience(AUDIENCE).subject("auth0|carol").sign();
    let before = PERMITS_DROPPED.load(Ordering::SeqCst);
    let answer = get(format!("{base}/permit"), Some(&token)).await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, "auth0|carol permit alive: Some(true)")
    );
    assert_eq!(
        PERMITS_DROPPED.load(Ordering::SeqCst),
        before + 1,
        "dropped once the body ended"
    );
}

// A `fn` returning a future, and an associated function.

#[require_auth(scopes = "read:messages")]
fn future(claims: Claims, id: web::Path<u32>) -> impl Future<Output = String> + 'static {
    async move { format!("future {} {id}", claims.sub) }
}

struct Api;

impl Api {
    #[require_auth]
    async fn method(claims: Claims, id: web::Path<u32>) -> impl Responder {
        format!("method {} {id}", claims.sub)
    }
}

#[tokio::test]
async fn future_returning_and_associated_handlers() {
    let (base, _server, issuer) = start();
    let token = issuer.token().audience(AUDIENCE).subject("auth0|dan").sign();
    let scoped = issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|dan")
        .scope("read:messages")
        .sign();

    get(format!("{base}/future/1"), Some(&token))
        .await
        .assert_refused(403, "insufficient_scope");
    let answer = get(format!("{base}/future/1"), Some(&scoped)).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, "future auth0|dan 1"));

    get(format!("{base}/method/2"), None)
        .await
        .assert_refused(401, "unauthorized");
    let answer = get(format!("{base}/method/2"), Some(&token)).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, "method auth0|dan 2"));
}
