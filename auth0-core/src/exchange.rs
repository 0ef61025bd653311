//! Token exchange: the outbound half of acting on behalf of the caller.
//!
//! Three flows at the tenant's token endpoint (discovered from `AUTH0_DOMAIN`), with the reference
//! SDK's wire format and rules:
//! - Token Vault ([`Auth0::token_for_connection`]): the caller's access token for an upstream
//!   provider's access token;
//! - RFC 8693 token exchange through a Custom Token Exchange profile ([`Auth0::exchange_token`]);
//! - on-behalf-of ([`Auth0::token_on_behalf_of`]): the caller's access token for an access token to
//!   a downstream API.
//!
//! Inputs are validated before any I/O ([`request`]); the client authenticates with
//! `client_secret_basic` or `private_key_jwt` ([`client_auth`]); answers are parsed into typed
//! results ([`response`]) and cached until 60 s before they expire, and never past the `exp` of
//! the subject (or actor) token they were issued for ([`cache`]).

mod cache;
mod client_auth;
mod error;
mod request;
mod response;
mod token_endpoint;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

pub use client_auth::ClientAssertionKey;
pub use error::ExchangeError;
pub use request::{
    ConnectionTokenRequest, ExtraValue, MAX_EXTRA_VALUES, OnBehalfOfRequest, RESERVED_PARAMETERS,
    TokenExchangeRequest,
};
pub use response::{ConnectionToken, ExchangedToken, OnBehalfOfToken, SecretToken};

use crate::answer::ConfigError;
use crate::auth0::Auth0;
use crate::clock::now;
use crate::domain::normalize_domain;
use crate::http::BodyError;
use crate::keys::KeyStore;
use cache::ExchangeCache;
use request::{FieldValue, Flow, Prepared};
use response::Issued;
use token_endpoint::TokenEndpoint;

/// Most entries of the exchanged-token cache.
const MAX_CACHE_ENTRIES: usize = 1_000_000;

/// The exchange side of a validator: client credentials, the token endpoint, the cache.
pub(crate) struct Exchange {
    client: Option<Client>,
    http: reqwest::Client,
    endpoint: Option<TokenEndpoint>,
    cache: ExchangeCache,
}

/// The configured client and how it authenticates.
struct Client {
    id: String,
    auth: ClientAuth,
}

enum ClientAuth {
    /// `client_secret_basic`; the `Authorization` value, computed once.
    Basic(String),
    /// `private_key_jwt`.
    Assertion(ClientAssertionKey),
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.client.as_ref().map(|c| &c.auth) {
            None => "none",
            Some(ClientAuth::Basic(_)) => "client_secret_basic",
            Some(ClientAuth::Assertion(_)) => "private_key_jwt",
        };
        f.debug_struct("Exchange")
            .field("client_id", &self.client.as_ref().map(|c| &c.id))
            .field("client_authentication", &auth)
            .finish_non_exhaustive()
    }
}

/// What the exchange side is built from: the validator's exchange settings, handed over by
/// `Auth0::new`.
pub(crate) struct Settings<'a> {
    pub(crate) client_id: Option<&'a str>,
    pub(crate) client_secret: Option<&'a str>,
    pub(crate) client_assertion_key: Option<&'a ClientAssertionKey>,
    /// `AUTH0_DOMAIN` when exchange names one of its own.
    pub(crate) exchange_domain: Option<&'a str>,
    /// The configured domains: a single one is the tenant exchange calls.
    pub(crate) domains: &'a [String],
    pub(crate) exchange_cache_entries: usize,
}

