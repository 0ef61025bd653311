//! Warm start and readiness (SPEC §12): discovery documents and key sets fetched before the app
//! binds its port, and a readiness check a health route can expose.
//!
//! # The startup warm-up
//!
//! With [`Auth0Config::warm_up`](crate::Auth0Config::warm_up) (`AUTH0_WARM_UP=true`),
//! [`Auth0::new`] (so [`crate::init`] and [`crate::init_from_env`]) returns once the keys of every
//! configured issuer are cached, or after the HTTP timeout. It is synchronous and typically runs
//! inside `#[actix_web::main]`, on the one thread of a running current-thread runtime: a `block_on`
//! there panics, and a task spawned onto that runtime could not run while its thread waits.
//!
//! So the fetches run on a short-lived thread of their own, on a current-thread runtime of their
//! own, and the caller's thread only waits on a channel, with a deadline. Nothing is spawned onto
//! (or blocked on) the caller's runtime. What they fetch lands in the validator's key cache, which
//! is plain data that belongs to no runtime.
//!
//! That runtime ends with its thread, so nothing the validator keeps may belong to it. A
//! `reqwest::Client` is not runtime-neutral once used: the task of each pooled connection, and the
//! pool's idle reaper (started on the runtime of the first pooled connection), live on the runtime
//! that made them; used once from a temporary runtime, the shared client would keep a dead
//! connection in its pool (the next request fails, "connection closed before message completed")
//! and lose its reaper for good. The warm-up therefore never touches the shared client: it uses a
//! client of its own, built from the same settings (CA certificates, timeout, redirect policy,
//! proxy variables) and dropped with the thread. Its requests also say `Connection: close`, which
//! keeps their connections out of any pool: that alone protects a caller-supplied
//! [`Auth0Config::http_client`](crate::Auth0Config::http_client), which cannot be rebuilt from its
//! settings and is used (a clone of it) as is.
//!
//! A failed warm-up is a warning, never an error: the validator is built all the same, no back-off
//! is recorded, and the first request fetches the keys as it would have without a warm-up.
//!
//! [`Auth0::warm_up`] is the same warm-up for code that is already async: it runs on the caller's
//! runtime, with the shared client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::answer::Challenges;
use crate::auth0::Auth0;
use crate::keys::{KeyStore, KeysState, Via};
use crate::throttle::Throttle;

/// How long the caller of the startup warm-up waits past the warm-up's own deadline (for the
/// thread and its runtime to start and report).
const STARTUP_MARGIN: Duration = Duration::from_millis(500);

/// Whether the DPoP replay store can answer (see [`Readiness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreState {
    /// It answered its health check ([`ReplayStore::health`](crate::ReplayStore::health)).
    Ready,
    /// It did not (DPoP requests get 503 while it stays so, unless the store fails open); the
    /// reason is logged at warn, never shown.
    Unavailable,
    /// DPoP is disabled: the store is never asked.
    NotUsed,
}

/// The keys of one configured issuer (see [`Readiness::issuers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerReadiness {
    issuer: String,
    keys: KeysState,
    key_count: usize,
}

impl IssuerReadiness {
    /// The issuer, `https://tenant.us.auth0.com/`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where its keys stand.
    pub fn keys(&self) -> KeysState {
        self.keys
    }

    /// How many usable keys are cached (0 when [`KeysState::Missing`]).
    pub fn key_count(&self) -> usize {
        self.key_count
    }
}

