//! The request builders of the three flows, their validation (the reference SDK's rules, before any
//! I/O), their form fields and their cache keys.

use std::fmt;
use std::sync::Arc;

use super::error::ExchangeError;

/// `grant_type` of Token Vault.
pub(crate) const GRANT_FEDERATED: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// `requested_token_type` of Token Vault.
pub(crate) const FEDERATED_TOKEN_TYPE: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";
/// `grant_type` of RFC 8693.
pub(crate) const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Code of the validation errors of Token Vault.
pub(crate) const CONNECTION_CODE: &str = "get_access_token_for_connection_error";
/// Code of the validation errors of token exchange and on-behalf-of.
pub(crate) const EXCHANGE_CODE: &str = "get_token_by_exchange_profile_error";

/// Most values of one `extra` parameter.
pub const MAX_EXTRA_VALUES: usize = 20;

/// Parameter names an `extra` may not use, compared ignoring case (the reference SDK's list).
pub const RESERVED_PARAMETERS: [&str; 21] = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "subject_issuer",
    "audience",
    "aud",
    "resource",
    "resources",
    "resource_indicator",
    "scope",
    "connection",
    "login_hint",
    "organization",
    "assertion",
];

/// A token handed to the token endpoint: shared, and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
struct Secret(Arc<str>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Secret {
    fn new(token: impl AsRef<str>) -> Self {
        Self(Arc::from(token.as_ref()))
    }
}

/// Stands for a value `Debug` must not print (a login hint is personal data).
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for ConnectionTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionTokenRequest")
            .field("connection", &self.connection)
            .field("subject_token", &self.subject_token)
            .field("login_hint", &self.login_hint.as_ref().map(|_| Redacted))
            .field("force_refresh", &self.force_refresh)
            .finish()
    }
}

impl fmt::Debug for TokenExchangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<&str> = self.extra.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("TokenExchangeRequest")
            .field("subject_token", &self.subject_token)
            .field("subject_token_type", &self.subject_token_type)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("requested_token_type", &self.requested_token_type)
            .field("organization", &self.organization)
            .field("actor_token", &self.actor.as_ref().map(|(token, _)| token))
            .field(
                "actor_token_type",
                &self.actor.as_ref().map(|(_, token_type)| token_type),
            )
            .field("extra", &extra)
            .field("force_refresh", &self.force_refresh)
            .finish()
    }
}

impl fmt::Debug for OnBehalfOfRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnBehalfOfRequest")
            .field("subject_token", &self.subject_token)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("force_refresh", &self.force_refresh)
            .finish()
    }
}

/// The value of one `extra` parameter: a scalar (sent as one field) or a list (sent as one field
/// per value, in order; at most [`MAX_EXTRA_VALUES`]).
///
/// Built from strings, integers, booleans (sent as `true` / `false`), vectors and arrays of those,
/// or a `serde_json::Value` (objects, `null` and nested arrays are refused when the request is
/// validated).
///
/// Its `Debug` output shows how many values it holds, never the values (they may be credentials of
/// the profile's Action).
#[derive(Clone, PartialEq)]
pub struct ExtraValue(ExtraKind);

impl fmt::Debug for ExtraValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ExtraKind::One(_) => f.write_str("ExtraValue(<1 value>)"),
            ExtraKind::Many(values) => write!(f, "ExtraValue(<{} values>)", values.len()),
            ExtraKind::Unsupported => f.write_str("ExtraValue(<unsupported>)"),
        }
    }
}

#[derive(Clone, PartialEq)]
enum ExtraKind {
    One(String),
    Many(Vec<String>),
    Unsupported,
}

impl From<&str> for ExtraValue {
    fn from(value: &str) -> Self {
        Self(ExtraKind::One(value.to_owned()))
    }
}

impl From<String> for ExtraValue {
    fn from(value: String) -> Self {
        Self(ExtraKind::One(value))
    }
}

