//! Cost of one verification, against a bare `jsonwebtoken` decode of the same token.
//!
//! ```text
//! cargo bench -p auth0-runtime --features testing --bench verify
//! cargo bench -p auth0-runtime --features testing,redis --bench verify   # with the Redis store
//! ```
//!
//! Every case is a routine `FnMut(iters) -> Duration` that runs `iters` verifications and returns
//! the time they took (setup such as signing DPoP proofs is done before the clock starts). Criterion
//! measures each routine through `iter_custom`; then a summary measures the same routines in
//! interleaved rounds (A, B, A, B…, median of the rounds' means, so that a load change on the
//! machine hits both sides of a ratio alike) and prints each ratio with PASS/FAIL against its
//! target. `authenticate` is driven by polling its future once with a no-op waker: it must be
//! `Ready`, which also proves that the hot path does no I/O.
//!
//! With the `redis` feature, the DPoP cases also run with a `RedisReplayStore` on a
//! `redis-server` the bench starts on loopback (skipped, with a note, when there is none), next to
//! the memory store, both driven by a Tokio runtime (the Redis answer is awaited), one request at a
//! time and 64 in flight; then end to end, over HTTP through Actix.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use auth0_runtime::testing::{Algorithm, DpopKey, TestIssuer};
use auth0_runtime::{Auth0, AuthError, Claims, RequestParts, Scheme};
use criterion::Criterion;
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://quickstart.example.com";
/// The URL of the bench request (what a DPoP proof's `htu` names).
const HOST: &str = "api.example.com";
const PATH: &str = "/api/private-scoped";
const ROLES: &str = "https://quickstart.example.com/roles";

/// Targets of issue #4.
const BEARER_MAX_RATIO: f64 = 1.15;
const CACHE_HIT_MAX_NS: f64 = 3_000.0;
const DPOP_MAX_RATIO: f64 = 1.30;

// ---------------------------------------------------------------------------------------------
// Requests and the synchronous drive of `authenticate`.

/// The request parts the verifier reads.
struct Request {
    authorization: String,
    dpop: Option<String>,
    host: String,
}

impl Request {
    fn bearer(token: &str) -> Self {
        Self {
            authorization: format!("Bearer {token}"),
            dpop: None,
            host: HOST.to_owned(),
        }
    }

    /// A DPoP request with a fresh proof (new `jti`) of `key` for `token`.
    fn dpop(token: &str, key: &DpopKey) -> Self {
        Self {
            authorization: format!("DPoP {token}"),
            dpop: Some(fresh_proof(token, key)),
            host: HOST.to_owned(),
        }
    }
}

impl RequestParts for Request {
    fn method(&self) -> &str {
        "GET"
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let value = match name {
            "authorization" => Some(self.authorization.as_bytes()),
            "dpop" => self.dpop.as_deref().map(str::as_bytes),
            _ => None,
        };
        value.into_iter()
    }

    fn scheme(&self) -> &str {
        "https"
    }

    fn host(&self) -> &str {
        &self.host
    }

    fn path(&self) -> &str {
        PATH
    }
}

/// `authenticate`, polled once: with the keys cached it must complete without awaiting.
fn authenticate<T: DeserializeOwned + 'static>(auth0: &Auth0, req: &Request) -> Result<Claims<T>, AuthError> {
    let future = pin!(auth0.authenticate::<T>(req));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("authenticate did not complete synchronously: the hot path awaited"),
    }
}

/// The claims as most handlers take them: `Claims`, custom claims as a JSON map.
fn verified(auth0: &Auth0, req: &Request) -> Claims {
    verified_as(auth0, req)
}

fn verified_as<T: DeserializeOwned + 'static>(auth0: &Auth0, req: &Request) -> Claims<T> {
    match authenticate(auth0, req) {
        Ok(claims) => claims,
        Err(error) => panic!("the bench token was refused: {error}"),
    }
}