/// Whether a validator can verify requests without waiting: what a readiness probe (a health
/// route) reports. From [`Auth0::ready`].
///
/// Ready when the keys of every configured issuer are usable ([`KeysState::Fresh`] or
/// [`KeysState::Stale`]: an Auth0 outage must not take every instance out of the load balancer
/// while they all still verify tokens with the last good keys) and the replay store answers (or
/// DPoP is off). Issuers a [`domains_resolver`](crate::Auth0Config::domains_resolver) allows are
/// not listed: they are only known per request.
///
/// It serialises to JSON for a health route, and is an Actix `Responder` (200 when ready, 503 when
/// not, `Cache-Control: no-store`):
///
/// ```json
/// {"ready": true,
///  "issuers": [{"issuer": "https://tenant.us.auth0.com/", "keys": "fresh", "key_count": 2}],
///  "replay_store": "ready"}
/// ```
///
/// ```
/// use actix_web::{get, App};
/// use auth0_runtime::{Auth0, Readiness};
///
/// #[get("/health")]
/// async fn health(auth0: Auth0) -> Readiness {
///     auth0.ready().await
/// }
///
/// let app = App::new().service(health);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    ready: bool,
    issuers: Vec<IssuerReadiness>,
    replay_store: StoreState,
}

impl Readiness {
    fn new(issuers: Vec<IssuerReadiness>, replay_store: StoreState) -> Self {
        let keys_ready = issuers.iter().all(|i| i.keys != KeysState::Missing);
        Self {
            ready: keys_ready && replay_store != StoreState::Unavailable,
            issuers,
            replay_store,
        }
    }

    /// Whether the validator can verify requests without waiting.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The keys of each configured issuer, in configuration order.
    pub fn issuers(&self) -> &[IssuerReadiness] {
        &self.issuers
    }

    /// Whether the DPoP replay store can answer.
    pub fn replay_store(&self) -> StoreState {
        self.replay_store
    }
}

/// The validator's readiness settings and state.
#[derive(Debug)]
pub(crate) struct Health {
    /// Bounds the warm-up and the replay store's health check.
    pub(crate) http_timeout: Duration,
    /// Rate-limits the warnings of an unavailable store (probes ask every few seconds).
    warnings: Throttle,
    /// One store check at a time, and when the last one ended with its answer: callers that
    /// arrived while it ran take that answer instead of starting their own, so a flood of
    /// readiness requests costs the store one check in flight, and no answer is older than the
    /// request that gets it.
    store_check: tokio::sync::Mutex<Option<(std::time::Instant, StoreState)>>,
}

impl Health {
    pub(crate) fn new(http_timeout: Duration) -> Self {
        Self {
            http_timeout,
            warnings: Throttle::new(Duration::from_secs(60)),
            store_check: tokio::sync::Mutex::new(None),
        }
    }
}

impl Auth0 {
    /// Whether this validator can verify requests without waiting: the keys of every configured
    /// issuer cached and usable, and the DPoP replay store answering (its
    /// [`health`](crate::ReplayStore::health) check, bounded by the HTTP timeout). See
    /// [`Readiness`]; expose it on a health route.
    ///
    /// It never waits for a key fetch, but starts one in the background for an issuer whose keys
    /// are missing or stale (unless one is under way, or the issuer is backing off after a
    /// failure): an instance nobody sends traffic to, because it is not ready, still gets its
    /// keys, and an idle one keeps them fresh.
    pub async fn ready(&self) -> Readiness {
        let inner = &self.0;
        let issuers = inner
            .issuers
            .iter()
            .map(|issuer| {
                let (keys, key_count) = inner.keys.readiness(issuer);
                if keys != KeysState::Fresh {
                    inner.keys.kick(issuer);
                }
                IssuerReadiness {
                    issuer: issuer.clone(),
                    keys,
                    key_count,
                }
            })
            .collect();
        Readiness::new(issuers, self.store_state().await)
    }

    async fn store_state(&self) -> StoreState {
        let inner = &self.0;
        if matches!(inner.accepted, Challenges::Bearer) {
            return StoreState::NotUsed;
        }
        let asked = std::time::Instant::now();
        let mut last = inner.health.store_check.lock().await;
        if let Some((answered, state)) = *last
            && answered >= asked
        {
            return state;
        }
        let state = self.check_store().await;
        *last = Some((std::time::Instant::now(), state));
        state
    }

