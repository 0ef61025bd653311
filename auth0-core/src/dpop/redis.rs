//! A DPoP replay store shared by the instances of an API: Redis (feature `redis`).
//!
//! One atomic `SET <prefix><digest> 1 NX PXAT <ms>` per proof: `OK` is a first use, nil a replay.
//! The key is [`ProofUse::digest`] in base64url (43 characters), so every key has the same size
//! and reveals neither the key thumbprint nor the `jti`.
//!
//! Commands run on a thread of their own (one per process, shared by every store, started with
//! the first one), which also owns the connections and their reconnections: no Actix worker ever
//! waits on Redis (the verifier gets a [`ReplayCheck::Pending`] and awaits it), and a store keeps
//! working whichever runtime built it and whichever runtimes come and go.
//!
//! Only a check that gets no answer (no connection, an I/O error, the timeout) may fail open; an
//! error reply is Redis refusing to record the proof, and fails closed.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Cmd, ConnectionAddr, IntoConnectionInfo, RedisError, TlsCertificates, Value};
use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::replay::{HealthCheck, ProofUse, ReplayCheck, ReplayOutcome, ReplayStore};
use crate::answer::ConfigError;
use crate::throttle::Throttle;

/// The setting every refusal is about (in code, the store given to `replay_store`).
const VAR: &str = "AUTH0_REPLAY_STORE";
/// How long one connection attempt may take (TCP, TLS, `AUTH`, `SELECT`). Attempts run in the
/// background: a request never waits longer than the store's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After failing this long without one answer, the store drops its connection and starts a new
/// one: a connection can fail without ever being closed (a silent network partition, a primary
/// demoted to a read-only replica after a failover, a password changed on the server), and only
/// a new one finds the new primary or authenticates again.
const RESET_AFTER: Duration = Duration::from_secs(5);
/// The key [`ReplayStore::health`] writes under the prefix: never a record's (those are 43
/// characters after the prefix).
const PROBE_KEY: &str = "readiness";
/// At most one warning per period about the same trouble.
const WARN_PERIOD: Duration = Duration::from_secs(10);

fn invalid(problem: &str) -> ConfigError {
    ConfigError::Invalid {
        var: VAR,
        problem: problem.to_owned(),
    }
}

/// A [`ReplayStore`] in Redis, shared by every instance of an API (feature `redis`): a proof
/// accepted by one instance is refused by all the others.
///
/// Each check is one atomic `SET <prefix><digest> 1 NX PXAT <ms>`: the key is the proof's
/// [`ProofUse::digest`] (SHA-256 of the key thumbprint and the `jti`) in base64url, 43
/// characters after the prefix; it expires in Redis one second after the last second at which
/// the proof could pass the `iat` check again ([`ProofUse::expires_at`]), plus a clock-skew
/// margin (default 5 s) for the clocks of Redis and the instances.
///
/// It never blocks a worker: commands run on a thread of the store's own, and each check is
/// bounded by a timeout (default 200 ms). A check that gets no answer (the connection is refused,
/// reset or closed, another I/O error, or the timeout) answers [`ReplayOutcome::Unreachable`]:
/// 503 `temporarily_unavailable` with `Retry-After` for that DPoP request, unless the validator
/// fails open
/// ([`Auth0Config::replay_store_fail_open`](crate::Auth0Config::replay_store_fail_open)); Bearer
/// requests are never affected. Redis answering with an error (`NOPERM` from its ACL, `READONLY`
/// from a replica, `MISCONF` when it cannot persist, a wrong password, any other error reply) is
/// a refusal, not an outage: [`ReplayOutcome::Unavailable`], 503 whatever the failure policy,
/// with a warning naming the reply (at most one every 10 s); so is a timeout after such a refusal
/// with no answer since. Building the store does not connect: an API starts with Redis down and
/// answers DPoP requests again as soon as Redis is back, reconnecting by itself.
///
/// The URL is `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS (the
/// platform's roots and `SSL_CERT_FILE`, or [`RedisReplayStoreBuilder::root_certificates_pem`]).
/// Its credentials never appear in an error, in `Debug` or in a log line.
///
/// Give Redis room and `maxmemory-policy noeviction`: an evicted record is a proof that can be
/// replayed. A full Redis (`OOM`) refuses new proofs with 503, whatever the failure policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::{Auth0Config, RedisReplayStore};
///
/// // Nothing connects yet: the first DPoP request does.
/// let store = RedisReplayStore::builder("redis://:s3cret@127.0.0.1:6379/2")
///     .prefix("orders-api:dpop:")
///     .timeout(Duration::from_millis(150))
///     .build()?;
/// assert!(!format!("{store:?}").contains("s3cret"));
///
/// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
///     .replay_store(store)
///     .replay_store_fail_open(false); // the default: 503 while Redis is unreachable
/// # let _ = config;
/// # Ok::<(), auth0_runtime::ConfigError>(())
/// ```
///
/// From the environment, `AUTH0_REPLAY_STORE=redis://…` does the same with the defaults.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisReplayStore {
    inner: Arc<Inner>,
}

