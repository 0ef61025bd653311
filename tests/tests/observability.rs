//! What an operator sees: the `auth0.verify` span, one event per refusal with its precise reason
//! (and never a token), key-set fetch events with the error's whole chain, and the metrics.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, web};
use auth0_runtime::testing::{DpopKey, Fault, TestIssuer};
use auth0_runtime::{Auth0, Auth0Config, AuthError, Claims, DpopNonces, RequireAuth};
use common::Parts;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const AUDIENCE: &str = "https://api.example.com";

fn bearer(token: &str) -> Parts {
    Parts(vec![("authorization", format!("Bearer {token}"))])
}

/// Every span (with its recorded fields) and event a verification produced.
#[derive(Debug, Default, Clone)]
struct Seen {
    spans: Vec<(String, BTreeMap<String, String>)>,
    events: Vec<(tracing::Level, BTreeMap<String, String>)>,
    /// `span.field` for each field recorded again on a span that had it: a fmt subscriber prints
    /// every record, so the field would show twice.
    recorded_twice: Vec<String>,
    /// The target of every span and event.
    targets: Vec<String>,
}

impl Seen {
    fn text(&self) -> String {
        format!("{self:?}")
    }

    fn events_with(&self, field: &str, needle: &str) -> Vec<&BTreeMap<String, String>> {
        self.events
            .iter()
            .map(|(_, f)| f)
            .filter(|f| f.get(field).is_some_and(|v| v.contains(needle)))
            .collect()
    }

    /// Everything is under the one target the guide tells operators to filter on
    /// (`RUST_LOG=auth0_runtime=debug`), whichever crate or module emitted it.
    fn assert_one_target(&self) {
        let ours: Vec<_> = self.targets.iter().filter(|t| t.starts_with("auth0")).collect();
        assert!(ours.len() >= 2, "{:?}", self.targets);
        assert!(ours.iter().all(|t| *t == "auth0_runtime"), "{ours:?}");
    }

    fn verify_span(&self) -> &BTreeMap<String, String> {
        let spans: Vec<_> = self.spans.iter().filter(|(n, _)| n == "auth0.verify").collect();
        assert_eq!(spans.len(), 1, "{self:?}");
        assert!(self.recorded_twice.is_empty(), "{:?}", self.recorded_twice);
        &spans[0].1
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Span fields by span id, filled as they are recorded.
struct Open(BTreeMap<String, String>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let target = attrs.metadata().target().to_owned();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .targets
            .push(target);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Open(fields));
        }
    }
    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            let mut fields = BTreeMap::new();
            values.record(&mut Fields(&mut fields));
            for (name, value) in fields {
                if open.0.insert(name.clone(), value).is_some() {
                    let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                    seen.recorded_twice.push(format!("{}.{name}", span.name()));
                }
            }
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.targets.push(event.metadata().target().to_owned());
        seen.events.push((*event.metadata().level(), fields));
    }
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<Open>()
                .map(|o| o.0.clone())
                .unwrap_or_default();
            let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            seen.spans.push((span.name().to_owned(), fields));
        }
    }
}

