//! The DPoP replay store shared through a real Redis (issue 9): several instances of one API,
//! concurrent replays, record expiry, Redis going down and coming back, the failure policy, and
//! configuration from the environment alone.
//!
//! Every test starts its own `redis-server` on a free loopback port (`RedisServer`); without the
//! program the tests fail and say to run `scripts/test.sh`, which installs it. Nothing is mocked.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers fail loudly")]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, Responder, get};
use auth0_runtime::testing::{DpopKey, RedisServer, TestIssuer};
use auth0_runtime::{Auth0, Auth0Config, Claims, ConfigError, RedisReplayStore, require_auth};
use common::{AUDIENCE, Answer, Server, now, serve};

/// The API's public origin: every instance checks proofs against it, as behind a load balancer,
/// so one proof is valid at every instance.
const ORIGIN: &str = "https://api.example.com";
const PATH: &str = "/api/private";
const PASSWORD: &str = "s3cret-Redis-pw";

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("{} {}", claims.sub, claims.scheme()))
}

/// One instance of the API: an Actix server of its own with a validator of its own.
struct Instance {
    base: String,
    _server: Server,
}

impl Instance {
    fn start(config: Auth0Config) -> Self {
        let auth0 = Auth0::new(config.public_origins([ORIGIN])).expect("valid configuration");
        let (base, server) = serve(move |cfg| {
            cfg.app_data(auth0.clone()).service(private);
        });
        Self {
            base,
            _server: server,
        }
    }
}

/// Anything a request can be sent to: an in-process instance or an app process.
trait Target {
    fn base(&self) -> &str;
}

impl Target for Instance {
    fn base(&self) -> &str {
        &self.base
    }
}

/// A DPoP client: a key, a token bound to it, and a plain Bearer token.
struct Client {
    key: DpopKey,
    token: String,
    bearer: String,
    http: reqwest::Client,
}

impl Client {
    fn new(issuer: &TestIssuer) -> Self {
        let key = DpopKey::generate();
        Self {
            token: issuer.token().audience(AUDIENCE).bind_to(&key).sign(),
            bearer: issuer.token().audience(AUDIENCE).sign(),
            key,
            http: reqwest::Client::new(),
        }
    }

    /// A fresh proof (new `jti`) for `GET {ORIGIN}{PATH}`.
    fn proof(&self) -> String {
        self.key
            .proof("GET", &format!("{ORIGIN}{PATH}"))
            .access_token(&self.token)
            .sign()
    }

    async fn dpop(&self, at: &impl Target, proof: &str) -> Answer {
        let request = self
            .http
            .get(format!("{}{PATH}", at.base()))
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof);
        Answer::read(request.send().await.expect("request")).await
    }

    async fn bearer(&self, at: &impl Target) -> Answer {
        let request = self
            .http
            .get(format!("{}{PATH}", at.base()))
            .bearer_auth(&self.bearer);
        Answer::read(request.send().await.expect("request")).await
    }
}

/// A store on `redis` with a 1 s timeout: the machine running the tests may be busy, and a check
/// that waited too long is a 503 that a test would misread. (The timeout itself is tested in
/// `a_hung_redis_costs_one_timeout_per_request`, and the default one by the process test.)
fn store(redis: &RedisServer) -> RedisReplayStore {
    RedisReplayStore::builder(redis.url())
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a valid Redis URL")
}

/// A plain connection to database `db` of `redis`, to look at what the store wrote.
fn inspect(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connect to redis-server")
}

fn keys(connection: &mut redis::Connection) -> Vec<String> {
    redis::cmd("KEYS").arg("*").query(connection).expect("KEYS")
}

/// Polls `check` every 50 ms until it holds; how long that took. Panics after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[track_caller]
fn assert_unavailable(answer: &Answer) {
    answer.assert_refused(503, "temporarily_unavailable");
    assert_eq!(
        answer.description(),
        Some("the DPoP proof cannot be checked for reuse right now, try again later"),
        "{answer:?}"
    );
    assert!(answer.retry_after.is_some(), "{answer:?}");
}

