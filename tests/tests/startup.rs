//! The first minutes of an API: the warm-up (keys cached before the port is bound, inside a running
//! runtime too, bounded when the tenant is down or slow), readiness on a health route, the
//! messages of a bad configuration (the value shown, never a secret), `AUTH0_CA_FILE`, and the
//! once-only error of an app that never configured a validator.
//!
//! Nothing here calls `init`: the not-configured test needs the process without a global
//! validator.

#![allow(clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::test as actix_test;
use actix_web::{HttpResponse, get, web};
use auth0_runtime::testing::{Fault, TestIssuer};
use auth0_runtime::{
    Auth0, Auth0Config, Claims, ConfigError, HealthCheck, KeysState, ProofUse, Readiness, ReplayCheck,
    ReplayOutcome, ReplayStore, StoreState, require_auth,
};
use common::{AUDIENCE, Answer, Api};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

// --- A subscriber that keeps every event -------------------------------------------------------

#[derive(Debug, Clone)]
struct Event {
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

impl Event {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Event>>>);

impl Capture {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn at(&self, level: tracing::Level) -> Vec<Event> {
        self.events().into_iter().filter(|e| e.level == level).collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let level = *event.metadata().level();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event { level, fields });
    }
}

/// A global subscriber that takes every event (and keeps none), set by every test first.
///
/// Without it, a callsite first reached on a thread without a subscriber, while only one test's
/// capturing subscriber exists, caches "never interested" for every thread (tracing-core asks only
/// the current thread's dispatcher then), and the capturing test misses its event.
fn global_subscriber() {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
}

/// Runs `work` on this thread with a capturing subscriber.
fn watched<T>(work: impl FnOnce() -> T) -> (T, Capture) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let out = tracing::subscriber::with_default(subscriber, || {
        // Callsite interest is cached process-wide (see observability.rs's `watched`).
        tracing::callsite::rebuild_interest_cache();
        work()
    });
    (out, capture)
}

fn counts(issuer: &TestIssuer) -> (usize, usize) {
    (issuer.discovery_fetches(), issuer.jwks_fetches())
}

fn validator(config: Auth0Config) -> Auth0 {
    Auth0::new(config).unwrap_or_else(|e| panic!("{e}"))
}

// --- Warm-up -----------------------------------------------------------------------------------

#[tokio::test]
async fn with_the_issuer_up_the_keys_are_cached_before_the_first_request() {
    global_subscriber();
    let api = Api::start_with(|c| c.warm_up(true));
    // Built, not yet asked anything: discovery and key set already fetched.
    assert_eq!(counts(&api.issuer), (1, 1));
    let token = api.token().sign();
    let answer = api.bearer("/above", &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The first request fetched nothing.
    assert_eq!(counts(&api.issuer), (1, 1));
}

#[test]
fn without_warm_up_nothing_is_fetched_at_startup() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let _auth0 = validator(issuer.config(AUDIENCE));
    assert_eq!(counts(&issuer), (0, 0));
}

#[test]
fn with_the_issuer_down_startup_warns_and_requests_fetch_as_usual() {
    global_subscriber();
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::Down);
    let started = Instant::now();
    let (auth0, seen) = watched(|| {
        validator(
            issuer
                .config(AUDIENCE)
                .warm_up(true)
                .http_timeout(Duration::from_secs(2)),
        )
    });
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let warnings = seen.at(tracing::Level::WARN);
    assert!(
        warnings
            .iter()
            .any(|w| w.field("issuer") == issuer.issuer() && w.field("message").contains("warm-up")),
        "{warnings:?}"
    );
    // No back-off was recorded: once the tenant is back, the first request fetches and passes.
    issuer.set_fault(Fault::None);
    let token = issuer.token().audience(AUDIENCE).sign();
    assert_eq!(status(auth0, &token), 200);
    assert_eq!(counts(&issuer), (1, 1));
}

