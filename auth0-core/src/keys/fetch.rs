//! Fetching key sets over HTTP (and the capped JSON GET `discovery` uses too), under an issuer's
//! single flight, with back-off, stale fallback and the unknown-`kid` refetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONNECTION};
use serde_json::Value;

use super::entry::FlightState;
use super::jwk::parse_jwk;
use super::{KeyError, KeyMap, KeyStore, MAX_KEYS_PER_SET, MAX_LIFETIME, MIN_LIFETIME, VerifyingKey, Via};
use crate::http::{BodyError, MAX_RESPONSE_BYTES, max_age, read_capped};
use crate::observe::chain;

impl KeyStore {
    pub(super) async fn fetch_locked(
        &self,
        issuer: &str,
        kid: &str,
        state: &mut FlightState,
    ) -> Result<Arc<VerifyingKey>, KeyError> {
        let now = Instant::now();
        let jwks_uri = self.jwks_uri(issuer, now, state).await?;
        if let Some(set) = self
            .snapshot
            .load()
            .key_sets
            .get(&*jwks_uri)
            .filter(|set| set.fixed)
        {
            // A key set given at startup never changes: an unknown `kid` is unknown, no refetch.
            return set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid);
        }

        let (existing, fresh) = {
            let snapshot = self.snapshot.load();
            match snapshot.key_sets.get(&*jwks_uri) {
                Some(set) => (Some(Arc::clone(set)), now < set.refresh_at),
                None => (None, false),
            }
        };

        if let (Some(set), true) = (&existing, fresh) {
            if let Some(key) = set.keys.get(kid) {
                return Ok(Arc::clone(key));
            }
            // A fresh set without this kid: one refetch per cooldown (key rotation), never while
            // backing off from a failure.
            let cooling = state
                .last_kid_refetch
                .is_some_and(|at| now.saturating_duration_since(at) < self.settings.refetch_cooldown);
            if cooling || state.in_backoff(now) {
                return Err(KeyError::UnknownKid);
            }
            state.last_kid_refetch = Some(now);
            return match self.fetch_key_set(Via::Shared, issuer, &jwks_uri).await {
                Ok((keys, lifetime)) => {
                    state.succeeded();
                    let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                    keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                }
                Err(error) => {
                    tracing::warn!(target: "auth0_runtime", %issuer, url = %jwks_uri, error = %chain(&error), "refetching the key set for an unknown kid failed");
                    state.failed(Instant::now());
                    Err(KeyError::UnknownKid)
                }
            };
        }