/// A validator for `issuer`, its keys fetched once (from the loopback issuer) so that the measured
/// calls find them cached.
fn warm_validator(issuer: &TestIssuer, token_cache: bool, dpop: bool, token: &str) -> Auth0 {
    let mut config = issuer.config(AUDIENCE).dpop_enabled(dpop);
    if !token_cache {
        config = config.token_cache_entries(0);
    }
    if dpop {
        // Every proof of the bench comes from one key and one subject: as one caller, they would
        // reach the store's default share (1/8) within a run and be refused. The share is still
        // counted, so its cost is measured.
        let capacity = auth0_runtime::MemoryReplayStore::DEFAULT_CAPACITY;
        config = config.replay_store(auth0_runtime::MemoryReplayStore::new(capacity).with_share(capacity));
    }
    warm(config, token)
}

/// A validator built from `config`, its keys fetched once.
fn warm(config: auth0_runtime::Auth0Config, token: &str) -> Auth0 {
    let auth0 = Auth0::new(config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(auth0.authenticate::<Value>(&Request::bearer(token)))
        .unwrap();
    // From now on the future must be ready on its first poll.
    verified(&auth0, &Request::bearer(token));
    auth0
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// An access token shaped like Auth0's for a user who logged in to an SPA: `aud` with the API and
/// `/userinfo`, `azp`, OIDC scopes and an API scope, RBAC permissions, a namespaced custom claim.
fn auth0_token(issuer: &TestIssuer) -> auth0_runtime::testing::TokenBuilder {
    issuer
        .token()
        .subject("auth0|6523f4a1b2c3d4e5f6a7b8c9")
        .audiences([AUDIENCE.to_owned(), format!("{}userinfo", issuer.issuer())])
        .claim("azp", "k7QbT0mYH8l3rW2nXzVd5pE9uCf1gA6s")
        .scope("openid profile email read:messages")
        .permissions(["read:messages"])
        .claim(ROLES, json!(["admin", "editor"]))
}

/// The token padded with extra claims to about `bytes` bytes (never over).
fn token_of_size(issuer: &TestIssuer, bytes: usize) -> String {
    let mut fields = serde_json::Map::new();
    let mut token = auth0_token(issuer).sign();
    let mut i = 0;
    loop {
        fields.insert(format!("field_{i:03}"), json!("x".repeat(40)));
        i += 1;
        let bigger = auth0_token(issuer)
            .claim(
                "https://quickstart.example.com/profile",
                Value::Object(fields.clone()),
            )
            .sign();
        if bigger.len() > bytes {
            return token;
        }
        token = bigger;
    }
}

/// A bare `jsonwebtoken` decode of tokens from `issuer`'s key `kid`: the baseline.
struct Bare {
    key: DecodingKey,
    validation: Validation,
}

impl Bare {
    fn new(issuer: &TestIssuer, kid: &str) -> Self {
        let jwks = issuer.jwks();
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap();
        let key =
            DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer.issuer()]);
        Self { key, validation }
    }

    fn decode(&self, token: &str) -> Value {
        jsonwebtoken::decode::<Value>(token, &self.key, &self.validation)
            .unwrap()
            .claims
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn fresh_proof(token: &str, key: &DpopKey) -> String {
    key.proof("GET", &format!("https://{HOST}{PATH}"))
        .access_token(token)
        .sign()
}

/// A bare ES256 signature check of DPoP proofs of one key: the proof half of the DPoP baseline.
struct BareProof {
    key: DecodingKey,
}

impl BareProof {
    fn new(key: &DpopKey) -> Self {
        let jwk = key.public_jwk();
        let key =
            DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap()).unwrap();
        Self { key }
    }

    fn verify(&self, proof: &str) -> bool {
        let (input, signature) = proof.rsplit_once('.').unwrap();
        jsonwebtoken::crypto::verify(
            signature,
            input.as_bytes(),
            &self.key,
            jsonwebtoken::Algorithm::ES256,
        )
        .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Routines: run `iters` verifications, return the time they took.

type Routine<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

fn bare_routine<'a>(bare: &'a Bare, token: &'a str) -> Routine<'a> {
    assert_eq!(bare.decode(token)["sub"], "auth0|6523f4a1b2c3d4e5f6a7b8c9");
    Box::new(move |iters| timed(iters, || drop(black_box(bare.decode(black_box(token))))))
}

fn auth0_routine<'a>(auth0: &'a Auth0, token: &str) -> Routine<'a> {
    let req = Request::bearer(token);
    assert!(verified(auth0, &req).has_scope("read:messages"));
    Box::new(move |iters| timed(iters, || drop(black_box(verified(auth0, black_box(&req))))))
}

/// `authenticate::<IgnoredAny>`: the same verification without a copy of the custom claims.
fn auth0_ignored_routine<'a>(auth0: &'a Auth0, token: &str) -> Routine<'a> {
    let req = Request::bearer(token);
    assert!(verified_as::<IgnoredAny>(auth0, &req).has_scope("read:messages"));
    Box::new(move |iters| {
        timed(iters, || {
            drop(black_box(verified_as::<IgnoredAny>(auth0, black_box(&req))));
        })
    })
}