/// Runs `work` on a current-thread runtime with a capturing subscriber; returns what it saw.
fn watched<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> Seen {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    tracing::subscriber::with_default(subscriber, || {
        // Callsite interest is cached process-wide: a callsite first hit by a parallel test's
        // thread, with no subscriber, may still be cached as uninteresting. Recompute it with
        // this subscriber registered, or its events can be missed on a loaded machine.
        tracing::callsite::rebuild_interest_cache();
        runtime.block_on(work())
    });
    capture.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn validator(issuer: &TestIssuer, adjust: impl FnOnce(Auth0Config) -> Auth0Config) -> Auth0 {
    Auth0::new(adjust(issuer.config(AUDIENCE))).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_verification_is_one_span_with_its_outcome_and_no_token() {
    let issuer = TestIssuer::start();
    let auth0 = validator(&issuer, |c| c);
    let token = issuer.token().audience(AUDIENCE).subject("auth0|alice").sign();
    let seen = watched(|| async {
        assert!(
            auth0
                .authenticate::<serde_json::Value>(&bearer(&token))
                .await
                .is_ok()
        );
    });
    // The first verification fetches the key and verifies again: the issuer and key id are
    // still recorded once (`verify_span` checks that no field is recorded twice).
    let span = seen.verify_span();
    assert_eq!(span.get("scheme").map(String::as_str), Some("bearer"), "{span:?}");
    assert_eq!(span.get("outcome").map(String::as_str), Some("success"));
    assert_eq!(span.get("error").map(String::as_str), Some("none"));
    assert_eq!(span.get("issuer"), Some(&issuer.issuer()));
    assert_eq!(span.get("kid").map(String::as_str), Some("key-1"));
    assert!(span.contains_key("latency_us"), "{span:?}");
    assert!(!span.contains_key("sub"), "the subject is opt-in: {span:?}");
    // The key set's first fetch is an event with its URL, duration and outcome.
    let fetches = seen.events_with("document", "key_set");
    assert!(fetches.iter().any(|f| f.get("outcome").map(String::as_str) == Some("success") && f.contains_key("duration_ms")));
    // Key-set events name their issuer, like discovery events.
    assert!(
        fetches.iter().all(|f| f.get("issuer") == Some(&issuer.issuer())),
        "{fetches:?}"
    );
    assert!(!seen.text().contains(&token), "a token was logged");

    // With the opt-in, the subject is recorded.
    let auth0 = validator(&issuer, |c| c.log_subject(true));
    let seen = watched(|| async {
        assert!(
            auth0
                .authenticate::<serde_json::Value>(&bearer(&token))
                .await
                .is_ok()
        );
    });
    assert_eq!(
        seen.verify_span().get("sub").map(String::as_str),
        Some("auth0|alice")
    );
}

#[test]
fn each_refusal_is_one_event_with_its_precise_reason() {
    let issuer = TestIssuer::start();
    let auth0 = validator(&issuer, |c| c);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let id_token = issuer
        .token()
        .audience("my-spa-client-id")
        .claim("azp", "my-spa-client-id")
        .claim("nonce", "n-0S6_WzA2Mj")
        .sign();
    // The shape Auth0 answers a client that asked without `audience`: alg dir, no encrypted key.
    let jwe = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            issuer.token().audience("https://other.example.com").sign(),
            r#"aud ["https://other.example.com"], this API accepts ["https://api.example.com"]"#,
        ),
        (
            "ID token",
            id_token,
            "looks like an ID token: send the access token",
        ),
        ("encrypted token", jwe.to_owned(), "encrypted token (JWE)"),
        (
            "expired",
            issuer.token().audience(AUDIENCE).expires_at(now - 90).sign(),
            "s in the past",
        ),
        (
            "clock skew",
            issuer.token().audience(AUDIENCE).not_before(now + 120).sign(),
            "clock is behind",
        ),
        (
            "unknown kid",
            issuer.token().audience(AUDIENCE).kid("nope").sign(),
            "is not in the key set of",
        ),
        (
            "untrusted issuer",
            issuer
                .token()
                .audience(AUDIENCE)
                .issuer("https://evil.example.com/")
                .sign(),
            "trusted:",
        ),
    ];
    for (name, token, needle) in &cases {
        let seen = watched(|| async {
            let refused = auth0.authenticate::<serde_json::Value>(&bearer(token)).await;
            assert!(
                matches!(refused, Err(AuthError::InvalidToken(_))),
                "{name}: {refused:?}"
            );
        });
        let refusals = seen.events_with("error", "invalid_token");
        assert_eq!(refusals.len(), 1, "{name}: one event per refusal: {seen:?}");
        let reason = refusals[0].get("reason").cloned().unwrap_or_default();
        assert!(reason.contains(needle), "{name}: {reason}");
        assert_eq!(
            seen.verify_span().get("outcome").map(String::as_str),
            Some("failure")
        );
        assert!(
            !seen.text().contains(token.as_str()),
            "{name}: a token was logged"
        );
    }

    // A token without the Bearer prefix.
    let token = issuer.token().audience(AUDIENCE).sign();
    let seen = watched(|| async {
        let request = Parts(vec![("authorization", token.clone())]);
        let refused = auth0.authenticate::<serde_json::Value>(&request).await;
        assert_eq!(refused.err(), Some(AuthError::MissingCredentials));
    });
    let events = seen.events_with("reason", "no scheme: send `Authorization: Bearer <token>`");
    assert_eq!(events.len(), 1, "{seen:?}");
    assert_eq!(
        seen.verify_span().get("outcome").map(String::as_str),
        Some("none")
    );

    // A DPoP proof for another URL names both URLs, never the proof.
    let key = DpopKey::generate();
    let bound = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let proof = key
        .proof("GET", "https://api.example.com/y")
        .access_token(&bound)
        .sign();
    let seen = watched(|| async {
        let request = Parts(vec![
            ("authorization", format!("DPoP {bound}")),
            ("dpop", proof.clone()),
        ]);
        assert!(auth0.authenticate::<serde_json::Value>(&request).await.is_err());
    });
    let reason = seen.events_with("error", "invalid_dpop_proof")[0]["reason"].clone();
    assert!(
        reason.contains("https://api.example.com/y") && reason.contains("https://api.example.com/x"),
        "{reason}"
    );
    assert!(!seen.text().contains(&proof) && !seen.text().contains(&bound));
}