#[track_caller]
fn assert_replay(answer: &Answer) {
    answer.assert_refused(401, "invalid_dpop_proof");
    assert_eq!(
        answer.description(),
        Some("the DPoP proof has already been used"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_proof_accepted_by_one_instance_is_refused_by_the_others() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let a = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let b = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let client = Client::new(&issuer);

    let proof = client.proof();
    let first = client.dpop(&a, &proof).await;
    assert_eq!((first.status, first.text.as_str()), (200, "user|123 DPoP"));
    assert_replay(&client.dpop(&b, &proof).await);
    assert_replay(&client.dpop(&a, &proof).await);
    for at in [&b, &a, &b] {
        assert_eq!(client.dpop(at, &client.proof()).await.status, 200);
    }

    // The gap this closes: with a store per instance, the captured proof passes again elsewhere.
    let c = Instance::start(issuer.config(AUDIENCE));
    let d = Instance::start(issuer.config(AUDIENCE));
    let proof = client.proof();
    assert_eq!(client.dpop(&c, &proof).await.status, 200);
    assert_eq!(client.dpop(&d, &proof).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_a_proof_at_two_instances_pass_once() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let a = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let b = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let client = Client::new(&issuer);
    assert_eq!(client.dpop(&a, &client.proof()).await.status, 200);
    assert_eq!(client.dpop(&b, &client.proof()).await.status, 200);

    for round in 0..20 {
        let proof = client.proof();
        let copies = (0..8).map(|i| {
            let at = if i % 2 == 0 { &a } else { &b };
            client.dpop(at, &proof)
        });
        let answers = futures_util::future::join_all(copies).await;
        let passed = answers.iter().filter(|answer| answer.status == 200).count();
        assert_eq!(passed, 1, "round {round}: {answers:?}");
        for refused in answers.iter().filter(|answer| answer.status != 200) {
            assert_replay(refused);
        }
    }
}

#[tokio::test]
async fn records_expire_when_the_proof_window_ends() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let client = Client::new(&issuer);
    let mut db = inspect(&redis.url());

    // Default window (iat up to 300 s old) and clock-skew margin (5 s): the record lives until
    // one second after the proof's last valid second, plus the margin, by `PXAT`.
    let api = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let iat = now() - 10;
    let proof = client
        .key
        .proof("GET", &format!("{ORIGIN}{PATH}"))
        .access_token(&client.token)
        .issued_at(iat)
        .sign();
    assert_eq!(client.dpop(&api, &proof).await.status, 200);
    let stored = keys(&mut db);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let key = &stored[0];
    let digest = key
        .strip_prefix(RedisReplayStore::DEFAULT_PREFIX)
        .expect("prefix");
    assert_eq!(digest.len(), 43, "a base64url SHA-256: {key}");
    assert!(!key.contains(&client.key.thumbprint()), "{key}");
    let value: String = redis::cmd("GET").arg(key).query(&mut db).expect("GET");
    assert_eq!(value, "1");
    let expires_ms: i64 = redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(&mut db)
        .expect("PEXPIRETIME");
    assert_eq!(expires_ms, (iat + 300 + 1 + 5) * 1000);
    let _: () = redis::cmd("FLUSHDB").query(&mut db).expect("FLUSHDB");

    // A one-second window and no margin: the record is gone within seconds, and until then the
    // proof is refused.
    let short = Instance::start(
        issuer
            .config(AUDIENCE)
            .dpop_iat_offset(Duration::from_secs(1))
            .replay_store(
                RedisReplayStore::builder(redis.url())
                    .clock_skew(Duration::ZERO)
                    .prefix("short:")
                    .build()
                    .expect("store"),
            ),
    );
    let iat = now();
    let proof = client
        .key
        .proof("GET", &format!("{ORIGIN}{PATH}"))
        .access_token(&client.token)
        .issued_at(iat)
        .sign();
    assert_eq!(client.dpop(&short, &proof).await.status, 200);
    assert_replay(&client.dpop(&short, &proof).await);
    let stored = keys(&mut db);
    assert!(stored.len() == 1 && stored[0].starts_with("short:"), "{stored:?}");
    let expires_ms: i64 = redis::cmd("PEXPIRETIME")
        .arg(&stored[0])
        .query(&mut db)
        .expect("PEXPIRETIME");
    assert_eq!(expires_ms, (iat + 1 + 1) * 1000);
    eventually("the record expires", Duration::from_secs(6), || {
        let empty = keys(&mut db).is_empty();
        async move { empty }
    })
    .await;
}

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let redis = RedisServer::start_tls();
    let url = redis.tls_url().expect("a TLS port");
    let ca = redis.ca_pem().expect("a CA").to_owned();
    let issuer = TestIssuer::start();
    let tls_store = || {
        RedisReplayStore::builder(url.clone())
            .root_certificates_pem(ca.as_bytes())
            .build()
            .expect("store")
    };
    let a = Instance::start(issuer.config(AUDIENCE).replay_store(tls_store()));
    let b = Instance::start(issuer.config(AUDIENCE).replay_store(tls_store()));
    let client = Client::new(&issuer);
    let proof = client.proof();
    assert_eq!(client.dpop(&a, &proof).await.status, 200);
    assert_replay(&client.dpop(&b, &proof).await);
    // The record went over TLS; the plain port sees it.
    assert_eq!(keys(&mut inspect(&redis.url())).len(), 1);

    // Trusting only the platform's roots, the server's certificate is refused: no connection, 503.
    let untrusting = Instance::start(
        issuer
            .config(AUDIENCE)
            .replay_store(RedisReplayStore::new(&url).expect("store")),
    );
    assert_unavailable(&client.dpop(&untrusting, &client.proof()).await);
}

#[tokio::test]
async fn redis_down_means_503_for_dpop_only_then_recovery() {
    let mut redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let api = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    let client = Client::new(&issuer);
    assert_eq!(client.dpop(&api, &client.proof()).await.status, 200);

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        assert_unavailable(&client.dpop(&api, &client.proof()).await);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(client.bearer(&api).await.status, 200, "Bearer is not affected");
    }

    redis.restart();
    let took = eventually("DPoP passes again", Duration::from_secs(10), || async {
        client.dpop(&api, &client.proof()).await.status == 200
    })
    .await;
    println!("recovered {took:?} after redis-server came back");
    let proof = client.proof();
    assert_eq!(client.dpop(&api, &proof).await.status, 200);
    assert_replay(&client.dpop(&api, &proof).await);
}

