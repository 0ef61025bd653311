//! The tenant's `token_endpoint`, from its discovery document, cached for min(`max-age`,
//! `cache_ttl`), fetched by one caller at a time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::ACCEPT;
use serde_json::Value;

use super::error::ExchangeError;
use crate::keys::MAX_RESPONSE_BYTES;

/// Shortest lifetime of a discovered endpoint.
const MIN_LIFETIME: Duration = Duration::from_secs(1);

pub(crate) struct TokenEndpoint {
    /// `https://{domain}/`: what the discovery document must name, and the client assertion's
    /// `aud`.
    issuer: String,
    ttl: Duration,
    cached: Mutex<Option<(Arc<str>, Instant)>>,
    fetching: tokio::sync::Mutex<()>,
}

impl TokenEndpoint {
    pub(crate) fn new(issuer: String, ttl: Duration) -> Self {
        Self {
            issuer,
            ttl,
            cached: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    fn fresh(&self) -> Option<Arc<str>> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(url, _)| Arc::clone(url))
    }

    /// The token endpoint's URL.
    pub(crate) async fn url(&self, http: &reqwest::Client) -> Result<Arc<str>, ExchangeError> {
        if let Some(url) = self.fresh() {
            return Ok(url);
        }
        let _turn = self.fetching.lock().await;
        if let Some(url) = self.fresh() {
            return Ok(url);
        }
        let (url, max_age) = self.fetch(http).await.inspect_err(|error| {
            tracing::warn!(issuer = %self.issuer, %error, "discovering the token endpoint failed");
        })?;
        let lifetime = max_age.map_or(self.ttl, |m| m.min(self.ttl)).max(MIN_LIFETIME);
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Arc::clone(&url), Instant::now() + lifetime));
        Ok(url)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(Arc<str>, Option<Duration>), ExchangeError> {
        let unusable = ExchangeError::InvalidResponse("the tenant's discovery document is unusable");
        let url = crate::keys::discovery_url(&self.issuer);
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ExchangeError::Timeout
            } else {
                ExchangeError::Network
            }
        };
        let mut response = http
            .get(&url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ExchangeError::Network);
        }
        let max_age = crate::keys::max_age(response.headers());
        if response
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > MAX_RESPONSE_BYTES))
        {
            return Err(unusable);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(unusable);
            }
            body.extend_from_slice(&chunk);
        }
        let document: Value = serde_json::from_slice(&body).map_err(|_| unusable.clone())?;
        if document.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(unusable);
        }
        let endpoint = document
            .get("token_endpoint")
            .and_then(Value::as_str)
            .filter(|u| reqwest::Url::parse(u).is_ok_and(|u| u.scheme() == "https" && u.host().is_some()))
            .ok_or(ExchangeError::InvalidResponse(
                "the tenant's discovery document has no https token_endpoint",
            ))?;
        Ok((Arc::from(endpoint), max_age))
    }
}