#[test]
fn an_unreachable_key_set_warns_with_the_whole_error_chain() {
    let issuer = TestIssuer::start();
    // No trust in the issuer's CA: the TLS handshake fails, and the warning must say why.
    let auth0 = Auth0::new(
        Auth0Config::new(issuer.domain(), AUDIENCE).http_timeout(std::time::Duration::from_secs(2)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let token = issuer.token().audience(AUDIENCE).sign();
    let seen = watched(|| async {
        let refused = auth0.authenticate::<serde_json::Value>(&bearer(&token)).await;
        assert!(matches!(refused, Err(AuthError::Unavailable(_))), "{refused:?}");
    });
    let warnings: Vec<_> = seen
        .events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::WARN)
        .map(|(_, f)| f)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|f| f.get("error").is_some_and(|e| e.contains("UnknownIssuer"))),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|f| f.get("error").map(String::as_str) == Some("temporarily_unavailable")),
        "the refusal itself is a warning: {warnings:?}"
    );
    // The fetch failures were once emitted under their module's path (`auth0_core::keys::…`),
    // which the documented filter hides.
    seen.assert_one_target();

    issuer.set_fault(Fault::None);
}

/// A recorder that counts, by metric name and labels.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<String, Arc<AtomicU64>>>>);

impl Counts {
    fn cell(&self, key: &metrics::Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(name).or_default())
    }

    fn get(&self, name: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

struct Cell(Arc<AtomicU64>);

impl metrics::CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl metrics::HistogramFn for Cell {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl metrics::Recorder for Counts {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(Cell(self.cell(key))))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::from_arc(Arc::new(Cell(self.cell(key))))
    }
}

