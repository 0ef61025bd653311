//! The request builders of the three flows, their validation (the reference SDK's rules, before any
//! I/O), their form fields and their cache keys.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;

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

/// Which flow a validated request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Connection,
    Exchange,
    OnBehalfOf,
}

impl Flow {
    /// The code of this flow's validation errors.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Connection => CONNECTION_CODE,
            Self::Exchange | Self::OnBehalfOf => EXCHANGE_CODE,
        }
    }

    /// The `error` reported when the endpoint refuses without one of its own.
    pub(crate) fn default_endpoint_code(self) -> &'static str {
        match self {
            Self::Connection => "connection_token_error",
            Self::Exchange | Self::OnBehalfOf => "token_exchange_error",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Exchange => "exchange",
            Self::OnBehalfOf => "on-behalf-of",
        }
    }
}

/// A checked request: its form fields in the reference SDK's order (client authentication added
/// by the sender), its cache key, and whether to bypass the cache.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) flow: Flow,
    /// Form fields, in order; `client_id` is filled by the sender where it belongs.
    pub(crate) fields: Vec<(&'static str, FieldValue)>,
    pub(crate) extra: Vec<(String, String)>,
    pub(crate) key: [u8; 32],
    pub(crate) force_refresh: bool,
    /// The subject token's `exp`, when it is a JWT that has one.
    subject_exp: Option<i64>,
    /// The actor token's `exp`, when there is one and it is a JWT that has one.
    actor_exp: Option<i64>,
}

impl Prepared {
    /// Refuses a subject or actor token that has expired by `now`, before the cache or the
    /// endpoint is asked: a cached answer must not outlive the token it was issued for, and the
    /// endpoint would refuse it anyway. 400 with the flow's code, as the other subject token rules.
    pub(crate) fn check_expiry(&self, now: i64) -> Result<(), ExchangeError> {
        let code = self.flow.code();
        if self.subject_exp.is_some_and(|exp| exp <= now) {
            return Err(ExchangeError::InvalidRequest {
                code,
                description: "subject_token has expired",
            });
        }
        if self.actor_exp.is_some_and(|exp| exp <= now) {
            return Err(ExchangeError::InvalidRequest {
                code,
                description: "actor_token has expired",
            });
        }
        Ok(())
    }

    /// The last second an answer may be reused: the earliest `exp` of the subject and actor
    /// tokens, if they are JWTs that have one.
    pub(crate) fn not_after(&self) -> Option<i64> {
        match (self.subject_exp, self.actor_exp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("flow", &self.flow)
            .field("force_refresh", &self.force_refresh)
            .finish_non_exhaustive()
    }
}

/// The value of a named form field.
#[derive(Clone)]
pub(crate) enum FieldValue {
    Text(String),
    Static(&'static str),
    Token(Arc<str>),
    /// The configured client id, filled by the sender.
    ClientId,
}

/// Digest of every input that changes the answer, in an unambiguous encoding.
struct KeyHasher(digest::Context);

impl KeyHasher {
    fn new(flow: Flow) -> Self {
        let mut hasher = Self(digest::Context::new(&digest::SHA256));
        hasher.part(flow.tag());
        hasher
    }

    /// A length-prefixed part.
    fn part(&mut self, value: &str) {
        self.0.update(&(value.len() as u64).to_be_bytes());
        self.0.update(value.as_bytes());
    }

    fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.0.update(&[1]);
                self.part(v);
            }
            None => self.0.update(&[0]),
        }
    }

    /// A token, by its own SHA-256.
    fn token(&mut self, token: &str) {
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        self.0.update(d.as_ref());
    }

    fn finish(self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// A value that counts only when not empty (the reference SDK sends falsy values not at all).
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A `scope` as sent and as keyed: its scope tokens sorted, without duplicates, joined by single
/// spaces (RFC 6749 §3.3: the order of the tokens does not matter). `None` when it holds no token.
///
/// Only RFC 6749 scope syntax is accepted: scope tokens of printable ASCII except `"` and `\\`,
/// separated by spaces. Any other character (a tab, a line break, non-ASCII) is refused rather than
/// read as a separator, so what is sent is exactly what the cache key holds.
fn normalize_scope(scope: Option<&str>, code: &'static str) -> Result<Option<String>, ExchangeError> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    if !scope
        .bytes()
        .all(|b| matches!(b, b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    {
        return Err(ExchangeError::InvalidRequest {
            code,
            description: "scope must be scope tokens separated by spaces (printable ASCII except '\"' and '\\')",
        });
    }
    let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    Ok((!scopes.is_empty()).then(|| scopes.join(" ")))
}

/// The `exp` of a token shaped like a compact JWS (three base64url segments, the second a JSON
/// object), read without verifying anything; `None` for an opaque token or one without a numeric
/// `exp`. Used only to stop reusing (and sending) a token that has expired, never to trust one.
fn unverified_exp(token: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: Option<f64>,
    }
    let mut segments = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return None;
    };
    let payload = crate::jws::decode(payload).ok()?;
    // A derived struct would also accept a JSON array.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let exp = serde_json::from_slice::<Exp>(&payload).ok()?.exp?;
    // `as` saturates; a fractional NumericDate is floored (at worst a second early).
    exp.is_finite().then(|| exp.floor() as i64)
}

/// The reference SDK's checks of a subject token: not blank, no surrounding whitespace, no
/// `Bearer ` prefix.
fn check_subject_token(token: &str, code: &'static str) -> Result<(), ExchangeError> {
    let invalid = |description| ExchangeError::InvalidRequest { code, description };
    if token.trim().is_empty() {
        return Err(invalid("subject_token cannot be blank or whitespace"));
    }
    if token.trim() != token {
        return Err(invalid(
            "subject_token must not include leading or trailing whitespace",
        ));
    }
    if token.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) {
        return Err(invalid(
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ));
    }
    Ok(())
}