        // Nothing fresh: fetch, or fall back to the stale set.
        let had_set = existing.is_some();
        let stale = existing.filter(|set| now < set.stale_until);
        if let Some(retry_at) = state.retry_at.filter(|at| now < *at) {
            let set = stale.ok_or(KeyError::Unavailable)?;
            self.extend_key_set(&jwks_uri, &set, retry_at);
            return set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid);
        }
        match self.fetch_key_set(Via::Shared, issuer, &jwks_uri).await {
            Ok((keys, lifetime)) => {
                state.succeeded();
                let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                let key = keys.get(kid).cloned();
                if key.is_none() {
                    // Just fetched: an immediate refetch for this kid would be pointless.
                    state.last_kid_refetch = Some(now);
                }
                key.ok_or(KeyError::UnknownKid)
            }
            Err(error) => {
                // Backing off counts from the failure, not from when the fetch began.
                let retry_at = state.failed(Instant::now());
                match stale {
                    Some(set) => {
                        tracing::warn!(target: "auth0_runtime", %issuer, url = %jwks_uri, error = %chain(&error), "refreshing the key set failed; serving the last good keys");
                        self.extend_key_set(&jwks_uri, &set, retry_at);
                        set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                    }
                    None => {
                        tracing::warn!(target: "auth0_runtime", %issuer, url = %jwks_uri, error = %chain(&error), "fetching the key set failed");
                        if had_set {
                            self.drop_key_set(&jwks_uri);
                        }
                        Err(KeyError::Unavailable)
                    }
                }
            }
        }
    }

    pub(super) async fn fetch_key_set(
        &self,
        via: Via<'_>,
        issuer: &str,
        url: &str,
    ) -> Result<(KeyMap, Duration), FetchError> {
        let started = Instant::now();
        let result = async {
            let (document, max_age) = self.get_json(via, url).await?;
            let keys = self.parse_key_set(&document)?;
            Ok((keys, self.lifetime(max_age)))
        }
        .await;
        fetched("key_set", issuer, url, started, result.as_ref().err());
        result
    }

    /// GET `url`, 200 only, body capped at [`MAX_RESPONSE_BYTES`], parsed as JSON.
    pub(super) async fn get_json(
        &self,
        via: Via<'_>,
        url: &str,
    ) -> Result<(Value, Option<Duration>), FetchError> {
        // The client panics outside a Tokio runtime; another framework's adapter may poll here.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(FetchError::NoRuntime);
        }
        let request = match via {
            Via::Shared => self.http.get(url),
            // Not pooled: the connection would belong to a runtime that goes away.
            Via::WarmUp(http) => http.get(url).header(CONNECTION, "close"),
        };
        let response = request.header(ACCEPT, "application/json").send().await?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max_age = max_age(response.headers());
        let body = read_capped(response).await.map_err(|error| match error {
            BodyError::TooLarge => FetchError::TooLarge,
            BodyError::Transport(e) => FetchError::Http(e),
        })?;
        let document = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)?;
        Ok((document, max_age))
    }

    pub(super) fn lifetime(&self, max_age: Option<Duration>) -> Duration {
        let ttl = self.settings.cache_ttl;
        max_age
            .map_or(ttl, |max_age| max_age.min(ttl))
            .clamp(MIN_LIFETIME, MAX_LIFETIME)
    }

    pub(super) fn parse_key_set(&self, document: &Value) -> Result<KeyMap, FetchError> {
        let jwks = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(FetchError::NotAKeySet)?;
        if jwks.len() > MAX_KEYS_PER_SET {
            tracing::warn!(
                target: "auth0_runtime",
                keys = jwks.len(),
                "key set has more keys than {MAX_KEYS_PER_SET}; the rest are ignored"
            );
        }
        let mut keys = KeyMap::new();
        for (index, jwk) in jwks.iter().take(MAX_KEYS_PER_SET).enumerate() {
            match parse_jwk(jwk, &self.settings.algorithms) {
                Ok(key) if keys.contains_key(&key.kid) => {
                    tracing::warn!(target: "auth0_runtime", index, kid = %key.kid, "skipping a key with a duplicate kid");
                }
                Ok(key) => {
                    keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(reason) => {
                    tracing::debug!(target: "auth0_runtime", index, reason, "skipping a key in the key set")
                }
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey);
        }
        Ok(keys)
    }
}

/// Why a fetch failed; logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error(
        "no Tokio runtime: the HTTP client needs one, so run the verification inside a Tokio runtime \
         (Actix and axum do)"
    )]
    NoRuntime,
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("response is not JSON")]
    NotJson,
    #[error("discovery document has no string `issuer`, or it differs from the expected issuer")]
    IssuerMismatch,
    #[error("discovery document has no https `jwks_uri`")]
    BadJwksUri,
    #[error("response is not a JWK set (no `keys` array)")]
    NotAKeySet,
    #[error("key set has no key usable with the allowed algorithms")]
    NoUsableKey,
}

pub(super) fn is_https_url(uri: &str) -> bool {
    reqwest::Url::parse(uri).is_ok_and(|url| url.scheme() == "https" && url.host().is_some())
}

/// The event (and metrics) of one fetch: issuer, URL, duration and outcome, with the error's whole
/// chain on failure.
pub(super) fn fetched(
    document: &'static str,
    issuer: &str,
    url: &str,
    started: Instant,
    error: Option<&FetchError>,
) {
    let took = started.elapsed();
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    match error {
        None => {
            tracing::debug!(target: "auth0_runtime", document, issuer, url, duration_ms, outcome = "success", "fetched")
        }
        Some(error) => tracing::debug!(
            target: "auth0_runtime",
            document,
            issuer,
            url,
            duration_ms,
            outcome = "failure",
            error = %chain(error),
            "fetch failed"
        ),
    }
    crate::observe::metrics::key_set_fetch(document, error.is_none(), took);
}