#[test]
fn metrics_count_outcomes_fetches_and_cache_hits_with_fixed_labels() {
    let issuer = TestIssuer::start();
    let auth0 = validator(&issuer, |c| c);
    let counts = Counts::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let token = issuer.token().audience(AUDIENCE).sign();
    let key = DpopKey::generate();
    let bound = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let proof = key
        .proof("GET", "https://api.example.com/x")
        .access_token(&bound)
        .sign();
    let dpop = Parts(vec![("authorization", format!("DPoP {bound}")), ("dpop", proof)]);
    metrics::with_local_recorder(&counts, || {
        runtime.block_on(async {
            let check = |r: Result<auth0_runtime::Claims<serde_json::Value>, AuthError>| {
                r.map(|_| ()).map_err(|e| e.code())
            };
            assert_eq!(check(auth0.authenticate(&bearer(&token)).await), Ok(()));
            assert_eq!(check(auth0.authenticate(&bearer(&token)).await), Ok(()));
            assert_eq!(
                check(auth0.authenticate(&Parts(vec![])).await),
                Err("unauthorized")
            );
            let wrong = issuer.token().audience("https://other").sign();
            assert_eq!(
                check(auth0.authenticate(&bearer(&wrong)).await),
                Err("invalid_token")
            );
            assert_eq!(check(auth0.authenticate(&dpop).await), Ok(()));
            assert_eq!(check(auth0.authenticate(&dpop).await), Err("invalid_dpop_proof"));
        });
    });
    let outcome = |scheme: &str, result: &str, error: &str| {
        counts.get(&format!(
            "auth0.authentication.verifications{{error={error},result={result},scheme={scheme}}}"
        ))
    };
    assert_eq!(outcome("bearer", "success", "none"), 2, "{:?}", counts.names());
    assert_eq!(outcome("none", "none", "unauthorized"), 1);
    assert_eq!(outcome("bearer", "failure", "invalid_token"), 1);
    assert_eq!(outcome("dpop", "success", "none"), 1);
    assert_eq!(outcome("dpop", "failure", "invalid_dpop_proof"), 1);
    assert_eq!(
        counts.get("auth0.authentication.duration{error=none,result=success,scheme=bearer}"),
        2
    );
    assert_eq!(
        counts.get("auth0.key_set.fetches{document=discovery,outcome=success}"),
        1
    );
    assert_eq!(
        counts.get("auth0.key_set.fetches{document=key_set,outcome=success}"),
        1
    );
    assert_eq!(
        counts.get("auth0.token_cache.lookups{result=hit}"),
        2,
        "{:?}",
        counts.names()
    );
    assert_eq!(counts.get("auth0.token_cache.lookups{result=miss}"), 3);
    assert_eq!(counts.get("auth0.dpop.replays_refused{}"), 1);
    // Every label value comes from a fixed set: nothing of a request shows in a name.
    for name in counts.names() {
        assert!(!name.contains("example") && !name.contains("key-1"), "{name}");
    }

    // A failed fetch is counted as such.
    let down = TestIssuer::start();
    down.set_fault(Fault::ServerError);
    let auth0 = validator(&down, |c| c);
    let token = down.token().audience(AUDIENCE).sign();
    metrics::with_local_recorder(&counts, || {
        runtime.block_on(async {
            assert!(
                auth0
                    .authenticate::<serde_json::Value>(&bearer(&token))
                    .await
                    .is_err()
            );
        });
    });
    assert_eq!(
        counts.get("auth0.key_set.fetches{document=discovery,outcome=failure}"),
        1
    );
    assert_eq!(outcome("bearer", "failure", "temporarily_unavailable"), 1);
}

async fn hello(claims: Claims) -> HttpResponse {
    HttpResponse::Ok().body(claims.sub.clone())
}

/// Two successful DPoP requests to `$app`'s `/x`, each with a fresh proof carrying the current
/// nonce when nonces are on. (A macro: the request type is actix-http's, not named here.)
macro_rules! two_dpop_successes {
    ($app:expr, $auth0:expr, $key:expr, $token:expr) => {
        for _ in 0..2 {
            let mut proof = $key.proof("GET", "http://api.example.com/x").access_token($token);
            if let Some(nonce) = $auth0.dpop_nonce() {
                proof = proof.nonce(&nonce);
            }
            let request = actix_test::TestRequest::get()
                .uri("/x")
                .insert_header(("host", "api.example.com"))
                .insert_header(("authorization", format!("DPoP {}", $token)))
                .insert_header(("dpop", proof.sign()))
                .to_request();
            let response = actix_test::call_service($app, request).await;
            assert_eq!(response.status(), 200);
        }
    };
}

/// The warnings that nonces are on and nothing renews them.
fn renewal_warnings(seen: &Seen) -> Vec<&BTreeMap<String, String>> {
    seen.events
        .iter()
        .filter(|(level, fields)| {
            *level == tracing::Level::WARN
                && fields
                    .get("message")
                    .is_some_and(|m| m.contains("no DpopNonces middleware"))
        })
        .map(|(_, fields)| fields)
        .collect()
}