/// DPoP requests, each with a fresh proof signed before the clock starts.
fn dpop_routine<'a>(auth0: &'a Auth0, token: &'a str, key: &'a DpopKey) -> Routine<'a> {
    assert_eq!(verified(auth0, &Request::dpop(token, key)).scheme(), Scheme::Dpop);
    Box::new(move |iters| {
        let requests: Vec<Request> = (0..iters).map(|_| Request::dpop(token, key)).collect();
        let start = Instant::now();
        for req in &requests {
            drop(black_box(verified(auth0, black_box(req))));
        }
        start.elapsed()
    })
}

/// The DPoP baseline: a bare RS256 decode of the token and a bare ES256 check of each fresh proof.
fn bare_dpop_routine<'a>(
    bare: &'a Bare,
    bare_proof: &'a BareProof,
    token: &'a str,
    key: &'a DpopKey,
) -> Routine<'a> {
    assert!(bare_proof.verify(&fresh_proof(token, key)));
    Box::new(move |iters| {
        let proofs: Vec<String> = (0..iters).map(|_| fresh_proof(token, key)).collect();
        let start = Instant::now();
        for proof in &proofs {
            drop(black_box(bare.decode(black_box(token))));
            assert!(bare_proof.verify(black_box(proof)));
        }
        start.elapsed()
    })
}