#[test]
fn with_the_issuer_slow_startup_waits_at_most_the_http_timeout() {
    global_subscriber();
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::Slow(Duration::from_secs(6)));
    let started = Instant::now();
    let (auth0, seen) = watched(|| {
        validator(
            issuer
                .config(AUDIENCE)
                .warm_up(true)
                .http_timeout(Duration::from_secs(1)),
        )
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2_500),
        "{took:?}"
    );
    assert!(
        seen.at(tracing::Level::WARN)
            .iter()
            .any(|w| w.field("message").starts_with("warm-up:")),
        "{:?}",
        seen.events()
    );
    issuer.set_fault(Fault::None);
    let token = issuer.token().audience(AUDIENCE).sign();
    assert_eq!(status(auth0, &token), 200);
}

/// `#[actix_web::main]` runs `main` on a current-thread runtime: the warm-up must neither
/// `block_on` there (a panic) nor wait for a task spawned there (a deadlock).
#[actix_web::test]
async fn the_warm_up_works_inside_a_running_actix_runtime() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let auth0 = validator(issuer.config(AUDIENCE).warm_up(true));
    assert_eq!(counts(&issuer), (1, 1));
    let app = actix_test::init_service(actix_web::App::new().app_data(auth0.clone()).service(private)).await;
    let token = issuer.token().audience(AUDIENCE).sign();
    let request = actix_test::TestRequest::get()
        .uri("/private")
        .insert_header(("authorization", format!("Bearer {token}")));
    assert_eq!(
        actix_test::call_service(&app, request.to_request())
            .await
            .status(),
        200
    );
    assert_eq!(counts(&issuer), (1, 1));

    // The validator's own client works on this runtime afterwards: a rotated key is fetched.
    let rotated = issuer.rotate_key();
    let token = issuer.token().audience(AUDIENCE).kid(rotated).sign();
    let request = actix_test::TestRequest::get()
        .uri("/private")
        .insert_header(("authorization", format!("Bearer {token}")));
    assert_eq!(
        actix_test::call_service(&app, request.to_request())
            .await
            .status(),
        200
    );
    assert_eq!(counts(&issuer), (1, 2));
}

/// With a caller-supplied client, the warm-up uses it on its own short-lived runtime; none of its
/// connections may stay pooled past that runtime, or the next fetch through it would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_with_your_own_client_leaves_it_usable() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let auth0 = validator(
        issuer
            .config(AUDIENCE)
            .http_client(issuer.http_client())
            .warm_up(true),
    );
    assert_eq!(counts(&issuer), (1, 1));
    // The next fetch goes through the same client, on this runtime: a rotated key.
    let rotated = issuer.rotate_key();
    let token = issuer.token().audience(AUDIENCE).kid(rotated).sign();
    let verified = auth0
        .authenticate::<serde_json::Value>(&common::Parts(vec![("authorization", format!("Bearer {token}"))]))
        .await;
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(counts(&issuer), (1, 2));
}

#[tokio::test]
async fn warm_up_in_code_fetches_on_the_callers_runtime_and_reports() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let auth0 = validator(issuer.config(AUDIENCE));
    let readiness = auth0.warm_up().await;
    assert!(readiness.is_ready(), "{readiness:?}");
    assert_eq!(readiness.issuers()[0].keys(), KeysState::Fresh);
    assert_eq!(counts(&issuer), (1, 1));

    let down = TestIssuer::start();
    down.set_fault(Fault::Slow(Duration::from_secs(6)));
    let auth0 = validator(down.config(AUDIENCE).http_timeout(Duration::from_secs(1)));
    let started = Instant::now();
    let readiness = auth0.warm_up().await;
    assert!(started.elapsed() < Duration::from_millis(2_500));
    assert!(!readiness.is_ready());
    assert_eq!(readiness.issuers()[0].keys(), KeysState::Missing);
}

// --- Readiness ---------------------------------------------------------------------------------

#[get("/health")]
async fn health(auth0: Auth0) -> Readiness {
    auth0.ready().await
}

#[get("/private")]
#[require_auth]
async fn private(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().body(claims.sub.clone())
}

fn serve(auth0: Auth0) -> (String, common::Server) {
    common::serve(move |config: &mut web::ServiceConfig| {
        config.app_data(auth0.clone()).service(health).service(private);
    })
}