    async fn check_store(&self) -> StoreState {
        let inner = &self.0;
        let check = inner.replay.health();
        // A timer needs a Tokio runtime; a store that answers at once (or a caller without one)
        // is awaited as is.
        let answer = if check.is_ready() || tokio::runtime::Handle::try_current().is_err() {
            check.await
        } else {
            let timeout = inner.health.http_timeout;
            tokio::time::timeout(timeout, check)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
        };
        match answer {
            Ok(()) => StoreState::Ready,
            Err(reason) => {
                if let Some(report) = inner.health.warnings.event() {
                    tracing::warn!(
                        target: "auth0_runtime",
                        reason = %reason,
                        checks = report.count,
                        seconds = report.seconds,
                        "readiness: the DPoP replay store cannot answer"
                    );
                }
                StoreState::Unavailable
            }
        }
    }

    /// Fetches the discovery document and the key set of every configured issuer now (those not
    /// fresh already), all at once, waiting at most the HTTP timeout; then reports
    /// [`Self::ready`]. An issuer that cannot be reached is logged at warn; requests then fetch its
    /// keys as usual. Runs on the caller's Tokio runtime (Actix's is one) with the shared client.
    ///
    /// [`Auth0Config::warm_up`](crate::Auth0Config::warm_up) does the same while the validator is
    /// built, so that [`crate::init_from_env`] returns with the keys cached; call this one when
    /// the validator is built elsewhere, or to warm up again.
    ///
    /// ```no_run
    /// # async fn start() -> Result<(), auth0_runtime::ConfigError> {
    /// let auth0 = auth0_runtime::init_from_env()?;
    /// if !auth0.warm_up().await.is_ready() {
    ///     eprintln!("starting without the signing keys: the first requests will fetch them");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn warm_up(&self) -> Readiness {
        let started = Instant::now();
        let wait = self.0.health.http_timeout;
        let outcomes = warm_all(&self.0.keys, &self.0.issuers, None, wait).await;
        report(&outcomes, started, wait);
        self.ready().await
    }
}

/// What one issuer's warm-up came to.
enum Outcome {
    Cached(usize),
    Failed(String),
    TimedOut,
}

/// Warms every issuer at once, each in a task of its own on the current runtime; waits until
/// `wait` has passed at most. With `client`, through that client ([`Via::WarmUp`]).
async fn warm_all(
    keys: &Arc<KeyStore>,
    issuers: &[String],
    client: Option<reqwest::Client>,
    wait: Duration,
) -> Vec<(String, Outcome)> {
    let warm = |issuer: String| {
        let (keys, client) = (Arc::clone(keys), client.clone());
        async move {
            let via = client.as_ref().map_or(Via::Shared, Via::WarmUp);
            keys.warm(&issuer, via, false).await
        }
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // No runtime to spawn onto: one after the other (each fetch has its own timeout).
        let mut outcomes = Vec::with_capacity(issuers.len());
        for issuer in issuers {
            let outcome = match warm(issuer.clone()).await {
                Ok(count) => Outcome::Cached(count),
                Err(error) => Outcome::Failed(error),
            };
            outcomes.push((issuer.clone(), outcome));
        }
        return outcomes;
    };
    let deadline = tokio::time::Instant::now() + wait;
    let tasks: Vec<_> = issuers
        .iter()
        .map(|issuer| (issuer.clone(), runtime.spawn(warm(issuer.clone()))))
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for (issuer, task) in tasks {
        let outcome = match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Ok(count))) => Outcome::Cached(count),
            Ok(Ok(Err(error))) => Outcome::Failed(error),
            Ok(Err(_)) => Outcome::Failed("the warm-up task ended abnormally".to_owned()),
            Err(_) => Outcome::TimedOut,
        };
        outcomes.push((issuer, outcome));
    }
    outcomes
}