impl From<&String> for ExtraValue {
    fn from(value: &String) -> Self {
        Self(ExtraKind::One(value.clone()))
    }
}

impl From<bool> for ExtraValue {
    fn from(value: bool) -> Self {
        Self(ExtraKind::One(value.to_string()))
    }
}

macro_rules! extra_from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for ExtraValue {
            fn from(value: $t) -> Self {
                Self(ExtraKind::One(value.to_string()))
            }
        }
    )*};
}
extra_from_integer!(i32, i64, u32, u64, usize);

impl<S: Into<String>> From<Vec<S>> for ExtraValue {
    fn from(values: Vec<S>) -> Self {
        Self(ExtraKind::Many(values.into_iter().map(Into::into).collect()))
    }
}

impl<S: Into<String>, const N: usize> From<[S; N]> for ExtraValue {
    fn from(values: [S; N]) -> Self {
        Self(ExtraKind::Many(values.into_iter().map(Into::into).collect()))
    }
}

impl From<serde_json::Value> for ExtraValue {
    fn from(value: serde_json::Value) -> Self {
        use serde_json::Value;
        fn scalar(value: Value) -> Option<String> {
            match value {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Null | Value::Array(_) | Value::Object(_) => None,
            }
        }
        Self(match value {
            Value::Array(values) => values
                .into_iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .map_or(ExtraKind::Unsupported, ExtraKind::Many),
            other => scalar(other).map_or(ExtraKind::Unsupported, ExtraKind::One),
        })
    }
}

/// A Token Vault request: the caller's access token exchanged for the access token of an upstream
/// identity provider (`connection`, e.g. `google-oauth2`) stored in Auth0's Token Vault. For
/// [`Auth0::token_for_connection`](crate::Auth0::token_for_connection).
///
/// ```
/// use auth0_runtime::ConnectionTokenRequest;
///
/// let request = ConnectionTokenRequest::new("google-oauth2", "eyJhbGciOi...")
///     .login_hint("alice@example.com");
/// # let _ = request;
/// ```
///
/// Its `Debug` output never shows the access token or the login hint (only whether one is set).
#[derive(Clone)]
#[must_use]
pub struct ConnectionTokenRequest {
    connection: String,
    subject_token: Secret,
    login_hint: Option<String>,
    force_refresh: bool,
}

impl ConnectionTokenRequest {
    /// Exchanges `access_token` (the caller's verified access token, e.g. from the
    /// [`AccessToken`](crate::AccessToken) extractor) for the token of `connection`.
    pub fn new(connection: impl Into<String>, access_token: impl AsRef<str>) -> Self {
        Self {
            connection: connection.into(),
            subject_token: Secret::new(access_token),
            login_hint: None,
            force_refresh: false,
        }
    }

    /// Which of the user's accounts at the provider (`login_hint`); sent when not empty.
    pub fn login_hint(mut self, login_hint: impl Into<String>) -> Self {
        self.login_hint = Some(login_hint.into());
        self
    }

    /// Ask the token endpoint even when an earlier answer is cached (the new one replaces it).
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

/// An RFC 8693 token exchange through a Custom Token Exchange profile of the tenant (selected by
/// `subject_token_type`). For [`Auth0::exchange_token`](crate::Auth0::exchange_token).
///
/// ```
/// use auth0_runtime::TokenExchangeRequest;
///
/// let request = TokenExchangeRequest::new("external-token", "urn:example:external-token")
///     .audience("https://backend.example.com")
///     .scope("read:data")
///     .extra("device_id", "d-42")
///     .extra("roles", ["admin", "auditor"]);
/// # let _ = request;
/// ```
///
/// Its `Debug` output never shows the subject or actor token, nor the values of the `extra`
/// parameters (only their names).
#[derive(Clone)]
#[must_use]
pub struct TokenExchangeRequest {
    subject_token: Secret,
    subject_token_type: String,
    audience: Option<String>,
    scope: Option<String>,
    requested_token_type: Option<String>,
    organization: Option<String>,
    actor: Option<(Secret, String)>,
    extra: Vec<(String, ExtraValue)>,
    force_refresh: bool,
}

impl TokenExchangeRequest {
    /// Exchanges `subject_token`, of type `subject_token_type` (a URI naming the profile).
    pub fn new(subject_token: impl AsRef<str>, subject_token_type: impl Into<String>) -> Self {
        Self {
            subject_token: Secret::new(subject_token),
            subject_token_type: subject_token_type.into(),
            audience: None,
            scope: None,
            requested_token_type: None,
            organization: None,
            actor: None,
            extra: Vec::new(),
            force_refresh: false,
        }
    }