async fn get(url: &str, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::read(request.send().await.expect("request")).await
}

#[tokio::test]
async fn readiness_before_and_after_the_keys_are_cached() {
    global_subscriber();
    let issuer = TestIssuer::start();
    // The tenant is down at first: nothing can be cached.
    issuer.set_fault(Fault::ServerError);
    let (base, _server) = serve(validator(issuer.config(AUDIENCE)));
    let health_url = format!("{base}/health");
    let before = get(&health_url, None).await;
    assert_eq!(before.status, 503, "{before:?}");
    assert_eq!(before.body["ready"], false);
    assert_eq!(before.body["issuers"][0]["issuer"], issuer.issuer());
    assert_eq!(before.body["issuers"][0]["keys"], "missing");
    assert_eq!(before.body["issuers"][0]["key_count"], 0);
    assert_eq!(before.body["replay_store"], "ready");

    // Back, the keys are fetched by a request, and the health route says so.
    issuer.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past the probe's back-off
    let token = issuer.token().audience(AUDIENCE).sign();
    assert_eq!(get(&format!("{base}/private"), Some(&token)).await.status, 200);
    let after = get(&health_url, None).await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.body["ready"], true);
    assert_eq!(after.body["issuers"][0]["keys"], "fresh");
    assert_eq!(after.body["issuers"][0]["key_count"], 1);
}

/// An instance that is not ready gets no traffic: its probes must fetch the keys themselves.
#[tokio::test]
async fn probes_alone_make_an_instance_ready() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let (base, _server) = serve(validator(issuer.config(AUDIENCE)));
    let health_url = format!("{base}/health");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(&health_url, None).await;
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts(&issuer), (1, 1));
}