fn scopes_routine<'a>(auth0: &'a Auth0, token: &str, required: Vec<String>) -> Routine<'a> {
    let req = Request::bearer(token);
    assert!(verified(auth0, &req).has_all_scopes(&required));
    Box::new(move |iters| {
        timed(iters, || {
            let claims = verified(auth0, black_box(&req));
            assert!(claims.has_all_scopes(black_box(&required)));
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The summary: interleaved rounds, median of the rounds' means.

const ROUNDS: usize = 9;
const ROUND_TIME: Duration = Duration::from_millis(150);

/// Whether this run benchmarks (`cargo bench`): not under `cargo test --benches`, `--test`,
/// `--list` or `--profile-time`, where the summary is skipped.
fn summarizing() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

static SUMMARY: AtomicBool = AtomicBool::new(false);

/// Nanoseconds per call of each routine, measured in interleaved rounds (NaN when not
/// summarizing).
fn measure(routines: &mut [&mut Routine<'_>]) -> Vec<f64> {
    if !SUMMARY.load(Ordering::Relaxed) {
        return vec![f64::NAN; routines.len()];
    }
    // Size one round per routine from a short calibration.
    let iters: Vec<u64> = routines
        .iter_mut()
        .map(|r| {
            let mut n = 1;
            loop {
                let t = r(n);
                if t >= Duration::from_millis(10) {
                    let per = t.as_secs_f64() / n as f64;
                    return ((ROUND_TIME.as_secs_f64() / per) as u64).max(1);
                }
                n *= 2;
            }
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(ROUNDS); routines.len()];
    for _ in 0..ROUNDS {
        for (i, r) in routines.iter_mut().enumerate() {
            let t = r(iters[i]);
            samples[i].push(t.as_nanos() as f64 / iters[i] as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn us(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

// ---------------------------------------------------------------------------------------------

fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
        .configure_from_args()
}

fn bench(c: &mut Criterion, name: &str, routine: &mut Routine<'_>) {
    c.bench_function(name, |b| b.iter_custom(&mut *routine));
}

fn main() {
    let mut c = criterion();
    SUMMARY.store(summarizing(), Ordering::Relaxed);
    let mut report = Vec::<String>::new();

    // --- Bearer, per call -------------------------------------------------------------------
    let issuer = TestIssuer::start();
    let token = auth0_token(&issuer).sign();
    let bare = Bare::new(&issuer, &kid_of(&token));
    let uncached = warm_validator(&issuer, false, false, &token);
    let cached = warm_validator(&issuer, true, false, &token);

    let mut bare_r = bare_routine(&bare, &token);
    let mut off_r = auth0_routine(&uncached, &token);
    let mut hit_r = auth0_routine(&cached, &token);
    bench(&mut c, "bearer/jsonwebtoken_decode", &mut bare_r);
    bench(&mut c, "bearer/authenticate_cache_off", &mut off_r);
    bench(&mut c, "bearer/authenticate_cache_hit", &mut hit_r);
    let m = measure(&mut [&mut bare_r, &mut off_r, &mut hit_r]);
    let ratio = m[1] / m[0];
    report.push(format!(
        "Bearer, {} B token, cache off: authenticate {} vs jsonwebtoken::decode {}: {ratio:.3}x (target <= {BEARER_MAX_RATIO}x) {}",
        token.len(),
        us(m[1]),
        us(m[0]),
        verdict(ratio <= BEARER_MAX_RATIO),
    ));
    report.push(format!(
        "Bearer, cache hit (same token): {} (target <= {}) {}",
        us(m[2]),
        us(CACHE_HIT_MAX_NS),
        verdict(m[2] <= CACHE_HIT_MAX_NS),
    ));

    // --- DPoP, per call ----------------------------------------------------------------------
    let key = DpopKey::generate();
    let bound = auth0_token(&issuer).bind_to(&key).sign();
    let bare_proof = BareProof::new(&key);
    let dpop_off = warm_validator(&issuer, false, true, &token);
    let dpop_on = warm_validator(&issuer, true, true, &token);
    let mut bare_r = bare_dpop_routine(&bare, &bare_proof, &bound, &key);
    let mut off_r = dpop_routine(&dpop_off, &bound, &key);
    let mut on_r = dpop_routine(&dpop_on, &bound, &key);
    bench(&mut c, "dpop/jsonwebtoken_rs256_plus_es256", &mut bare_r);
    bench(&mut c, "dpop/authenticate_cache_off", &mut off_r);
    bench(&mut c, "dpop/authenticate_cache_on", &mut on_r);
    let m = measure(&mut [&mut bare_r, &mut off_r, &mut on_r]);
    let ratio = m[1] / m[0];
    report.push(format!(
        "DPoP (token + ES256 proof + replay check), cache off: authenticate {} vs bare RS256 decode + ES256 verify {}: {ratio:.3}x (target <= {DPOP_MAX_RATIO}x) {}",
        us(m[1]),
        us(m[0]),
        verdict(ratio <= DPOP_MAX_RATIO),
    ));
    report.push(format!(
        "DPoP, token cache on (token verified once, a fresh proof each call): {} ({:.3}x the baseline)",
        us(m[2]),
        m[2] / m[0],
    ));

    // --- DPoP with a shared store (Redis), per call and end to end -----------------------------
    #[cfg(feature = "redis")]
    shared::bench_stores(&mut c, &issuer, &token, &mut report);
    #[cfg(not(feature = "redis"))]
    report.push(
        "DPoP with the Redis replay store: not measured (run with --features testing,redis)".to_owned(),
    );

    // --- Growth: token size -----------------------------------------------------------------
    let mut table = vec![
        "Token size (cache off) | token bytes | authenticate | jsonwebtoken::decode | ratio | authenticate::<IgnoredAny> | ratio | cache hit"
            .to_owned(),
    ];
    for kib in [1, 4, 12] {
        let token = token_of_size(&issuer, kib * 1024);
        let mut bare_r = bare_routine(&bare, &token);
        let mut off_r = auth0_routine(&uncached, &token);
        let mut ignored_r = auth0_ignored_routine(&uncached, &token);
        let mut hit_r = auth0_routine(&cached, &token);
        bench(&mut c, &format!("size/{kib}KiB/jsonwebtoken_decode"), &mut bare_r);
        bench(
            &mut c,
            &format!("size/{kib}KiB/authenticate_cache_off"),
            &mut off_r,
        );
        let m = measure(&mut [&mut bare_r, &mut off_r, &mut ignored_r, &mut hit_r]);
        table.push(format!(
            "{kib} KiB | {} | {} | {} | {:.3}x | {} | {:.3}x | {}",
            token.len(),
            us(m[1]),
            us(m[0]),
            m[1] / m[0],
            us(m[2]),
            m[2] / m[0],
            us(m[3])
        ));
    }
    report.push(table.join("\n"));

    // --- Growth: keys in the set ------------------------------------------------------------
    let mut table =
        vec!["Keys in the set (cache off) | authenticate | jsonwebtoken::decode | ratio".to_owned()];
    let many = TestIssuer::start();
    let mut keys = 1;
    for n in [1, 10, 50] {
        while keys < n {
            many.add_key(Algorithm::RS256);
            keys += 1;
        }
        // Signed with the newest key.
        let token = auth0_token(&many).sign();
        let bare = Bare::new(&many, &kid_of(&token));
        let auth0 = warm_validator(&many, false, false, &token);
        let mut bare_r = bare_routine(&bare, &token);
        let mut off_r = auth0_routine(&auth0, &token);
        bench(&mut c, &format!("keys/{n}/authenticate_cache_off"), &mut off_r);
        let m = measure(&mut [&mut bare_r, &mut off_r]);
        table.push(format!("{n} | {} | {} | {:.3}x", us(m[1]), us(m[0]), m[1] / m[0]));
    }
    report.push(table.join("\n"));

    // --- Growth: scopes checked -------------------------------------------------------------
    let api_scopes: Vec<String> = (0..50).map(|i| format!("api:scope_{i:02}")).collect();
    let scope = format!("openid profile email read:messages {}", api_scopes.join(" "));
    let token = auth0_token(&issuer).scope(scope).sign();
    let mut table = vec![format!(
        "Scopes checked (token with 54 scopes, {} B) | authenticate + has_all_scopes, cache off | cache hit",
        token.len()
    )];
    for n in [1, 10, 50] {
        let required = api_scopes[api_scopes.len() - n..].to_vec();
        let mut off_r = scopes_routine(&uncached, &token, required.clone());
        let mut hit_r = scopes_routine(&cached, &token, required);
        bench(&mut c, &format!("scopes/{n}/cache_off"), &mut off_r);
        bench(&mut c, &format!("scopes/{n}/cache_hit"), &mut hit_r);
        let m = measure(&mut [&mut off_r, &mut hit_r]);
        table.push(format!("{n} | {} | {}", us(m[0]), us(m[1])));
    }
    report.push(table.join("\n"));

    c.final_summary();
    if !SUMMARY.load(Ordering::Relaxed) {
        return;
    }
    println!("\n==== Summary (median of {ROUNDS} interleaved rounds of ~{ROUND_TIME:?} per case) ====");
    for line in &report {
        println!("{line}\n");
    }
}

// ---------------------------------------------------------------------------------------------
// DPoP with the memory store and with the Redis store.

#[cfg(feature = "redis")]
mod shared {
    use std::sync::mpsc;

    use actix_web::{App, HttpServer, web};
    use auth0_runtime::testing::RedisServer;
    use auth0_runtime::{MemoryReplayStore, RedisReplayStore};
    use tokio::runtime::Runtime;
    use tokio::task::JoinSet;

    use super::*;

    /// Requests in flight in the throughput cases.
    const IN_FLIGHT: usize = 64;

    /// `iters` DPoP requests through `authenticate`, awaited on `runtime`: one at a time
    /// (`in_flight` = 1: the latency of each), or `in_flight` at once (the throughput).
    fn awaited_routine<'a>(
        runtime: &'a Runtime,
        auth0: &'a Auth0,
        token: &'a str,
        key: &'a DpopKey,
        in_flight: usize,
    ) -> Routine<'a> {
        let first = runtime.block_on(auth0.authenticate::<Value>(&Request::dpop(token, key)));
        assert_eq!(first.unwrap().scheme(), Scheme::Dpop);
        Box::new(move |iters| {
            let requests: Vec<Request> = (0..iters).map(|_| Request::dpop(token, key)).collect();
            let start = Instant::now();
            runtime.block_on(async {
                if in_flight == 1 {
                    for req in &requests {
                        drop(black_box(auth0.authenticate::<Value>(req).await.unwrap()));
                    }
                    return;
                }
                let mut tasks = JoinSet::new();
                for req in requests {
                    if tasks.len() >= in_flight {
                        tasks.join_next().await.unwrap().unwrap();
                    }
                    let auth0 = auth0.clone();
                    tasks.spawn(async move {
                        drop(black_box(auth0.authenticate::<Value>(&req).await.unwrap()));
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
            });
            start.elapsed()
        })
    }

    /// An Actix server (one worker) with `auth0` in its app data and one protected route;
    /// stopped when the handle is dropped.
    struct Api {
        url: String,
        handle: actix_web::dev::ServerHandle,
    }

    impl Drop for Api {
        fn drop(&mut self) {
            drop(self.handle.stop(false));
        }
    }

    async fn private(claims: auth0_runtime::Claims) -> String {
        claims.sub.clone()
    }

    fn serve(auth0: Auth0) -> Api {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(auth0.clone())
                        .route(PATH, web::get().to(private))
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        Api {
            url,
            handle: rx.recv().unwrap(),
        }
    }

    /// `iters` sequential DPoP requests over HTTP/1.1 (keep-alive) to `api`, each with a fresh
    /// proof signed before the clock starts; the client (reqwest) shares the machine.
    fn http_routine<'a>(
        runtime: &'a Runtime,
        http: &'a reqwest::Client,
        api: &'a Api,
        token: &'a str,
        key: &'a DpopKey,
    ) -> Routine<'a> {
        let send = move |proof: String| {
            http.get(&api.url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
        };
        let first = runtime.block_on(send(fresh_proof(token, key))).unwrap();
        assert_eq!(first.status(), 200);
        Box::new(move |iters| {
            let proofs: Vec<String> = (0..iters).map(|_| fresh_proof(token, key)).collect();
            let start = Instant::now();
            runtime.block_on(async {
                for proof in proofs {
                    let response = send(proof).await.unwrap();
                    assert_eq!(response.status(), 200);
                    drop(black_box(response.bytes().await.unwrap()));
                }
            });
            start.elapsed()
        })
    }

    pub(super) fn bench_stores(
        c: &mut Criterion,
        issuer: &TestIssuer,
        token: &str,
        report: &mut Vec<String>,
    ) {
        let server = match RedisServer::try_start_with(&[]) {
            Ok(server) => server,
            Err(error) => {
                let note = format!("DPoP with the Redis replay store: skipped ({error})");
                println!("note: {note}");
                report.push(note);
                return;
            }
        };
        let mut connection = redis::Client::open(server.url())
            .and_then(|client| client.get_connection())
            .unwrap();
        let empty = used_memory(&mut connection);
        let key = DpopKey::generate();
        let bound = auth0_token(issuer).bind_to(&key).sign();
        // Proofs name https://api.example.com, whichever address the request reached.
        let config = || {
            issuer
                .config(AUDIENCE)
                .public_origins([format!("https://{HOST}")])
        };
        // One key and one subject send every proof here: lift the per-caller share (1/8) and make
        // room for every proof of the run, as Redis has.
        let records = 4_000_000;
        let memory = warm(
            config().replay_store(MemoryReplayStore::new(records).with_share(records)),
            token,
        );
        let store = RedisReplayStore::new(&server.url()).unwrap();
        let redis = warm(config().replay_store(store), token);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();

        let mut memory_one = awaited_routine(&runtime, &memory, &bound, &key, 1);
        let mut redis_one = awaited_routine(&runtime, &redis, &bound, &key, 1);
        let mut memory_many = awaited_routine(&runtime, &memory, &bound, &key, IN_FLIGHT);
        let mut redis_many = awaited_routine(&runtime, &redis, &bound, &key, IN_FLIGHT);
        bench(c, "dpop_store/memory/one_at_a_time", &mut memory_one);
        bench(c, "dpop_store/redis/one_at_a_time", &mut redis_one);
        bench(c, "dpop_store/memory/64_in_flight", &mut memory_many);
        bench(c, "dpop_store/redis/64_in_flight", &mut redis_many);
        let m = measure(&mut [&mut memory_one, &mut redis_one, &mut memory_many, &mut redis_many]);
        report.push(format!(
            "DPoP replay store, authenticate awaited one request at a time (latency): memory {} vs Redis on loopback {} (+{} a request, {:.2}x)",
            us(m[0]),
            us(m[1]),
            us(m[1] - m[0]),
            m[1] / m[0],
        ));
        report.push(format!(
            "DPoP replay store, {IN_FLIGHT} requests in flight (time per request at full throughput): memory {} vs Redis {} (+{} a request, {:.2}x)",
            us(m[2]),
            us(m[3]),
            us(m[3] - m[2]),
            m[3] / m[2],
        ));
        drop((memory_one, redis_one, memory_many, redis_many));

        // End to end: Actix, HTTP/1.1 on loopback, one client sending one request at a time.
        let http = reqwest::Client::new();
        let memory_api = serve(memory.clone());
        let redis_api = serve(redis.clone());
        let mut memory_http = http_routine(&runtime, &http, &memory_api, &bound, &key);
        let mut redis_http = http_routine(&runtime, &http, &redis_api, &bound, &key);
        bench(c, "dpop_store/memory/http", &mut memory_http);
        bench(c, "dpop_store/redis/http", &mut redis_http);
        let m = measure(&mut [&mut memory_http, &mut redis_http]);
        report.push(format!(
            "DPoP request end to end (Actix, HTTP/1.1 keep-alive, loopback, sequential): memory {} vs Redis {} (+{} a request, {:.2}x)",
            us(m[0]),
            us(m[1]),
            us(m[1] - m[0]),
            m[1] / m[0],
        ));

        // What the records cost Redis.
        let records: u64 = redis::cmd("DBSIZE").query(&mut connection).unwrap();
        let used = used_memory(&mut connection);
        if records > 10_000 {
            report.push(format!(
                "Redis memory: {records} records, used_memory {:.1} MiB ({:.1} MiB empty): about {} bytes a record",
                used as f64 / 1_048_576.0,
                empty as f64 / 1_048_576.0,
                used.saturating_sub(empty) / records,
            ));
        }
    }

    /// Redis's `used_memory`, bytes.
    fn used_memory(connection: &mut redis::Connection) -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(connection).unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}