impl Exchange {
    /// Checks the exchange settings; `http` is the validator's shared client.
    pub(crate) fn new(config: Settings<'_>, http: reqwest::Client) -> Result<Self, ConfigError> {
        if config.exchange_cache_entries > MAX_CACHE_ENTRIES {
            return Err(ConfigError::Invalid {
                var: "AUTH0_EXCHANGE_CACHE_ENTRIES",
                problem: format!(
                    "must be at most {MAX_CACHE_ENTRIES}, like 1000 (0 turns the cache off), not {}",
                    config.exchange_cache_entries
                ),
            });
        }
        let secret = config.client_secret;
        let key = config.client_assertion_key;
        let client = match (config.client_id, secret, key) {
            (None, None, None) => None,
            (Some(_), Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    var: "AUTH0_CLIENT_ASSERTION_KEY",
                    problem: "and AUTH0_CLIENT_SECRET are both set: set one, the key for private_key_jwt \
                              or the secret for client_secret_basic"
                        .to_owned(),
                });
            }
            (Some(id), Some(secret), None) => Some(Client {
                id: id.to_owned(),
                auth: ClientAuth::Basic(client_auth::basic_authorization(id, secret)),
            }),
            (Some(id), None, Some(key)) => {
                key.check()?;
                Some(Client {
                    id: id.to_owned(),
                    auth: ClientAuth::Assertion(key.clone()),
                })
            }
            (Some(_), None, None) => {
                return Err(ConfigError::Invalid {
                    var: "AUTH0_CLIENT_SECRET",
                    problem: "and AUTH0_CLIENT_ID go together: set AUTH0_CLIENT_SECRET (or \
                              AUTH0_CLIENT_ASSERTION_KEY for private_key_jwt) with AUTH0_CLIENT_ID, or \
                              none of them"
                        .to_owned(),
                });
            }
            (None, _, _) => {
                return Err(ConfigError::Missing {
                    var: "AUTH0_CLIENT_ID",
                    hint: "a client secret or assertion key is set: set AUTH0_CLIENT_ID to the \
                           application's client id as well (for token exchange)",
                });
            }
        };
        let domain = config.exchange_domain.or(match config.domains {
            [only] => Some(only.as_str()),
            _ => None,
        });
        let endpoint = match (&client, domain) {
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "AUTH0_DOMAIN",
                    hint: "token exchange (AUTH0_CLIENT_ID) needs the tenant's domain, whose token \
                           endpoint it calls: set AUTH0_DOMAIN (next to AUTH0_DOMAINS), like \
                           tenant.us.auth0.com",
                });
            }
            (_, Some(domain)) => {
                let host = normalize_domain("AUTH0_DOMAIN", domain)?;
                Some(TokenEndpoint::new(format!("https://{host}/")))
            }
            (None, None) => None,
        };
        Ok(Self {
            client,
            http,
            endpoint,
            cache: ExchangeCache::new(config.exchange_cache_entries),
        })
    }
}

impl Exchange {
    /// The issuer whose token endpoint is called, if exchange is configured: the key store keeps
    /// its discovery document like a configured domain's.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.endpoint.as_ref().map(TokenEndpoint::issuer)
    }
}

impl Auth0 {
    /// Token Vault: exchanges the caller's access token for the access token of an upstream
    /// identity provider (`connection`) stored in Auth0's Token Vault (the reference SDK's
    /// `get_access_token_for_connection`).
    ///
    /// Needs client credentials (`AUTH0_CLIENT_ID` with `AUTH0_CLIENT_SECRET` or
    /// `AUTH0_CLIENT_ASSERTION_KEY`). The answer is cached until 60 s before it expires (see
    /// [`Auth0Config::exchange_cache_entries`](crate::Auth0Config::exchange_cache_entries)).
    ///
    /// ```no_run
    /// use actix_web::{get, web, Responder};
    /// use auth0_runtime::{require_auth, AccessToken, Auth0, ConnectionTokenRequest, ExchangeError};
    ///
    /// #[get("/api/calendar")]
    /// #[require_auth]
    /// async fn calendar(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
    ///     let google = auth0
    ///         .token_for_connection(ConnectionTokenRequest::new("google-oauth2", &token))
    ///         .await?;
    ///     // Call the provider's API with `google.access_token.expose()`.
    ///     Ok(web::Json(serde_json::json!({"scope": google.scope})))
    /// }
    /// ```
    ///
    /// # Errors
    /// An [`ExchangeError`]: invalid input (before any I/O), missing credentials, or the token
    /// endpoint's refusal or failure.
    pub async fn token_for_connection(
        &self,
        request: ConnectionTokenRequest,
    ) -> Result<ConnectionToken, ExchangeError> {
        let prepared = request.prepare()?;
        self.run(prepared).await.map(ConnectionToken::from)
    }

