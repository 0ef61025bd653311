//! The tenant's `token_endpoint`: from the discovery document the key store caches for the same
//! issuer (one fetch, one single flight, one back-off for keys and exchange alike).

use std::sync::Arc;

use super::error::ExchangeError;
use crate::keys::{DiscoveryError, KeyStore};

pub(crate) struct TokenEndpoint {
    /// `https://{domain}/`: what the discovery document must name, and the client assertion's
    /// `aud`.
    issuer: String,
}

impl TokenEndpoint {
    pub(crate) fn new(issuer: String) -> Self {
        Self { issuer }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint's URL. While the key store backs off from a failed discovery fetch,
    /// every caller gets that failure at once.
    pub(crate) async fn url(&self, keys: &Arc<KeyStore>) -> Result<Arc<str>, ExchangeError> {
        keys.token_endpoint(&self.issuer)
            .await
            .map_err(|error| match error {
                DiscoveryError::Timeout => ExchangeError::Timeout,
                DiscoveryError::Network => ExchangeError::Network,
                DiscoveryError::Unusable => {
                    ExchangeError::InvalidResponse("the tenant's discovery document is unusable")
                }
                DiscoveryError::NoTokenEndpoint => ExchangeError::InvalidResponse(
                    "the tenant's discovery document has no https token_endpoint",
                ),
            })
    }
}