#[tokio::test]
async fn probes_on_a_down_tenant_back_off() {
    global_subscriber();
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::ServerError);
    let auth0 = validator(issuer.config(AUDIENCE));
    // Well within the first back-off (1 s).
    for _ in 0..6 {
        let readiness = auth0.ready().await;
        assert!(!readiness.is_ready());
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(counts(&issuer), (1, 0), "one attempt per back-off period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_keys_are_still_ready_and_say_so() {
    global_subscriber();
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let auth0 = validator(issuer.config(AUDIENCE));
    assert!(auth0.warm_up().await.is_ready());
    issuer.set_fault(Fault::Down);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let readiness = auth0.ready().await;
    let keys = &readiness.issuers()[0];
    assert_eq!(keys.keys(), KeysState::Stale, "{readiness:?}");
    assert_eq!(keys.key_count(), 1);
    // Tokens are still verified with the last good keys: ready, and the state tells why to look.
    assert!(readiness.is_ready());
    let json = serde_json::to_value(&readiness).expect("json");
    assert_eq!(json["issuers"][0]["keys"], "stale");
}

/// A store whose health check answers `health`.
struct Store(fn() -> HealthCheck);

impl ReplayStore for Store {
    fn check_and_record(&self, _: &ProofUse<'_>) -> ReplayCheck {
        ReplayOutcome::Unavailable.into()
    }
    fn health(&self) -> HealthCheck {
        (self.0)()
    }
}

#[tokio::test]
async fn an_unreachable_replay_store_is_not_ready() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let broken = || HealthCheck::unhealthy("connection refused (redis://:hunter2@cache:6379)");
    let auth0 = validator(issuer.config(AUDIENCE).replay_store(Store(broken)));
    let (readiness, seen) = {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        // Warmed, then asked again: the store's warning is rate-limited, the answer is not.
        assert!(!auth0.warm_up().await.is_ready());
        (auth0.ready().await, capture)
    };
    assert_eq!(readiness.issuers()[0].keys(), KeysState::Fresh);
    assert_eq!(readiness.replay_store(), StoreState::Unavailable);
    assert!(!readiness.is_ready());
    // The reason is logged, never shown on the health route.
    let json = serde_json::to_string(&readiness).expect("json");
    assert!(!json.contains("hunter2") && !json.contains("refused"), "{json}");
    assert!(
        seen.at(tracing::Level::WARN)
            .iter()
            .any(|w| w.field("reason").contains("connection refused")),
        "{:?}",
        seen.events()
    );

    // A store that never answers is bounded by the HTTP timeout.
    let hanging = || HealthCheck::pending(std::future::pending());
    let auth0 = validator(
        issuer
            .config(AUDIENCE)
            .replay_store(Store(hanging))
            .http_timeout(Duration::from_secs(1)),
    );
    let started = Instant::now();
    assert_eq!(auth0.ready().await.replay_store(), StoreState::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Without DPoP the store is never asked.
    let auth0 = validator(
        issuer
            .config(AUDIENCE)
            .dpop_enabled(false)
            .replay_store(Store(broken)),
    );
    assert_eq!(auth0.ready().await.replay_store(), StoreState::NotUsed);

    // The default store is healthy.
    let auth0 = validator(issuer.config(AUDIENCE));
    assert_eq!(auth0.ready().await.replay_store(), StoreState::Ready);
}

/// An environment: (variable, value) pairs.
type Vars<'a> = &'a [(&'a str, &'a str)];

// --- Configuration messages ----------------------------------------------------------------------

fn refusal(vars: &[(&str, &str)]) -> String {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let with_defaults = |name: &str| {
        let default = match name {
            "AUTH0_DOMAIN" if !vars.contains_key("AUTH0_DOMAINS") => Some("tenant.us.auth0.com"),
            "AUTH0_AUDIENCE" => Some(AUDIENCE),
            _ => None,
        };
        vars.get(name).cloned().or(default.map(str::to_owned))
    };
    match Auth0Config::from_lookup(with_defaults).and_then(Auth0::new) {
        Ok(_) => panic!("accepted: {vars:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_bad_value_is_shown_with_its_fix() {
    global_subscriber();
    // (environment, how the message starts, what else it says)
    let cases: &[(Vars<'_>, &str, &[&str])] = &[
        (
            &[("AUTH0_DPOP_ENABLED", "maybe")],
            "AUTH0_DPOP_ENABLED must be true or false",
            &["\"maybe\""],
        ),
        (
            &[("AUTH0_WARM_UP", "sometimes")],
            "AUTH0_WARM_UP must be true or false",
            &["\"sometimes\""],
        ),
        (
            &[("AUTH0_LEEWAY", "5s")],
            "AUTH0_LEEWAY must be a whole number of seconds",
            &["like 5", "\"5s\""],
        ),
        (
            &[("AUTH0_LEEWAY", "600")],
            "AUTH0_LEEWAY must be at most 300 seconds, not 600",
            &["expired"],
        ),
        (
            &[("AUTH0_DOMAIN", "http://tenant.us.auth0.com")],
            "AUTH0_DOMAIN must be a host like tenant.us.auth0.com, not a URL with http://",
            &[
                "set it to \"tenant.us.auth0.com\"",
                "not \"http://tenant.us.auth0.com\"",
            ],
        ),
        (
            &[("AUTH0_DOMAIN", "https://Tenant.us.auth0.com/api/v2/")],
            "AUTH0_DOMAIN must be a bare host",
            &[
                "set it to \"tenant.us.auth0.com\"",
                "\"https://Tenant.us.auth0.com/api/v2/\"",
            ],
        ),
        (
            &[("AUTH0_DOMAINS", "a.example.com,b.example.com:99999")],
            "AUTH0_DOMAINS has an invalid port",
            &["\"b.example.com:99999\""],
        ),
        (
            &[("AUTH0_CACHE_MAX_ENTRIES", "1")],
            "AUTH0_CACHE_MAX_ENTRIES must be at least 2, like 100, not 1",
            &[],
        ),
        (
            &[("AUTH0_TOKEN_CACHE_ENTRIES", "lots")],
            "AUTH0_TOKEN_CACHE_ENTRIES must be a whole number",
            &["\"lots\""],
        ),
        (
            &[
                ("AUTH0_TRUST_PROXY", "true"),
                ("AUTH0_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33"),
            ],
            "AUTH0_TRUSTED_PROXIES must list addresses or CIDR blocks",
            &["\"10.0.0.0/33\""],
        ),
        (
            &[("AUTH0_ORGANIZATIONS", "org_abc123,acme")],
            "AUTH0_ORGANIZATIONS must list organization ids",
            &["\"acme\""],
        ),
        (
            &[("AUTH0_PUBLIC_ORIGINS", "https://api.example.com/v1")],
            "AUTH0_PUBLIC_ORIGINS must list origins",
            &["\"https://api.example.com/v1\""],
        ),
        (
            &[("AUTH0_REPLAY_STORE_CAPACITY", "0")],
            "AUTH0_REPLAY_STORE_CAPACITY must be between 1 and 50000000",
            &["not 0"],
        ),
    ];
    for (vars, start, says) in cases {
        let message = refusal(vars);
        assert!(message.starts_with(start), "{message}");
        for needle in *says {
            assert!(message.contains(needle), "{needle:?} not in: {message}");
        }
    }
}

#[test]
fn a_secret_is_never_shown() {
    global_subscriber();
    let dir = temp_dir("secrets");
    let key = dir.join("broken-key.pem");
    let key_body = "MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkGp3+hunter2";
    std::fs::write(
        &key,
        format!("-----BEGIN PRIVATE KEY-----\n{key_body}\n-----END PRIVATE KEY-----\n"),
    )
    .expect("write");
    let key = key.to_string_lossy().into_owned();
    // (environment, the secret, how the message starts)
    let cases: &[(Vars<'_>, &str, &str)] = &[
        (
            &[("AUTH0_DOMAIN", "admin:hunter2@tenant.us.auth0.com")],
            "hunter2",
            "AUTH0_DOMAIN must not contain credentials",
        ),
        (
            &[("AUTH0_DOMAIN", "http://admin:hunter2@tenant.us.auth0.com/x")],
            "hunter2",
            "AUTH0_DOMAIN must not contain credentials",
        ),
        (
            &[("AUTH0_DOMAINS", "a.example.com,https://me:p/ss@b.example.com")],
            "p/ss",
            "AUTH0_DOMAINS must not contain credentials",
        ),
        (
            &[("AUTH0_DPOP_NONCE_SECRET", "c2VjcmV0LXRvby1zaG9ydA==")],
            "c2VjcmV0LXRvby1zaG9ydA",
            "AUTH0_DPOP_NONCE_SECRET has a secret of 16 bytes",
        ),
        (
            &[("AUTH0_DPOP_NONCE_SECRET", "hunter2 is not base64!")],
            "hunter2",
            "AUTH0_DPOP_NONCE_SECRET must be standard base64",
        ),
        (
            &[("AUTH0_CLIENT_SECRET", "s3cr3t-hunter2")],
            "hunter2",
            "AUTH0_CLIENT_ID is not set",
        ),
        (
            &[
                ("AUTH0_CLIENT_ID", "client"),
                ("AUTH0_CLIENT_ASSERTION_KEY", &key),
            ],
            "hunter2",
            "AUTH0_CLIENT_ASSERTION_KEY",
        ),
    ];
    for (vars, secret, start) in cases {
        let message = refusal(vars);
        assert!(message.starts_with(start), "{message}");
        assert!(!message.contains(secret), "a secret was shown: {message}");
    }
    // The credentials case still says what to set.
    let message = refusal(&[("AUTH0_DOMAIN", "admin:hunter2@Tenant.us.auth0.com")]);
    assert!(
        message.contains("set it to the bare host \"tenant.us.auth0.com\""),
        "{message}"
    );
}

// --- AUTH0_CA_FILE -----------------------------------------------------------------------------

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("auth0-startup-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn from_env(vars: &[(&str, &str)]) -> Result<Auth0, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Auth0::new(Auth0Config::from_lookup(|name| vars.get(name).cloned())?)
}

#[test]
fn auth0_ca_file_is_trusted_next_to_ssl_cert_file() {
    global_subscriber();
    let issuer = TestIssuer::start();
    let other = TestIssuer::start();
    let dir = temp_dir("ca");
    let ca = issuer.write_ca_file(&dir).expect("CA file");
    let unrelated = other.write_ca_file(&dir).expect("CA file");
    let (ca, unrelated) = (ca.to_string_lossy(), unrelated.to_string_lossy());
    let domain = issuer.domain();
    let token = issuer.token().audience(AUDIENCE).sign();
    let base = [("AUTH0_DOMAIN", domain.as_str()), ("AUTH0_AUDIENCE", AUDIENCE)];

    let trusting = from_env(&[base[0], base[1], ("AUTH0_CA_FILE", &ca)]).expect("config");
    assert_eq!(status(trusting, &token), 200);
    // A system-wide SSL_CERT_FILE for other CAs does not shadow it.
    let both = from_env(&[
        base[0],
        base[1],
        ("SSL_CERT_FILE", &unrelated),
        ("AUTH0_CA_FILE", &ca),
    ])
    .expect("config");
    assert_eq!(status(both, &token), 200);
    // Without it the issuer's certificate is not trusted: no keys, 503.
    let untrusting = from_env(&[base[0], base[1], ("SSL_CERT_FILE", &unrelated)]).expect("config");
    assert_eq!(status(untrusting, &token), 503);
}

#[test]
fn a_bad_auth0_ca_file_is_a_startup_error_that_names_it() {
    global_subscriber();
    let dir = temp_dir("bad-ca");
    let write = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        path.to_string_lossy().into_owned()
    };
    let cases = [
        (
            write("text.pem", "this is not a certificate\n"),
            "holds no PEM certificate",
        ),
        (write("empty.pem", ""), "holds no PEM certificate"),
        (
            write(
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
            ),
            "holds no PEM certificate",
        ),
        (
            write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"),
            "is not a well-formed PEM file",
        ),
        (
            write(
                "not-x509.pem",
                "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
            ),
            "whose certificates cannot be used",
        ),
        (
            dir.join("missing.pem").to_string_lossy().into_owned(),
            "which cannot be read",
        ),
    ];
    for (path, problem) in &cases {
        let message = from_env(&[
            ("AUTH0_DOMAIN", "tenant.us.auth0.com"),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("AUTH0_CA_FILE", path),
        ])
        .expect_err(path)
        .to_string();
        assert!(
            message.starts_with(&format!("AUTH0_CA_FILE names {path}")),
            "{message}"
        );
        assert!(message.contains(problem), "{problem:?} not in: {message}");
        assert!(message.contains("-----BEGIN CERTIFICATE-----"), "{message}");
    }
}

// --- Not configured ------------------------------------------------------------------------------

#[test]
fn an_unconfigured_app_says_what_to_call_once_and_loudly() {
    global_subscriber();
    let ((), seen) = watched(|| {
        actix_web::rt::System::new().block_on(async {
            let app = actix_test::init_service(actix_web::App::new().service(private)).await;
            for _ in 0..3 {
                let request = actix_test::TestRequest::get().uri("/private").to_request();
                assert_eq!(actix_test::call_service(&app, request).await.status(), 500);
            }
        });
    });
    let errors = seen.at(tracing::Level::ERROR);
    assert_eq!(errors.len(), 1, "{:?}", seen.events());
    let message = errors[0].field("message");
    assert!(
        message.contains("auth0_runtime::init_from_env()") && message.contains("app_data"),
        "{message}"
    );
    let quiet = seen.at(tracing::Level::DEBUG);
    assert_eq!(
        quiet
            .iter()
            .filter(|e| e.field("message").contains("no Auth0 validator is configured"))
            .count(),
        2,
        "{:?}",
        seen.events()
    );
}

// --- Helpers -------------------------------------------------------------------------------------

/// The status of `GET /private` with `token`, through `auth0` (actix's test service).
fn status(auth0: Auth0, token: &str) -> u16 {
    actix_web::rt::System::new().block_on(async {
        let app = actix_test::init_service(actix_web::App::new().app_data(auth0).service(private)).await;
        let request = actix_test::TestRequest::get()
            .uri("/private")
            .insert_header(("authorization", format!("Bearer {token}")));
        actix_test::call_service(&app, request.to_request())
            .await
            .status()
            .as_u16()
    })
}