    /// The API the new token is for (`audience`); sent when not empty.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Space-delimited scopes to request (`scope`); sent when not empty.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The type of token to issue (`requested_token_type`); sent when not empty.
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// The Auth0 Organization (`organization`, an `org_…` id or name) the token is for; sent when
    /// not empty. Not in the reference SDK, which cannot send it.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// The party acting for the subject (`actor_token` and `actor_token_type`, RFC 8693 §2.1).
    /// Not in the reference SDK, which cannot send them.
    pub fn actor_token(mut self, token: impl AsRef<str>, token_type: impl Into<String>) -> Self {
        self.actor = Some((Secret::new(token), token_type.into()));
        self
    }

    /// An additional form parameter for the profile's Action. Names in
    /// [`RESERVED_PARAMETERS`] (in any letter case) are refused, as are lists of more than
    /// [`MAX_EXTRA_VALUES`] values. The same name twice keeps the last value.
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<ExtraValue>) -> Self {
        let name = name.into();
        let value = value.into();
        match self.extra.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.extra.push((name, value)),
        }
        self
    }

    /// Ask the token endpoint even when an earlier answer is cached (the new one replaces it).
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

/// An on-behalf-of exchange: the caller's Auth0 access token for an Auth0 access token to a
/// downstream API (`audience`), for the same user. For
/// [`Auth0::token_on_behalf_of`](crate::Auth0::token_on_behalf_of).
///
/// ```
/// use auth0_runtime::OnBehalfOfRequest;
///
/// let request = OnBehalfOfRequest::new("eyJhbGciOi...", "https://billing.example.com")
///     .scope("read:invoices");
/// # let _ = request;
/// ```
///
/// Its `Debug` output never shows the access token.
#[derive(Clone)]
#[must_use]
pub struct OnBehalfOfRequest {
    subject_token: Secret,
    audience: String,
    scope: Option<String>,
    force_refresh: bool,
}

impl OnBehalfOfRequest {
    /// Exchanges `access_token` for a token to `audience`.
    pub fn new(access_token: impl AsRef<str>, audience: impl Into<String>) -> Self {
        Self {
            subject_token: Secret::new(access_token),
            audience: audience.into(),
            scope: None,
            force_refresh: false,
        }
    }

    /// Space-delimited scopes to request; sent when not empty.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Ask the token endpoint even when an earlier answer is cached (the new one replaces it).
    pub fn force_refresh(mut self, force: bool) -> Self {
        self.force_refresh = force;
        self
    }
}

impl From<OnBehalfOfRequest> for TokenExchangeRequest {
    fn from(obo: OnBehalfOfRequest) -> Self {
        TokenExchangeRequest {
            subject_token: obo.subject_token,
            subject_token_type: ACCESS_TOKEN_TYPE.to_owned(),
            audience: Some(obo.audience),
            scope: obo.scope,
            requested_token_type: Some(ACCESS_TOKEN_TYPE.to_owned()),
            organization: None,
            actor: None,
            extra: Vec::new(),
            force_refresh: obo.force_refresh,
        }
    }
}

mod prepare;

#[cfg(test)]
use prepare::unverified_exp;
pub(crate) use prepare::{FieldValue, Flow, Prepared};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