/// DPoP server nonces on and an app that neither `DpopNonces` nor `RequireAuth` wraps: its
/// successful answers can never carry the next nonce. The first successful DPoP request says so,
/// once per validator, with the fix; a wrapped app, or one without nonces, hears nothing.
#[test]
fn nonces_without_their_middleware_warn_once() {
    let issuer = TestIssuer::start();
    let key = DpopKey::generate();
    let token = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let with_nonces = |c: Auth0Config| c.dpop_nonce_secrets([vec![9u8; 32]]);

    let auth0 = validator(&issuer, with_nonces);
    let seen = watched(|| async {
        let app = actix_test::init_service(
            App::new()
                .app_data(auth0.clone())
                .route("/x", web::get().to(hello)),
        )
        .await;
        two_dpop_successes!(&app, &auth0, key, &token);
        two_dpop_successes!(&app, &auth0, key, &token);
    });
    let warnings = renewal_warnings(&seen);
    assert_eq!(warnings.len(), 1, "{seen:?}");
    let message = &warnings[0]["message"];
    assert!(
        message.contains("App::new().wrap(auth0_runtime::DpopNonces)"),
        "{message}"
    );
    assert!(message.contains("AUTH0_DPOP_NONCE_SECRET"), "{message}");
    assert_eq!(warnings[0].get("route").map(String::as_str), Some("/x"));

    // Another validator has its own warning.
    let other = validator(&issuer, with_nonces);
    let seen = watched(|| async {
        let app = actix_test::init_service(
            App::new()
                .app_data(other.clone())
                .route("/x", web::get().to(hello)),
        )
        .await;
        two_dpop_successes!(&app, &other, key, &token);
    });
    assert_eq!(renewal_warnings(&seen).len(), 1, "{seen:?}");

    let auth0 = validator(&issuer, with_nonces);
    let seen = watched(|| async {
        let app = actix_test::init_service(
            App::new()
                .app_data(auth0.clone())
                .wrap(DpopNonces)
                .route("/x", web::get().to(hello)),
        )
        .await;
        two_dpop_successes!(&app, &auth0, key, &token);
        let app = actix_test::init_service(
            App::new().app_data(auth0.clone()).service(
                web::resource("/x")
                    .wrap(RequireAuth::new())
                    .route(web::get().to(hello)),
            ),
        )
        .await;
        two_dpop_successes!(&app, &auth0, key, &token);
    });
    assert!(renewal_warnings(&seen).is_empty(), "{seen:?}");

    let without_nonces = validator(&issuer, |c| c);
    let seen = watched(|| async {
        let app = actix_test::init_service(
            App::new()
                .app_data(without_nonces.clone())
                .route("/x", web::get().to(hello)),
        )
        .await;
        two_dpop_successes!(&app, &without_nonces, key, &token);
    });
    assert!(renewal_warnings(&seen).is_empty(), "{seen:?}");
}

/// Trusted proxies configured, and an adapter that cannot tell the peer (axum served without
/// `ConnectInfo`): the forwarded headers are ignored, so the proxy's DPoP requests are refused.
/// The first one says why, once per validator, with the fix; a known peer hears nothing.
#[test]
fn trusted_proxies_with_an_unknown_peer_warn_once() {
    let issuer = TestIssuer::start();
    let key = DpopKey::generate();
    let token = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let proxied = || {
        let proof = key
            .proof("GET", "https://public.example.com/x")
            .access_token(&token)
            .sign();
        Parts(vec![
            ("authorization", format!("DPoP {token}")),
            ("dpop", proof),
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-host", "public.example.com".to_owned()),
        ])
    };
    let auth0 = validator(&issuer, |c| c.trust_proxy(true).trusted_proxies(["10.0.0.0/8"]));
    let seen = watched(|| async {
        for _ in 0..2 {
            let refused = auth0.authenticate::<serde_json::Value>(&proxied()).await;
            assert_eq!(
                refused.map(|_| ()).map_err(|e| e.code()),
                Err("invalid_dpop_proof")
            );
        }
    });
    let warnings = seen.events_with("message", "AUTH0_TRUSTED_PROXIES");
    assert_eq!(warnings.len(), 1, "{seen:?}");
    assert!(
        warnings[0]["message"].contains("into_make_service_with_connect_info"),
        "{warnings:?}"
    );

    // Every peer trusted (no list): nothing to tell, and the proof passes.
    let auth0 = validator(&issuer, |c| c.trust_proxy(true));
    let seen = watched(|| async {
        let passed = auth0.authenticate::<serde_json::Value>(&proxied()).await;
        assert!(passed.is_ok(), "{passed:?}");
    });
    assert!(
        seen.events_with("message", "AUTH0_TRUSTED_PROXIES").is_empty(),
        "{seen:?}"
    );
}