/// Settings of a [`RedisReplayStore`], from [`RedisReplayStore::builder`].
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[must_use]
pub struct RedisReplayStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    clock_skew: Duration,
    root_certificates: Option<Vec<u8>>,
}

impl RedisReplayStore {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "auth0:dpop:";
    /// The default timeout of one check.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
    /// The default clock-skew margin added to each record's lifetime.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5);

    /// A store at `url` (`redis://…` or `rediss://…`) with the default prefix, timeout and clock
    /// skew. Does not connect.
    ///
    /// # Errors
    /// A [`ConfigError`] about `AUTH0_REPLAY_STORE` when `url` is not a usable Redis URL (the
    /// message never repeats it: it may hold a password).
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// Settings for a store at `url`, to adjust before [`RedisReplayStoreBuilder::build`].
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            url: url.into(),
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
            root_certificates: None,
        }
    }

    /// Whether the store answers a `PING` within its timeout. A readiness check wants
    /// [`ReplayStore::health`] (what [`Auth0::ready`](crate::Auth0::ready) asks), which also
    /// checks that Redis accepts writes.
    pub async fn reachable(&self) -> bool {
        let inner = Arc::clone(&self.inner);
        let deadline = tokio::time::Instant::now() + inner.timeout;
        let ping = self
            .inner
            .runtime
            .spawn(async move { inner.ping(deadline).await.is_ok() });
        ping.await.unwrap_or(false)
    }
}

impl RedisReplayStoreBuilder {
    /// The prefix of every key (default `auth0:dpop:`), at most 128 bytes. APIs that share a
    /// Redis database may share it too: a proof is made for one URL and passes at one API only.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one check may take, connecting included, before the request gets 503 (or is
    /// accepted unchecked when failing open): default 200 ms, between 1 ms and 10 s. Every DPoP
    /// request may wait this long while Redis is slow or unreachable.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How far the clocks of Redis and of the instances may differ (default 5 s, at most 300 s):
    /// each record lives this much longer than the proof's window, since Redis expires it by its
    /// own clock (`PXAT`). Keep the clocks in sync (NTP).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Trust these CA certificates (PEM) for a `rediss://` URL, instead of the platform's roots
    /// (a private CA).
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }

    /// Checks the settings and builds the store. Does not connect: the first check does (in the
    /// background), and an unreachable Redis only makes DPoP requests wait for it.
    ///
    /// # Errors
    /// A [`ConfigError`] about `AUTH0_REPLAY_STORE`: not a `redis://` or `rediss://` URL, a
    /// malformed one, or a setting out of range. The URL is never repeated.
    pub fn build(self) -> Result<RedisReplayStore, ConfigError> {
        let lower = self.url.trim().to_ascii_lowercase();
        let tls = lower.starts_with("rediss://");
        if !tls && !lower.starts_with("redis://") {
            return Err(invalid(
                "must be a Redis URL like redis://host:6379/0 or rediss://:password@host:6380/0",
            ));
        }
        if self.url.contains('#') {
            return Err(invalid(
                "must not have a #fragment (#insecure would turn certificate checks off): use a URL \
                 like rediss://host:6380/0",
            ));
        }
        let info = self.url.trim().into_connection_info().map_err(|_| {
            invalid(
                "is not a valid Redis URL (not repeated here: it may hold a password): use one like \
                 redis://[:password@]host:6379/0 or rediss://[:password@]host:6380/0, with any \
                 special character of the password percent-encoded",
            )
        })?;
        if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&self.timeout) {
            return Err(invalid("timeout must be between 1 ms and 10 s, like 200 ms"));
        }
        if self.clock_skew > Duration::from_secs(300) {
            return Err(invalid(
                "clock skew must be at most 300 seconds, like 5: keep the clocks in sync instead",
            ));
        }
        if self.prefix.len() > 128 {
            return Err(invalid("key prefix must be at most 128 bytes, like auth0:dpop:"));
        }
        let target = describe(info.addr(), info.redis_settings().db());
        let client = match self.root_certificates {
            Some(_) if !tls => {
                return Err(invalid(
                    "root certificates need a rediss:// URL (TLS), not redis://",
                ));
            }
            Some(pem) => Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|_| invalid("root certificates must be PEM CA certificates"))?,
            None => Client::open(info).map_err(|_| invalid("is not a usable Redis URL"))?,
        };
        if tls {
            // rustls picks the process's provider; make it aws-lc, as everywhere in this crate, so
            // that another provider enabled elsewhere in the build cannot make it panic.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let runtime = runtime()?;
        let manager = {
            let _entered = runtime.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config(self.timeout))
                .map_err(|_| invalid("cannot be used: its connection could not be set up"))?
        };
        let inner = Arc::new(Inner {
            client,
            manager: ArcSwap::from_pointee(manager),
            runtime,
            prefix: self.prefix,
            timeout: self.timeout,
            clock_skew: i64::try_from(self.clock_skew.as_secs()).unwrap_or(300),
            target,
            epoch: Instant::now(),
            failing_since: AtomicU64::new(0),
            last_reset: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            failures: Throttle::new(WARN_PERIOD),
            refusals: Throttle::new(WARN_PERIOD),
            full: Throttle::new(WARN_PERIOD),
        });
        inner.warm_up();
        Ok(RedisReplayStore { inner })
    }
}

