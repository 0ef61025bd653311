//! Discovery: an issuer's `/.well-known/openid-configuration`, fetched and cached by the key
//! store, under the issuer's single flight and back-off. One document serves both halves: the
//! `jwks_uri` the key set comes from, and the `token_endpoint` token exchange posts to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::entry::{FlightState, IssuerEntry};
use super::fetch::{FetchError, fetched, is_https_url};
use super::{KeyError, KeyStore, Via};
use crate::observe::chain;

impl KeyStore {
    /// The `jwks_uri` of `issuer`: cached, fetched, or stale after a failed refresh.
    pub(super) async fn jwks_uri(
        &self,
        issuer: &str,
        now: Instant,
        state: &mut FlightState,
    ) -> Result<Arc<str>, KeyError> {
        match self.issuer_entry(issuer, now, state).await {
            Ok(entry) => Ok(Arc::clone(&entry.jwks_uri)),
            Err(_) => Err(KeyError::Unavailable),
        }
    }

    /// The discovery result of `issuer`: cached, fetched, or stale after a failed refresh. While
    /// backing off from a failure, callers get that failure without a fetch.
    pub(super) async fn issuer_entry(
        &self,
        issuer: &str,
        now: Instant,
        state: &mut FlightState,
    ) -> Result<Arc<IssuerEntry>, DiscoveryError> {
        let existing = self.snapshot.load().issuers.get(issuer).cloned();
        if let Some(entry) = &existing
            && now < entry.refresh_at
        {
            return Ok(Arc::clone(entry));
        }
        let stale = existing.filter(|entry| now < entry.stale_until);
        if let Some(retry_at) = state.retry_at.filter(|at| now < *at) {
            let entry = stale.ok_or(state.discovery_failure.unwrap_or(DiscoveryError::Network))?;
            self.extend_issuer(issuer, &entry, retry_at);
            return Ok(entry);
        }
        match self.fetch_discovery(Via::Shared, issuer).await {
            Ok(discovered) => Ok(self.store_issuer(issuer, discovered)),
            Err(error) => {
                // Backing off counts from the failure, not from when the fetch began.
                let retry_at = state.failed(Instant::now());
                state.discovery_failure = Some(DiscoveryError::from(&error));
                match stale {
                    Some(entry) => {
                        tracing::warn!(target: "auth0_runtime", %issuer, error = %chain(&error), "refreshing the discovery document failed; using the last good one");
                        self.extend_issuer(issuer, &entry, retry_at);
                        Ok(entry)
                    }
                    None => {
                        tracing::warn!(target: "auth0_runtime", %issuer, error = %chain(&error), "fetching the discovery document failed");
                        Err(DiscoveryError::from(&error))
                    }
                }
            }
        }
    }

    pub(super) async fn fetch_discovery(&self, via: Via<'_>, issuer: &str) -> Result<Discovered, FetchError> {
        let url = discovery_url(issuer);
        let started = Instant::now();
        let result = self.discovery_at(via, issuer, &url).await;
        fetched("discovery", issuer, &url, started, result.as_ref().err());
        result
    }

    pub(super) async fn discovery_at(
        &self,
        via: Via<'_>,
        issuer: &str,
        url: &str,
    ) -> Result<Discovered, FetchError> {
        let (document, max_age) = self.get_json(via, url).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(FetchError::IssuerMismatch);
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|uri| is_https_url(uri))
            .ok_or(FetchError::BadJwksUri)?;
        let token_endpoint = document
            .get("token_endpoint")
            .and_then(Value::as_str)
            .filter(|uri| is_https_url(uri))
            .map(Arc::from);
        Ok(Discovered {
            jwks_uri: Arc::from(jwks_uri),
            token_endpoint,
            lifetime: self.lifetime(max_age),
        })
    }

    /// The https `token_endpoint` of `issuer`'s discovery document: from the same cached document
    /// as its keys, fetched under the same single flight and back-off. Like a key fetch, the work
    /// runs in a task of its own: dropping this future only stops waiting for it.
    pub(crate) async fn token_endpoint(self: &Arc<Self>, issuer: &str) -> Result<Arc<str>, DiscoveryError> {
        let now = Instant::now();
        if let Some(entry) = self.snapshot.load().issuers.get(issuer)
            && now < entry.refresh_at
        {
            return entry
                .token_endpoint
                .clone()
                .ok_or(DiscoveryError::NoTokenEndpoint);
        }
        let (store, issuer) = (Arc::clone(self), issuer.to_owned());
        let work = async move {
            let flight = store.flight(&issuer);
            let mut state = flight.lock().await;
            let entry = store.issuer_entry(&issuer, Instant::now(), &mut state).await?;
            entry
                .token_endpoint
                .clone()
                .ok_or(DiscoveryError::NoTokenEndpoint)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(work).await.unwrap_or(Err(DiscoveryError::Network)),
            Err(_) => work.await,
        }
    }
}

/// Why an issuer's discovery document is not at hand: what token exchange reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryError {
    /// The tenant did not answer in time.
    Timeout,
    /// The tenant could not be reached, or answered with an error status.
    Network,
    /// The document is not a discovery document for this issuer.
    Unusable,
    /// The document names no https `token_endpoint`.
    NoTokenEndpoint,
}

impl From<&FetchError> for DiscoveryError {
    fn from(error: &FetchError) -> Self {
        match error {
            FetchError::Http(e) if e.is_timeout() => Self::Timeout,
            FetchError::Http(_) | FetchError::Status(_) => Self::Network,
            _ => Self::Unusable,
        }
    }
}

/// What a discovery document gave.
#[derive(Debug)]
pub(super) struct Discovered {
    pub(super) jwks_uri: Arc<str>,
    pub(super) token_endpoint: Option<Arc<str>>,
    pub(super) lifetime: Duration,
}

pub(crate) fn discovery_url(issuer: &str) -> String {
    if issuer.ends_with('/') {
        format!("{issuer}.well-known/openid-configuration")
    } else {
        format!("{issuer}/.well-known/openid-configuration")
    }
}