    /// RFC 8693 token exchange through a Custom Token Exchange profile (the reference SDK's
    /// `get_token_by_exchange_profile`). The form carries no `client_id`: the client authenticates
    /// with Basic (or a client assertion), as in the reference SDK.
    ///
    /// # Errors
    /// As [`Auth0::token_for_connection`], plus reserved or oversized `extra` parameters.
    pub async fn exchange_token(
        &self,
        request: TokenExchangeRequest,
    ) -> Result<ExchangedToken, ExchangeError> {
        let prepared = request.prepare(Flow::Exchange)?;
        self.run(prepared).await.map(ExchangedToken::from)
    }

    /// On-behalf-of: exchanges the caller's Auth0 access token for an Auth0 access token to a
    /// downstream API (`audience`), for the same user (the reference SDK's
    /// `get_token_on_behalf_of`: RFC 8693 with both token types
    /// `urn:ietf:params:oauth:token-type:access_token`).
    ///
    /// ```no_run
    /// use actix_web::{get, web, Responder};
    /// use auth0_runtime::{require_auth, AccessToken, Auth0, ExchangeError, OnBehalfOfRequest};
    ///
    /// #[get("/api/invoices")]
    /// #[require_auth]
    /// async fn invoices(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
    ///     let billing = auth0
    ///         .token_on_behalf_of(
    ///             OnBehalfOfRequest::new(&token, "https://billing.example.com").scope("read:invoices"),
    ///         )
    ///         .await?;
    ///     Ok(web::Json(serde_json::json!({"expires_in": billing.expires_in})))
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Auth0::token_for_connection`].
    pub async fn token_on_behalf_of(
        &self,
        request: OnBehalfOfRequest,
    ) -> Result<OnBehalfOfToken, ExchangeError> {
        let prepared = request.prepare()?;
        self.run(prepared).await.map(OnBehalfOfToken::from)
    }

    /// The tokens' expiry, credentials, then the cache, then the endpoint.
    async fn run(&self, prepared: Prepared) -> Result<Issued, ExchangeError> {
        prepared.check_expiry(now())?;
        let exchange = &self.0.exchange;
        let (Some(client), Some(endpoint)) = (&exchange.client, &exchange.endpoint) else {
            tracing::error!(
                target: "auth0_runtime",
                "token exchange was called but no client credentials are configured: set \
                 AUTH0_CLIENT_ID with AUTH0_CLIENT_SECRET or AUTH0_CLIENT_ASSERTION_KEY"
            );
            return Err(ExchangeError::NotConfigured {
                code: prepared.flow.code(),
            });
        };
        let fetch = || send(&exchange.http, &self.0.keys, client, endpoint, &prepared);
        let issued = exchange
            .cache
            .get_or_fetch(
                prepared.key,
                prepared.force_refresh,
                prepared.not_after(),
                now,
                fetch,
            )
            .await?;
        Ok(issued.at(now()))
    }
}

fn transport_error(error: &reqwest::Error) -> ExchangeError {
    if error.is_timeout() {
        ExchangeError::Timeout
    } else {
        ExchangeError::Network
    }
}

/// One POST to the token endpoint, and its answer checked.
async fn send(
    http: &reqwest::Client,
    keys: &Arc<KeyStore>,
    client: &Client,
    endpoint: &TokenEndpoint,
    prepared: &Prepared,
) -> Result<Issued, ExchangeError> {
    let flow = prepared.flow;
    // The client panics outside a Tokio runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::error!(
            target: "auth0_runtime",
            flow = ?flow,
            "a token exchange ran outside a Tokio runtime, which the HTTP client needs: run it inside one"
        );
        return Err(ExchangeError::Network);
    }
    let url = endpoint.url(keys).await?;
    let assertion = match &client.auth {
        ClientAuth::Basic(_) => None,
        ClientAuth::Assertion(key) => Some(
            key.assertion(&client.id, endpoint.issuer(), now())
                .ok_or(ExchangeError::Internal("signing the client assertion failed"))?,
        ),
    };
    let mut fields: Vec<(&str, &str)> = prepared
        .fields
        .iter()
        .map(|(name, value)| {
            let value: &str = match value {
                FieldValue::Text(v) => v,
                FieldValue::Static(v) => v,
                FieldValue::Token(v) => v,
                FieldValue::ClientId => &client.id,
            };
            (*name, value)
        })
        .collect();
    fields.extend(prepared.extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    if let Some(assertion) = &assertion {
        fields.push(("client_assertion_type", client_auth::ASSERTION_TYPE));
        fields.push(("client_assertion", assertion));
    }
    let mut request = http
        .post(url.as_ref())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(client_auth::form_urlencode(fields));
    if let ClientAuth::Basic(authorization) = &client.auth {
        request = request.header(AUTHORIZATION, authorization);
    }
    let started = std::time::Instant::now();
    let response = request.send().await.map_err(|e| {
        let error = transport_error(&e);
        tracing::warn!(target: "auth0_runtime", flow = ?flow, error = %e, "the token endpoint request failed");
        error
    })?;
    let status = response.status().as_u16();
    let json_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let body = read_capped(response).await?;
    let elapsed = started.elapsed();
    if (200..300).contains(&status) {
        tracing::debug!(target: "auth0_runtime", flow = ?flow, status, ?elapsed, "token exchanged");
        return response::parse_success(&body, now());
    }
    Err(refusal(flow, status, json_type, &body, elapsed))
}

/// The error for a non-2xx answer: the endpoint's own code, description and status, except for a
/// refusal of this API's client authentication.
fn refusal(flow: Flow, status: u16, json_type: bool, body: &[u8], elapsed: Duration) -> ExchangeError {
    let document: Option<serde_json::Value> = json_type.then(|| serde_json::from_slice(body).ok()).flatten();
    let member = |name: &str| {
        document
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(serde_json::Value::as_str)
    };
    let code = member("error").and_then(error::endpoint_code);
    if status == 401 || code.as_deref() == Some("invalid_client") {
        tracing::error!(
            target: "auth0_runtime",
            flow = ?flow,
            status,
            error = code.as_deref().unwrap_or("none"),
            "the token endpoint refused this API's client authentication: check AUTH0_CLIENT_ID and \
             AUTH0_CLIENT_SECRET / AUTH0_CLIENT_ASSERTION_KEY, and that the application may use this grant"
        );
        return ExchangeError::ClientRejected {
            status,
            error: code.unwrap_or_else(|| "invalid_client".to_owned()),
        };
    }
    let error = ExchangeError::Endpoint {
        status: if (400..600).contains(&status) { status } else { 502 },
        error: code.unwrap_or_else(|| flow.default_endpoint_code().to_owned()),
        description: member("error_description").and_then(error::endpoint_description),
    };
    if status >= 500 {
        tracing::warn!(target: "auth0_runtime", flow = ?flow, status, ?elapsed, %error, "the token endpoint failed");
    } else {
        tracing::debug!(target: "auth0_runtime", flow = ?flow, status, ?elapsed, %error, "the token endpoint refused the exchange");
    }
    error
}

/// The body, at most [`MAX_RESPONSE_BYTES`](crate::http::MAX_RESPONSE_BYTES), with its failures
/// in the exchange's terms.
async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, ExchangeError> {
    crate::http::read_capped(response)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => ExchangeError::InvalidResponse("the token endpoint's answer is too large"),
            BodyError::Transport(e) => transport_error(&e),
        })
}
