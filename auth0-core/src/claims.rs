//! The verified claims of an access token.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The authentication scheme a request used.
///
/// It displays and serializes as the scheme's name in the `Authorization` header: `Bearer` or
/// `DPoP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Authorization: Bearer …` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP …` with a proof (RFC 9449).
    Dpop,
}

impl Scheme {
    /// The scheme's name as in the `Authorization` header: `Bearer` or `DPoP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scheme {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The `aud` claim: one audience or several. It serializes as in the token: a string or an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Audience {
    /// `"aud": "https://api.example.com"`
    One(String),
    /// `"aud": ["https://api.example.com", "https://tenant.auth0.com/userinfo"]`
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }

    /// The audiences, in token order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Self::One(a) => (Some(a.as_str()), &[][..]),
            Self::Many(all) => (None, all.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// The `scope` claim, split on spaces (RFC 6749 §3.3). A missing or non-string `scope` is empty.
///
/// It serializes as the claim does: one string, the scopes joined by spaces (sorted, each once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.join(" "))
    }
}

impl Scopes {
    fn parse(raw: &str) -> Self {
        let mut all: Vec<String> = raw
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        all.sort_unstable();
        all.dedup();
        Self(all)
    }

    /// Whether the token has `scope` (exact, case-sensitive).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many distinct scopes the token has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the token has no scope at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The `act` claim (RFC 8693 §4.1): who is acting on behalf of the subject, possibly nested.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Actor {
    /// The acting party.
    pub sub: String,
    /// The party that acted before this one, if the delegation is chained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// The delegation chain, from the current actor to the earliest one.
    pub fn chain(&self) -> impl Iterator<Item = &Actor> {
        std::iter::successors(Some(self), |a| a.act.as_deref())
    }
}

/// The standard claims of a verified access token, shared by every [`Claims`] of the request.
///
/// Reach them through [`Claims`], which dereferences to this type: `claims.sub`, `claims.scope`.
///
/// It serializes as the token's payload: the claims the token had (`scope` one string, no empty
/// `scope` or `permissions`, absent options left out) and every other claim beside them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// Issuer: `https://{domain}/`.
    pub iss: String,
    /// Subject: the user (`auth0|…`) or the client (`…@clients`).
    pub sub: String,
    /// Audience(s).
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Not-before time, if any.
    pub nbf: Option<i64>,
    /// Authorized party: the client the token was issued to.
    pub azp: Option<String>,
    /// Token id.
    pub jti: Option<String>,
    /// Granted scopes.
    pub scope: Scopes,
    /// Auth0 RBAC permissions (a missing or malformed claim means none).
    pub permissions: Vec<String>,
    /// Auth0 organization id.
    pub org_id: Option<String>,
    /// The confirmation claim (`cnf`); `cnf.jkt` binds the token to a DPoP key.
    pub cnf: Option<Map<String, Value>>,
    /// The acting party in a delegation (token exchange).
    pub act: Option<Actor>,
    /// Every other claim.
    pub extra: Map<String, Value>,
}