impl fmt::Debug for RedisReplayStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStoreBuilder")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("clock_skew", &self.clock_skew)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish()
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("target", &self.inner.target)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("clock_skew_secs", &self.inner.clock_skew)
            .finish_non_exhaustive()
    }
}

impl ReplayStore for RedisReplayStore {
    fn check_and_record(&self, proof: &ProofUse<'_>) -> ReplayCheck {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let command = self.inner.command(proof);
        let inner = Arc::clone(&self.inner);
        let answer = self
            .inner
            .runtime
            .spawn(async move { inner.record(&command, deadline).await });
        ReplayCheck::pending(async move { answer.await.unwrap_or(ReplayOutcome::Unreachable) })
    }

    /// A write within the store's timeout (`SET <prefix>readiness 1 PX 10000`), for readiness
    /// checks: a Redis that answers but refuses writes (`NOPERM`, `READONLY`, `MISCONF`, `OOM`, a
    /// wrong password) refuses every DPoP request, so it is not ready either.
    fn health(&self) -> HealthCheck {
        let inner = Arc::clone(&self.inner);
        let deadline = tokio::time::Instant::now() + inner.timeout;
        let probe = self.inner.runtime.spawn(async move {
            let target = inner.target.clone();
            inner.probe(deadline).await.map_err(|failure| match failure {
                Failure::Timeout | Failure::Unreachable(_) => {
                    format!("the Redis replay store at {target} does not answer: {failure}")
                }
                Failure::Refused(_) | Failure::Reply => format!(
                    "the Redis replay store at {target} refuses writes ({}): {failure}",
                    failure.kind()
                ),
            })
        });
        HealthCheck::pending(async move {
            probe
                .await
                .unwrap_or_else(|_| Err("the Redis replay store's thread has stopped".to_owned()))
        })
    }
}

struct Inner {
    client: Client,
    /// Replaced by a new one after [`RESET_AFTER`] of failures.
    manager: ArcSwap<ConnectionManager>,
    /// The Redis thread's runtime.
    runtime: tokio::runtime::Handle,
    prefix: String,
    timeout: Duration,
    clock_skew: i64,
    /// `redis://host:port/db`, without credentials: what logs and `Debug` show.
    target: String,
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one, of the first failure since the last answer (0: the
    /// last check was answered).
    failing_since: AtomicU64,
    /// Milliseconds since `epoch`, plus one, of the last connection reset.
    last_reset: AtomicU64,
    /// Redis refused the last time it was heard from (an error reply), and has not answered
    /// since: a timeout meanwhile is the same refusal, not an outage (a reconnection that
    /// authenticates in vain, say), and fails closed too.
    refusing: AtomicBool,
    failures: Throttle,
    refusals: Throttle,
    full: Throttle,
}

/// Why a check (or a probe) got no answer, or was refused.
enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// No connection: refused, reset or closed, or another I/O error or timeout on the way.
    Unreachable(RedisError),
    /// An answer, and a refusal: an error reply (`NOPERM`, `READONLY`, `MISCONF`, `NOAUTH`, …),
    /// failed authentication, or something that is not a Redis reply.
    Refused(RedisError),
    /// A reply `SET` never gives.
    Reply,
}

impl Failure {
    /// Only a connection that fails is an unreachable store (the failure policy decides); anything
    /// else is an answer from the other end, which said no.
    fn of(error: RedisError) -> Self {
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_refusal()
            || error.is_connection_dropped()
        {
            Self::Unreachable(error)
        } else {
            Self::Refused(error)
        }
    }