#[tokio::test]
async fn an_api_starts_with_redis_down_and_recovers_when_it_comes_up() {
    let mut redis = RedisServer::start();
    redis.stop();
    let issuer = TestIssuer::start();
    let started = Instant::now();
    let api = Instance::start(issuer.config(AUDIENCE).replay_store(store(&redis)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "startup waited for Redis"
    );
    let client = Client::new(&issuer);
    assert_unavailable(&client.dpop(&api, &client.proof()).await);
    assert_eq!(client.bearer(&api).await.status, 200);

    redis.restart();
    eventually(
        "DPoP passes once Redis is up",
        Duration::from_secs(10),
        || async { client.dpop(&api, &client.proof()).await.status == 200 },
    )
    .await;
}

#[tokio::test]
async fn a_hung_redis_costs_one_timeout_per_request() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let timeout = Duration::from_millis(150);
    let api = Instance::start(
        issuer.config(AUDIENCE).replay_store(
            RedisReplayStore::builder(redis.url())
                .timeout(timeout)
                .build()
                .expect("store"),
        ),
    );
    let client = Client::new(&issuer);
    assert_eq!(client.dpop(&api, &client.proof()).await.status, 200);

    redis.pause();
    for _ in 0..3 {
        let started = Instant::now();
        assert_unavailable(&client.dpop(&api, &client.proof()).await);
        let took = started.elapsed();
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "{took:?}"
        );
    }
    assert_eq!(client.bearer(&api).await.status, 200);
    redis.resume();
    eventually(
        "DPoP passes once Redis answers",
        Duration::from_secs(5),
        || async { client.dpop(&api, &client.proof()).await.status == 200 },
    )
    .await;
}