impl TokenClaims {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// Whether the token grants every one of `scopes`.
    pub fn has_all_scopes<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        scopes.iter().all(|s| self.scope.contains(s.as_ref()))
    }

    /// Whether the token grants at least one of `scopes`.
    pub fn has_any_scope<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        scopes.iter().any(|s| self.scope.contains(s.as_ref()))
    }

    /// Whether the token carries the RBAC permission `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// A non-standard claim, deserialized: `claims.get::<Vec<String>>("https://example.com/roles")`.
    /// `None` when the claim is absent or has another shape.
    pub fn get<V: DeserializeOwned>(&self, name: &str) -> Option<V> {
        self.extra.get(name).and_then(|v| V::deserialize(v).ok())
    }

    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`), if any.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref()?.get("jkt")?.as_str()
    }

    /// The non-registered claims as `T`. The default `T`, the JSON map itself, is cloned rather
    /// than run through serde, which is several times cheaper for large tokens.
    pub(crate) fn custom<T: DeserializeOwned + 'static>(&self) -> Result<T, serde_json::Error> {
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Map<String, Value>>() {
            let map: Box<dyn std::any::Any> = Box::new(self.extra.clone());
            if let Ok(map) = map.downcast::<T>() {
                return Ok(*map);
            }
        }
        T::deserialize(&self.extra)
    }

    /// Parses a token payload. Wrong types of registered claims are refused; a non-string `scope`
    /// and a `permissions` that is not an array of strings mean none.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, &'static str> {
        serde_json::from_slice::<Wire>(payload)
            .map_err(|_| "the access token's claims are malformed")?
            .0
    }
}

impl Serialize for TokenClaims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Payload::new(self, &self.extra).serialize(serializer)
    }
}

/// A JWT payload: the registered claims of `token`, then `rest` (the other claims) flattened.
#[derive(Serialize)]
struct Payload<'a, R> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a Audience,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a Scopes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Actor>,
    #[serde(flatten)]
    rest: &'a R,
}

impl<'a, R> Payload<'a, R> {
    fn new(token: &'a TokenClaims, rest: &'a R) -> Self {
        Self {
            iss: &token.iss,
            sub: &token.sub,
            aud: &token.aud,
            exp: token.exp,
            iat: token.iat,
            nbf: token.nbf,
            azp: token.azp.as_deref(),
            jti: token.jti.as_deref(),
            scope: (!token.scope.is_empty()).then_some(&token.scope),
            permissions: (!token.permissions.is_empty()).then_some(token.permissions.as_slice()),
            org_id: token.org_id.as_deref(),
            cnf: token.cnf.as_ref(),
            act: token.act.as_ref(),
            rest,
        }
    }
}

/// One pass over the payload; every registered claim read leniently so that a wrong type becomes a
/// precise description instead of a generic parse error.
struct Wire(Result<TokenClaims, &'static str>);

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        let (mut iss, mut sub, mut aud, mut exp, mut iat, mut nbf) = (None, None, None, None, None, None);
        let (mut azp, mut jti, mut scope, mut permissions) = (None, None, Scopes::default(), Vec::new());
        let (mut org_id, mut cnf, mut act, mut extra) = (None, None, None, Map::new());
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: Value = map.next_value()?;
            match &*key {
                "iss" => iss = Some(value),
                "sub" => sub = Some(value),
                "aud" => aud = Some(value),
                "exp" => exp = Some(value),
                "iat" => iat = Some(value),
                "nbf" => nbf = Some(value),
                "azp" => azp = value.as_str().map(str::to_owned),
                "jti" => jti = value.as_str().map(str::to_owned),
                "scope" => scope = value.as_str().map(Scopes::parse).unwrap_or_default(),
                "permissions" => permissions = string_array(value).unwrap_or_default(),
                "org_id" => org_id = value.as_str().map(str::to_owned),
                "cnf" => cnf = Some(value),
                "act" => act = Some(value),
                _ => {
                    extra.insert(key.into_owned(), value);
                }
            }
        }
        Ok(Wire((|| {
            // A binding that is there but unreadable is refused, never read as "no binding".
            let cnf = match cnf {
                None => None,
                Some(Value::Object(m)) if m.get("jkt").is_none_or(Value::is_string) => Some(m),
                Some(_) => return Err("the access token's confirmation claim is malformed"),
            };
            let act = match act {
                None => None,
                Some(v) => {
                    Some(Actor::deserialize(v).map_err(|_| "the access token's actor claim is malformed")?)
                }
            };
            Ok(TokenClaims {
                iss: string(iss).ok_or("the access token has no valid issuer")?,
                sub: string(sub).ok_or("the access token has no valid subject")?,
                aud: match aud {
                    Some(Value::String(a)) => Audience::One(a),
                    Some(v @ Value::Array(_)) => {
                        Audience::Many(string_array(v).ok_or("the access token's audience is malformed")?)
                    }
                    _ => return Err("the access token has no valid audience"),
                },
                exp: numeric_date(exp.as_ref()).ok_or("the access token has no valid expiry")?,
                iat: numeric_date(iat.as_ref()).ok_or("the access token has no valid issue time")?,
                nbf: match nbf {
                    None => None,
                    v => Some(
                        numeric_date(v.as_ref()).ok_or("the access token's not-before time is malformed")?,
                    ),
                },
                azp,
                jti,
                scope,
                permissions,
                org_id,
                cnf,
                act,
                extra,
            })
        })()))
    }
}

fn string(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn string_array(v: Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// RFC 7519 NumericDate: a JSON number, possibly fractional (truncated to whole seconds).
pub(crate) fn numeric_date(v: Option<&Value>) -> Option<i64> {
    let n = match v? {
        Value::Number(n) => n,
        _ => return None,
    };
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

/// The verified claims of the request's access token: the handler's proof that the caller is
/// authenticated.
///
/// As an extractor it verifies the request (or reuses the verification `#[require_auth]` already
/// did). It dereferences to the standard [`TokenClaims`]; `T` receives the token's non-registered
/// claims, typed (any `Deserialize` type; by default the raw JSON map).
///
/// ```no_run
/// use actix_web::{get, Responder};
/// use auth0_runtime::{require_auth, Claims};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Custom {
///     #[serde(rename = "https://myapp.example.com/roles", default)]
///     roles: Vec<String>,
/// }
///
/// #[get("/api/me")]
/// #[require_auth]
/// async fn me(claims: Claims<Custom>) -> impl Responder {
///     format!("{} has roles {:?}", claims.sub, claims.custom().roles)
/// }
/// ```
///
/// For optional authentication use `Option<Claims>` under [`crate::RequireAuth::optional`]: see its
/// docs for why the middleware is needed.
///
/// With a `T: Serialize` it serializes as the token's payload (see [`TokenClaims`]), with `T`'s
/// fields in place of the other claims; the scheme, not a claim, is left out.
pub struct Claims<T = Map<String, Value>> {
    token: Arc<TokenClaims>,
    scheme: Scheme,
    custom: T,
}

impl<T> Claims<T> {
    pub(crate) fn new(token: Arc<TokenClaims>, scheme: Scheme, custom: T) -> Self {
        Self {
            token,
            scheme,
            custom,
        }
    }

    /// The token's non-registered claims, as `T`.
    pub fn custom(&self) -> &T {
        &self.custom
    }

    /// Takes the custom claims out.
    pub fn into_custom(self) -> T {
        self.custom
    }

    /// The scheme the request used: Bearer or DPoP.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The standard claims, shared (cheap to clone and keep beyond the request).
    pub fn token(&self) -> &Arc<TokenClaims> {
        &self.token
    }
}

impl<T> Deref for Claims<T> {
    type Target = TokenClaims;

    fn deref(&self) -> &TokenClaims {
        &self.token
    }
}

impl<T: Serialize> Serialize for Claims<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Payload::new(&self.token, &self.custom).serialize(serializer)
    }
}

impl<T: fmt::Debug> fmt::Debug for Claims<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("token", &self.token)
            .field("scheme", &self.scheme)
            .field("custom", &self.custom)
            .finish()
    }
}

impl<T: Clone> Clone for Claims<T> {
    fn clone(&self) -> Self {
        Self {
            token: self.token.clone(),
            scheme: self.scheme,
            custom: self.custom.clone(),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests;