    fn refused(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::Reply)
    }

    /// What kind of failure, for a log field: the reply's code (`NOPERM`, `READONLY`,
    /// `MISCONF`, …) or the client's category (`authentication failed`).
    fn kind(&self) -> &str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable(_) => "I/O error",
            Self::Refused(error) => error
                .code()
                .filter(|code| !code.is_empty())
                .unwrap_or_else(|| error.category()),
            Self::Reply => "unexpected reply",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer within the timeout"),
            // Redis errors carry the kind, the server's message and I/O causes; never the URL or
            // a password (a wrong one is "invalid username-password pair").
            Self::Unreachable(error) | Self::Refused(error) => write!(f, "{error}"),
            Self::Reply => f.write_str("an unexpected reply to SET"),
        }
    }
}

impl Inner {
    /// `SET <prefix><digest> 1 NX PXAT <ms>`.
    fn command(&self, proof: &ProofUse<'_>) -> Cmd {
        let mut key = String::with_capacity(self.prefix.len() + 43);
        key.push_str(&self.prefix);
        URL_SAFE_NO_PAD.encode_string(proof.digest(), &mut key);
        // The record lives through the proof's last second (`expires_at` is inclusive), plus the
        // clock-skew margin, by Redis's clock.
        let expires_ms = proof
            .expires_at()
            .saturating_add(1)
            .saturating_add(self.clock_skew)
            .saturating_mul(1000);
        let mut command = ::redis::cmd("SET");
        command.arg(key).arg(1).arg("NX").arg("PXAT").arg(expires_ms);
        command
    }

    /// Runs on the Redis thread.
    async fn record(self: &Arc<Self>, command: &Cmd, deadline: tokio::time::Instant) -> ReplayOutcome {
        let mut connection = ConnectionManager::clone(&self.manager.load());
        let reply = tokio::time::timeout_at(deadline, connection.send_packed_command(command))
            .await
            .map(|reply| reply.and_then(Value::extract_error));
        let failure = match reply {
            Ok(Ok(Value::Okay)) => return self.answered(ReplayOutcome::FirstUse),
            Ok(Ok(Value::SimpleString(s))) if s == "OK" => return self.answered(ReplayOutcome::FirstUse),
            Ok(Ok(Value::Nil)) => return self.answered(ReplayOutcome::Replay),
            Ok(Err(error)) if error.code() == Some("OOM") => {
                if let Some(report) = self.full.event() {
                    tracing::warn!(
                        target: "auth0_runtime",
                        store = %self.target,
                        refused = report.count,
                        seconds = report.seconds,
                        "the Redis DPoP replay store is full (maxmemory): new DPoP proofs get 503; \
                         give Redis more memory"
                    );
                }
                return self.answered(ReplayOutcome::Unavailable);
            }
            Ok(Ok(_)) => Failure::Reply,
            Ok(Err(error)) => Failure::of(error),
            Err(_) => Failure::Timeout,
        };
        if self.failed(&failure) {
            ReplayOutcome::Unavailable
        } else {
            ReplayOutcome::Unreachable
        }
    }