#[tokio::test]
async fn failing_open_accepts_unchecked_while_redis_is_down_only() {
    let mut redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let api = Instance::start(
        issuer
            .config(AUDIENCE)
            .replay_store(store(&redis))
            .replay_store_fail_open(true),
    );
    let client = Client::new(&issuer);
    // Redis up: replays are refused as ever.
    let proof = client.proof();
    assert_eq!(client.dpop(&api, &proof).await.status, 200);
    assert_replay(&client.dpop(&api, &proof).await);

    redis.stop();
    let proof = client.proof();
    assert_eq!(client.dpop(&api, &proof).await.status, 200);
    assert_eq!(
        client.dpop(&api, &proof).await.status,
        200,
        "unchecked: the price of failing open"
    );
    assert_eq!(client.bearer(&api).await.status, 200);

    redis.restart();
    eventually("replays are refused again", Duration::from_secs(10), || async {
        let proof = client.proof();
        client.dpop(&api, &proof).await.status == 200 && client.dpop(&api, &proof).await.status == 401
    })
    .await;
}

/// With fail-open on, a Redis that answers with an error refuses every DPoP request: the same
/// proof sent twice is refused twice (503, never accepted unchecked), Bearer is not affected, and
/// readiness reports the store unavailable. (A long timeout: a check that times out on a busy
/// machine before Redis was ever heard from fails open, as it should, and this is not about that.)
async fn refuses_even_failing_open(issuer: &TestIssuer, url: &str) {
    let config = issuer
        .config(AUDIENCE)
        .replay_store(
            RedisReplayStore::builder(url)
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a valid Redis URL"),
        )
        .replay_store_fail_open(true);
    let auth0 = Auth0::new(config.clone()).expect("valid configuration");
    let ready = auth0.ready().await;
    assert_eq!(
        ready.replay_store(),
        auth0_runtime::StoreState::Unavailable,
        "{ready:?}"
    );
    let api = Instance::start(config);
    let client = Client::new(issuer);
    let proof = client.proof();
    for attempt in ["first", "second"] {
        let answer = client.dpop(&api, &proof).await;
        assert_eq!(answer.status, 503, "{attempt} use of one proof: {answer:?}");
        assert_unavailable(&answer);
    }
    assert_unavailable(&client.dpop(&api, &client.proof()).await);
    assert_eq!(client.bearer(&api).await.status, 200, "Bearer is not affected");
}