/// One line per issuer that could not be warmed (warn), one for the whole (info).
fn report(outcomes: &[(String, Outcome)], started: Instant, wait: Duration) {
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (mut cached, mut keys) = (0, 0);
    for (issuer, outcome) in outcomes {
        match outcome {
            Outcome::Cached(count) => {
                cached += 1;
                keys += count;
            }
            Outcome::Failed(error) => tracing::warn!(
                target: "auth0_runtime",
                issuer = %issuer,
                error = %error,
                "warm-up: the signing keys could not be fetched; starting anyway, requests will fetch them"
            ),
            Outcome::TimedOut => tracing::warn!(
                target: "auth0_runtime",
                issuer = %issuer,
                timeout_s = wait.as_secs(),
                "warm-up: no signing keys within the HTTP timeout; starting anyway, requests will fetch them"
            ),
        }
    }
    tracing::info!(
        target: "auth0_runtime",
        cached,
        issuers = outcomes.len(),
        keys,
        duration_ms,
        "warm-up done"
    );
}

/// The startup warm-up (see the module docs): on a thread and runtime of their own, through
/// `client` (never the validator's shared client), waiting at most the HTTP timeout (plus
/// [`STARTUP_MARGIN`]). Never fails and never panics: problems are warnings.
pub(crate) fn warm_at_startup(auth0: &Auth0, client: reqwest::Client) {
    let wait = auth0.0.health.http_timeout;
    let keys = Arc::clone(&auth0.0.keys);
    let issuers = auth0.0.issuers.clone();
    let started = Instant::now();
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("auth0-warm-up".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = done.send(Err(error.to_string()));
                    return;
                }
            };
            let outcomes = runtime.block_on(warm_all(&keys, &issuers, Some(client), wait));
            let _ = done.send(Ok(outcomes));
            // Cancels what is left (an issuer past the deadline) without waiting for a DNS
            // lookup stuck in the blocking pool.
            runtime.shutdown_background();
        });
    if let Err(error) = spawned {
        tracing::warn!(target: "auth0_runtime", error = %error, "warm-up: could not start its thread; starting without it");
        return;
    }
    match outcome.recv_timeout(wait + STARTUP_MARGIN) {
        Ok(Ok(outcomes)) => report(&outcomes, started, wait),
        Ok(Err(error)) => {
            tracing::warn!(target: "auth0_runtime", error = %error, "warm-up: could not start its runtime; starting without it");
        }
        Err(_) => tracing::warn!(
            target: "auth0_runtime",
            timeout_s = wait.as_secs(),
            "warm-up: no answer within the HTTP timeout; starting anyway, requests will fetch the keys"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn issuer(keys: KeysState) -> IssuerReadiness {
        IssuerReadiness {
            issuer: "https://tenant.us.auth0.com/".to_owned(),
            keys,
            key_count: usize::from(keys != KeysState::Missing),
        }
    }

    #[test]
    fn ready_when_every_issuer_has_usable_keys_and_the_store_answers() {
        use KeysState::{Fresh, Missing, Stale};
        for (keys, store, ready) in [
            (vec![Fresh], StoreState::Ready, true),
            (vec![Fresh, Stale], StoreState::NotUsed, true),
            (vec![Fresh, Missing], StoreState::Ready, false),
            (vec![Fresh], StoreState::Unavailable, false),
            (vec![], StoreState::Ready, true),
        ] {
            let readiness = Readiness::new(keys.iter().copied().map(issuer).collect(), store);
            assert_eq!(readiness.is_ready(), ready, "{readiness:?}");
        }
    }

    #[test]
    fn it_renders_as_json() {
        let readiness = Readiness::new(vec![issuer(KeysState::Stale)], StoreState::NotUsed);
        assert_eq!(
            serde_json::to_value(&readiness).unwrap(),
            serde_json::json!({
                "ready": true,
                "issuers": [{"issuer": "https://tenant.us.auth0.com/", "keys": "stale", "key_count": 1}],
                "replay_store": "not_used",
            })
        );
    }
}