    async fn ping(&self, deadline: tokio::time::Instant) -> Result<(), Failure> {
        let mut connection = ConnectionManager::clone(&self.manager.load());
        let ping = ::redis::cmd("PING");
        let reply = tokio::time::timeout_at(deadline, connection.send_packed_command(&ping))
            .await
            .map(|reply| reply.and_then(Value::extract_error));
        match reply {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(Failure::of(error)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// `SET <prefix>readiness 1 PX 10000`: whether Redis would record a proof now. Changes no
    /// state of the checks.
    async fn probe(&self, deadline: tokio::time::Instant) -> Result<(), Failure> {
        let mut connection = ConnectionManager::clone(&self.manager.load());
        let mut probe = ::redis::cmd("SET");
        probe
            .arg(format!("{}{PROBE_KEY}", self.prefix))
            .arg(1)
            .arg("PX")
            .arg(10_000);
        let reply = tokio::time::timeout_at(deadline, connection.send_packed_command(&probe))
            .await
            .map(|reply| reply.and_then(Value::extract_error));
        match reply {
            Ok(Ok(Value::Okay)) => Ok(()),
            Ok(Ok(Value::SimpleString(s))) if s == "OK" => Ok(()),
            Ok(Ok(_)) => Err(Failure::Reply),
            Ok(Err(error)) => Err(Failure::of(error)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Connects in the background, so the first requests find a connection.
    fn warm_up(self: &Arc<Self>) {
        let inner = Arc::clone(self);
        self.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
            match inner.ping(deadline).await {
                Ok(()) => {
                    inner.answered(ReplayOutcome::FirstUse);
                }
                Err(failure) => {
                    inner.failed(&failure);
                }
            }
        });
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    fn answered(&self, outcome: ReplayOutcome) -> ReplayOutcome {
        self.refusing.store(false, Ordering::Relaxed);
        if self.failing_since.load(Ordering::Relaxed) != 0
            && self.failing_since.swap(0, Ordering::Relaxed) != 0
        {
            tracing::info!(target: "auth0_runtime", store = %self.target, "the DPoP replay store answers again");
        }
        outcome
    }

    /// Counts a failure, replaces a connection that keeps failing, warns (rate-limited). Whether
    /// Redis is refusing (fail closed) rather than unreachable.
    fn failed(self: &Arc<Self>, failure: &Failure) -> bool {
        let refusing = match failure {
            Failure::Timeout => self.refusing.load(Ordering::Relaxed),
            _ => failure.refused(),
        };
        self.refusing.store(refusing, Ordering::Relaxed);
        let now = self.millis();
        let reset_after = u64::try_from(RESET_AFTER.as_millis()).unwrap_or(u64::MAX);
        let since = self.failing_since.load(Ordering::Relaxed);
        if since == 0 {
            let _ = self
                .failing_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        } else if now.saturating_sub(since) >= reset_after {
            let last = self.last_reset.load(Ordering::Relaxed);
            if (last == 0 || now.saturating_sub(last) >= reset_after)
                && self
                    .last_reset
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.reset();
            }
        }
        if refusing {
            if let Some(report) = self.refusals.event() {
                tracing::warn!(
                    target: "auth0_runtime",
                    store = %self.target,
                    refused = report.count,
                    seconds = report.seconds,
                    reply = failure.kind(),
                    last_error = %failure,
                    "the DPoP replay store refuses to record proofs: DPoP requests get 503, even \
                     with AUTH0_REPLAY_STORE_FAIL_OPEN=true; check the Redis user's permissions \
                     and password, and that it is a writable primary that can persist; Bearer \
                     requests are not affected"
                );
            }
        } else if let Some(report) = self.failures.event() {
            tracing::warn!(
                target: "auth0_runtime",
                store = %self.target,
                failed = report.count,
                seconds = report.seconds,
                last_error = %failure,
                "the DPoP replay store cannot be reached: DPoP requests get 503, or are accepted \
                 unchecked with AUTH0_REPLAY_STORE_FAIL_OPEN=true; Bearer requests are not affected"
            );
        }
        refusing
    }

    /// Drops the connection for a new one. Runs on the Redis thread (the new manager's tasks are
    /// spawned there).
    fn reset(self: &Arc<Self>) {
        match ConnectionManager::new_lazy_with_config(self.client.clone(), manager_config(self.timeout)) {
            Ok(manager) => {
                tracing::debug!(target: "auth0_runtime", store = %self.target, "reconnecting to the DPoP replay store");
                self.manager.store(Arc::new(manager));
                self.warm_up();
            }
            Err(error) => {
                tracing::warn!(target: "auth0_runtime", store = %self.target, %error, "cannot set up a new connection")
            }
        }
    }
}

/// One connection attempt at a time, never retried inside the attempt: the manager starts a new
/// one when a command finds the last one failed (the next DPoP request or readiness probe), and
/// a check sees why the last one failed at once. Retries would hide a refusal (a wrong password)
/// behind timeouts, which fail open.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(0)
}

/// `redis://host:port/db` (or `rediss://`), without credentials.
fn describe(addr: &ConnectionAddr, db: i64) -> String {
    let (scheme, host, port) = match addr {
        ConnectionAddr::Tcp(host, port) => ("redis", host.as_str(), *port),
        ConnectionAddr::TcpTls { host, port, .. } => ("rediss", host.as_str(), *port),
        _ => return "redis (not TCP)".to_owned(),
    };
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}/{db}")
    } else {
        format!("{scheme}://{host}:{port}/{db}")
    }
}

/// A URL as typed, without its userinfo, query and fragment: everything up to the last `@` goes,
/// so even a password with an unencoded `/` or `@` does not show.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((_, host)) => ("(credentials)@", host),
        None => ("", rest),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{credentials}{rest}")
}

/// The Redis thread: one per process, started with the first store, for all of them.
fn runtime() -> Result<tokio::runtime::Handle, ConfigError> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Handle>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("auth0-redis".to_owned())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .clone()
        .ok_or_else(|| invalid("cannot be used: the thread for its connections could not be started"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