/// An ACL user that may not `SET` (`NOPERM`), in an app configured from the environment with
/// fail-open on: refused, and the app says why, naming the reply and not the password.
#[tokio::test]
async fn a_user_without_permission_to_set_is_refused_even_failing_open() {
    let acl_password = format!("{PASSWORD}-acl");
    let redis = RedisServer::start_with(&[
        "--user",
        "proofs",
        "on",
        &format!(">{acl_password}"),
        "~*",
        "+@all",
        "-set",
    ]);
    let issuer = TestIssuer::start();
    let url = format!("redis://proofs:{acl_password}@127.0.0.1:{}/0", redis.port());
    refuses_even_failing_open(&issuer, &url).await;

    let dir = temp_dir("noperm");
    let ca = issuer.write_ca_file(&dir).expect("CA file");
    let vars = [
        ("AUTH0_DOMAIN", issuer.domain()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("SSL_CERT_FILE", ca.to_string_lossy().into_owned()),
        ("AUTH0_PUBLIC_ORIGINS", ORIGIN.to_owned()),
        ("AUTH0_REPLAY_STORE", url),
        ("AUTH0_REPLAY_STORE_FAIL_OPEN", "true".to_owned()),
    ];
    let app = AppProcess::spawn(&vars, &dir);
    let client = Client::new(&issuer);
    // The default timeout (200 ms): on a busy machine a first check may time out before Redis
    // was heard from, and fail open. Once Redis has refused, a timeout is that refusal too.
    eventually("Redis refuses", Duration::from_secs(10), || async {
        client.dpop(&app, &client.proof()).await.status == 503
    })
    .await;
    let proof = client.proof();
    assert_unavailable(&client.dpop(&app, &proof).await);
    assert_unavailable(&client.dpop(&app, &proof).await);
    let log = app.log();
    assert!(
        log.lines().any(|l| l.starts_with("WARN")
            && l.contains("refuses to record proofs")
            && l.contains("reply=\"NOPERM\"")),
        "{log}"
    );
    assert!(!log.contains(&acl_password), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replica (a primary demoted by a failover, or the wrong address) answers `READONLY`.
#[tokio::test]
async fn a_read_only_replica_is_refused_even_failing_open() {
    let primary = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()]);
    let issuer = TestIssuer::start();
    refuses_even_failing_open(&issuer, &replica.url()).await;
}

/// A Redis that cannot persist its snapshot refuses writes (`MISCONF`): here the dump file's name
/// is taken by a directory, so the save fails.
#[tokio::test]
async fn a_redis_that_cannot_persist_is_refused_even_failing_open() {
    let redis = RedisServer::start();
    std::fs::create_dir(redis.dir().join("dump.rdb")).expect("a directory in the dump's place");
    let mut db = inspect(&redis.url());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("3600 1")
        .query(&mut db)
        .expect("CONFIG SET save");
    let _: String = redis::cmd("BGSAVE").query(&mut db).expect("BGSAVE");
    eventually("the save fails", Duration::from_secs(10), || {
        let failed = redis::cmd("SET")
            .arg("probe")
            .arg(1)
            .query::<()>(&mut db)
            .is_err_and(|e| e.code() == Some("MISCONF"));
        async move { failed }
    })
    .await;
    let issuer = TestIssuer::start();
    refuses_even_failing_open(&issuer, &redis.url()).await;
}

/// A full Redis (`maxmemory` reached, `noeviction`) answers `OOM`: new proofs are refused,
/// never accepted unrecorded.
#[tokio::test]
async fn a_full_redis_is_refused_even_failing_open() {
    let redis = RedisServer::start_with(&["--maxmemory", "1", "--maxmemory-policy", "noeviction"]);
    let issuer = TestIssuer::start();
    refuses_even_failing_open(&issuer, &redis.url()).await;
}

/// A configuration read through `from_lookup` from these variables.
fn from_env(vars: &[(&str, String)]) -> Result<Auth0Config, ConfigError> {
    let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Auth0Config::from_lookup(|name| vars.get(name).cloned())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auth0-redis-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn the_environment_picks_the_store_its_database_and_the_policy() {
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let issuer = TestIssuer::start();
    let dir = temp_dir("env");
    let ca = issuer.write_ca_file(&dir).expect("CA file");
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/2", redis.port());
    let base = |store: &str| {
        vec![
            ("AUTH0_DOMAIN", issuer.domain()),
            ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
            ("SSL_CERT_FILE", ca.to_string_lossy().into_owned()),
            ("AUTH0_REPLAY_STORE", store.to_owned()),
        ]
    };

    let config = from_env(&base(&url)).expect("configuration");
    assert!(!format!("{config:?}").contains(PASSWORD));
    let auth0 = Auth0::new(config.clone()).expect("validator");
    assert!(!format!("{auth0:?}").contains(PASSWORD));
    let a = Instance::start(config);
    let b = Instance::start(from_env(&base(&url)).expect("configuration"));
    let client = Client::new(&issuer);
    let proof = client.proof();
    assert_eq!(client.dpop(&a, &proof).await.status, 200);
    assert_replay(&client.dpop(&b, &proof).await);
    // The record is in database 2, as the URL says, and nowhere else.
    let mut db2 = inspect(&format!("redis://:{PASSWORD}@127.0.0.1:{}/2", redis.port()));
    let mut db0 = inspect(&format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port()));
    assert_eq!(keys(&mut db2).len(), 1);
    assert!(keys(&mut db0).is_empty());

    // `memory` is the default store: per instance.
    let c = Instance::start(from_env(&base("memory")).expect("configuration"));
    let d = Instance::start(from_env(&base("MEMORY")).expect("configuration"));
    let proof = client.proof();
    assert_eq!(client.dpop(&c, &proof).await.status, 200);
    assert_eq!(client.dpop(&d, &proof).await.status, 200);

    // A wrong password: Redis answers, refusing, which is no outage: 503 whatever the failure
    // policy, never a proof accepted unchecked.
    let wrong = format!("redis://:not-{PASSWORD}@127.0.0.1:{}/2", redis.port());
    let closed = Instance::start(from_env(&base(&wrong)).expect("configuration"));
    assert_unavailable(&client.dpop(&closed, &client.proof()).await);
    let mut vars = base(&wrong);
    vars.push(("AUTH0_REPLAY_STORE_FAIL_OPEN", "true".to_owned()));
    let open = from_env(&vars).expect("configuration");
    let open = Instance::start(open);
    // With the default 200 ms timeout, a busy machine may time out a first check before Redis
    // was heard from (and fail open); once Redis has refused, every check is refused.
    eventually("Redis refuses", Duration::from_secs(10), || async {
        client.dpop(&open, &client.proof()).await.status == 503
    })
    .await;
    let proof = client.proof();
    assert_unavailable(&client.dpop(&open, &proof).await);
    assert_unavailable(&client.dpop(&open, &proof).await);
    assert_eq!(client.bearer(&open).await.status, 200);

    // Refusals name the variable and never repeat the URL.
    for (value, expected) in [
        (
            format!("redis://:{PASSWORD}@127.0.0.1:notaport/2"),
            "not a valid Redis URL",
        ),
        (
            format!("rediss://:{PASSWORD}@127.0.0.1:6380/2#insecure"),
            "#fragment",
        ),
        (format!("http://:{PASSWORD}@127.0.0.1:6379"), "must be memory"),
        ("memcached://127.0.0.1".to_owned(), "must be memory"),
    ] {
        let error = from_env(&base(&value)).expect_err(&value);
        let message = format!("{error} {error:?}");
        assert!(message.starts_with("AUTH0_REPLAY_STORE "), "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(
            !message.contains(PASSWORD) && !message.contains("127.0.0.1"),
            "{message}"
        );
    }
    let error = from_env(&{
        let mut vars = base("memory");
        vars.push(("AUTH0_REPLAY_STORE_FAIL_OPEN", "sometimes".to_owned()));
        vars
    })
    .expect_err("not a boolean");
    assert_eq!(
        error.to_string(),
        "AUTH0_REPLAY_STORE_FAIL_OPEN must be true or false, not \"sometimes\""
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A running `env_app` process (`tests/src/bin/env_app.rs`): configured by `init_from_env()`
/// alone. Killed on drop.
struct AppProcess {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl AppProcess {
    fn spawn(vars: &[(&str, String)], dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_env_app"))
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start env_app");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                sink.lock().expect("log").push_str(&text);
            }
        });
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let _ = stdout.read_line(&mut line);
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("env_app did not start: {}", stderr.lock().expect("log"));
        };
        Self {
            base: base.to_owned(),
            child,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().expect("log").clone()
    }
}

impl Target for AppProcess {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What issue 9 will be checked with: two instances of an app that only calls `init_from_env()`,
/// sharing one Redis with a password, Redis killed and restarted while they serve.
#[tokio::test]
async fn two_processes_configured_from_the_environment_alone() {
    let mut redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let issuer = TestIssuer::start();
    let dir = temp_dir("processes");
    let ca = issuer.write_ca_file(&dir).expect("CA file");
    let vars = [
        ("AUTH0_DOMAIN", issuer.domain()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("SSL_CERT_FILE", ca.to_string_lossy().into_owned()),
        ("AUTH0_PUBLIC_ORIGINS", ORIGIN.to_owned()),
        (
            "AUTH0_REPLAY_STORE",
            format!("redis://:{PASSWORD}@127.0.0.1:{}/2", redis.port()),
        ),
    ];
    let a = AppProcess::spawn(&vars, &dir);
    let b = AppProcess::spawn(&vars, &dir);
    let client = Client::new(&issuer);

    for (first, second) in [(&a, &b), (&b, &a)] {
        let proof = client.proof();
        assert_eq!(client.dpop(first, &proof).await.status, 200);
        assert_replay(&client.dpop(second, &proof).await);
    }

    redis.stop();
    for at in [&a, &b] {
        assert_unavailable(&client.dpop(at, &client.proof()).await);
        assert_eq!(client.bearer(at).await.status, 200);
    }
    redis.restart();
    for at in [&a, &b] {
        eventually("DPoP passes again", Duration::from_secs(10), || async {
            client.dpop(at, &client.proof()).await.status == 200
        })
        .await;
    }
    let proof = client.proof();
    assert_eq!(client.dpop(&b, &proof).await.status, 200);
    assert_replay(&client.dpop(&a, &proof).await);

    // Each app said, once, that the store was unreachable and where it is, and never the password.
    for app in [&a, &b] {
        let log = app.log();
        let target = format!("redis://127.0.0.1:{}/2", redis.port());
        assert!(
            log.lines()
                .any(|l| l.starts_with("WARN") && l.contains("cannot be reached") && l.contains(&target)),
            "{log}"
        );
        assert!(log.contains("answers again"), "{log}");
        assert!(!log.contains(PASSWORD), "{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The readiness check asks the store: a Redis that does not answer makes the instance unready
/// (whatever the failure policy), and it is ready again once Redis is back.
#[tokio::test]
async fn readiness_reports_an_unreachable_store() {
    let mut redis = RedisServer::start();
    let issuer = TestIssuer::start();
    for fail_open in [false, true] {
        let auth0 = Auth0::new(
            issuer
                .config(AUDIENCE)
                .replay_store(store(&redis))
                .replay_store_fail_open(fail_open)
                .warm_up(true),
        )
        .expect("valid configuration");
        let ready = auth0.ready().await;
        assert!(ready.is_ready(), "{ready:?}");
        assert_eq!(ready.replay_store(), auth0_runtime::StoreState::Ready);

        redis.stop();
        let down = auth0.ready().await;
        assert!(!down.is_ready(), "fail_open {fail_open}: {down:?}");
        assert_eq!(down.replay_store(), auth0_runtime::StoreState::Unavailable);

        redis.restart();
        eventually("ready again", Duration::from_secs(10), || async {
            auth0.ready().await.is_ready()
        })
        .await;
    }
}

#[tokio::test]
async fn a_flood_of_readiness_checks_costs_the_store_one_check_at_a_time() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE).replay_store(store(&redis)).warm_up(true))
        .expect("valid configuration");
    assert!(auth0.ready().await.is_ready());
    let mut db = inspect(&redis.url());
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut db)
        .expect("RESETSTAT");

    // 200 probes at once (an open /health route under a flood): the ones that arrive while a
    // check runs share its answer.
    let checks = (0..200).map(|_| auth0.ready());
    let answers = futures_util::future::join_all(checks).await;
    assert!(answers.iter().all(|a| a.is_ready()));
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut db)
        .expect("INFO");
    let sets = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse::<u32>().ok())
        .unwrap_or(0);
    // `join_all` starts the probes in batches (it yields every 32 polls), so a batch that starts
    // after a check ended runs its own: a handful of checks, never one per probe (200 before).
    assert!(
        (1..=50).contains(&sets),
        "{sets} store checks for 200 readiness probes"
    );
}