impl ConnectionTokenRequest {
    pub(crate) fn prepare(&self) -> Result<Prepared, ExchangeError> {
        let flow = Flow::Connection;
        if self.connection.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "connection",
            });
        }
        let token = &self.subject_token.0;
        if token.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "access_token",
            });
        }
        check_subject_token(token, flow.code())?;
        let login_hint = present(&self.login_hint);
        let mut fields = vec![
            ("connection", FieldValue::Text(self.connection.clone())),
            ("requested_token_type", FieldValue::Static(FEDERATED_TOKEN_TYPE)),
            ("grant_type", FieldValue::Static(GRANT_FEDERATED)),
            ("client_id", FieldValue::ClientId),
            ("subject_token", FieldValue::Token(Arc::clone(token))),
            ("subject_token_type", FieldValue::Static(ACCESS_TOKEN_TYPE)),
        ];
        if let Some(hint) = login_hint {
            fields.push(("login_hint", FieldValue::Text(hint.to_owned())));
        }
        let mut key = KeyHasher::new(flow);
        key.token(token);
        key.part(&self.connection);
        key.optional(login_hint);
        Ok(Prepared {
            flow,
            fields,
            extra: Vec::new(),
            key: key.finish(),
            force_refresh: self.force_refresh,
            subject_exp: unverified_exp(token),
            actor_exp: None,
        })
    }
}

impl TokenExchangeRequest {
    pub(crate) fn prepare(&self, flow: Flow) -> Result<Prepared, ExchangeError> {
        let code = flow.code();
        let token = &self.subject_token.0;
        if token.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "subject_token",
            });
        }
        if self.subject_token_type.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "subject_token_type",
            });
        }
        check_subject_token(token, code)?;
        let invalid = |description| ExchangeError::InvalidRequest { code, description };
        if let Some((actor, actor_type)) = &self.actor {
            if actor.0.trim().is_empty() || actor.0.trim() != &*actor.0 {
                return Err(invalid(
                    "actor_token cannot be blank or include leading or trailing whitespace",
                ));
            }
            if actor_type.is_empty() {
                return Err(invalid("actor_token_type is required with actor_token"));
            }
        }
        let mut extra = Vec::new();
        for (name, value) in &self.extra {
            if RESERVED_PARAMETERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(invalid(
                    "an extra parameter uses a reserved name and cannot be overridden",
                ));
            }
            match &value.0 {
                ExtraKind::One(v) => extra.push((name.clone(), v.clone())),
                ExtraKind::Many(values) if values.len() > MAX_EXTRA_VALUES => {
                    return Err(invalid("an extra parameter exceeds the maximum of 20 values"));
                }
                ExtraKind::Many(values) => extra.extend(values.iter().map(|v| (name.clone(), v.clone()))),
                ExtraKind::Unsupported => {
                    return Err(invalid(
                        "an extra parameter has an unsupported value: only strings, numbers, booleans and lists of them are allowed",
                    ));
                }
            }
        }
        let audience = present(&self.audience);
        let scope = normalize_scope(present(&self.scope), code)?;
        let requested = present(&self.requested_token_type);
        let organization = present(&self.organization);
        let mut fields = vec![
            ("grant_type", FieldValue::Static(GRANT_TOKEN_EXCHANGE)),
            ("subject_token", FieldValue::Token(Arc::clone(token))),
            (
                "subject_token_type",
                FieldValue::Text(self.subject_token_type.clone()),
            ),
        ];
        let mut push = |name, value: Option<&str>| {
            if let Some(v) = value {
                fields.push((name, FieldValue::Text(v.to_owned())));
            }
        };
        push("audience", audience);
        push("scope", scope.as_deref());
        push("requested_token_type", requested);
        push("organization", organization);
        if let Some((actor, actor_type)) = &self.actor {
            fields.push(("actor_token", FieldValue::Token(Arc::clone(&actor.0))));
            fields.push(("actor_token_type", FieldValue::Text(actor_type.clone())));
        }

        let mut key = KeyHasher::new(flow);
        key.token(token);
        key.part(&self.subject_token_type);
        key.optional(audience);
        key.optional(scope.as_deref());
        key.optional(requested);
        key.optional(organization);
        match &self.actor {
            Some((actor, actor_type)) => {
                key.0.update(&[1]);
                key.token(&actor.0);
                key.part(actor_type);
            }
            None => key.0.update(&[0]),
        }
        let mut sorted: Vec<&(String, String)> = extra.iter().collect();
        // Stable: the values of one name keep their order.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        key.0.update(&(sorted.len() as u64).to_be_bytes());
        for (name, value) in sorted {
            key.part(name);
            key.part(value);
        }
        Ok(Prepared {
            flow,
            fields,
            extra,
            key: key.finish(),
            force_refresh: self.force_refresh,
            subject_exp: unverified_exp(token),
            actor_exp: self
                .actor
                .as_ref()
                .and_then(|(actor, _)| unverified_exp(&actor.0)),
        })
    }
}

impl OnBehalfOfRequest {
    pub(crate) fn prepare(&self) -> Result<Prepared, ExchangeError> {
        if self.audience.is_empty() {
            return Err(ExchangeError::MissingArgument { argument: "audience" });
        }
        TokenExchangeRequest::from(self.clone()).prepare(Flow::OnBehalfOf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
