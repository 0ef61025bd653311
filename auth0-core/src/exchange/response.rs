//! The typed results of the three flows, and the parsing of the token endpoint's answer (the
//! reference SDK's rules).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::ExchangeError;

/// `expires_in` assumed when the endpoint sends none (the reference SDK's default).
const DEFAULT_EXPIRES_IN: u64 = 3600;
/// Longest `expires_in` believed, in seconds (the key store's longest document lifetime, 366 days):
/// a larger value is reported, and cached, as this. Keeps `expires_at` meaningful and stops an
/// absurd answer from pinning a cache entry for ever.
pub(crate) const MAX_EXPIRES_IN: u64 = crate::keys::MAX_LIFETIME.as_secs();

/// A token from the token endpoint. Its `Debug` output is redacted; read it with
/// [`SecretToken::expose`] where it is sent on.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(Arc<str>);

impl SecretToken {
    /// The token itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// What the endpoint answered, checked: shared by the three flows and by the cache.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_token: SecretToken,
    pub(crate) expires_in: u64,
    pub(crate) expires_at: i64,
    pub(crate) scope: Option<String>,
    pub(crate) token_type: Option<String>,
    pub(crate) issued_token_type: Option<String>,
    pub(crate) id_token: Option<SecretToken>,
    pub(crate) refresh_token: Option<SecretToken>,
}

impl Issued {
    /// Seen at `now`: `expires_in` is what is left of the lifetime (a cache hit is older than the
    /// answer).
    pub(crate) fn at(&self, now: i64) -> Self {
        let mut issued = self.clone();
        issued.expires_in = u64::try_from(self.expires_at.saturating_sub(now))
            .unwrap_or(0)
            .min(self.expires_in);
        issued
    }
}

/// The upstream provider's access token from Token Vault
/// ([`Auth0::token_for_connection`](crate::Auth0::token_for_connection)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionToken {
    /// The provider's access token.
    pub access_token: SecretToken,
    /// Seconds it is valid for (what is left of it, when served from the cache): the endpoint's
    /// `expires_in`, at most 366 days.
    pub expires_in: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// The scopes granted at the provider (empty when the endpoint sent none, as in the reference
    /// SDK).
    pub scope: String,
    /// `token_type`, if the endpoint sent one.
    pub token_type: Option<String>,
    /// `issued_token_type`, if the endpoint sent one.
    pub issued_token_type: Option<String>,
}

/// The tokens from an RFC 8693 exchange ([`Auth0::exchange_token`](crate::Auth0::exchange_token)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExchangedToken {
    /// The access token.
    pub access_token: SecretToken,
    /// Seconds it is valid for (what is left of it, when served from the cache): the endpoint's
    /// `expires_in`, at most 366 days.
    pub expires_in: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// `scope`, if the endpoint sent it.
    pub scope: Option<String>,
    /// `token_type` (typically `Bearer`), if the endpoint sent it.
    pub token_type: Option<String>,
    /// `issued_token_type`, if the endpoint sent it.
    pub issued_token_type: Option<String>,
    /// An OpenID Connect ID token, if the endpoint sent one.
    pub id_token: Option<SecretToken>,
    /// A refresh token, if the endpoint sent one.
    pub refresh_token: Option<SecretToken>,
}

/// The access token for a downstream API
/// ([`Auth0::token_on_behalf_of`](crate::Auth0::token_on_behalf_of)). Never carries an ID or
/// refresh token, as in the reference SDK.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OnBehalfOfToken {
    /// The access token for the downstream API.
    pub access_token: SecretToken,
    /// Seconds it is valid for (what is left of it, when served from the cache): the endpoint's
    /// `expires_in`, at most 366 days.
    pub expires_in: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// `scope`, if the endpoint sent it.
    pub scope: Option<String>,
    /// `token_type` (typically `Bearer`), if the endpoint sent it.
    pub token_type: Option<String>,
    /// `issued_token_type`, if the endpoint sent it.
    pub issued_token_type: Option<String>,
}

impl From<Issued> for ConnectionToken {
    fn from(i: Issued) -> Self {
        Self {
            access_token: i.access_token,
            expires_in: i.expires_in,
            expires_at: i.expires_at,
            scope: i.scope.unwrap_or_default(),
            token_type: i.token_type,
            issued_token_type: i.issued_token_type,
        }
    }
}

impl From<Issued> for ExchangedToken {
    fn from(i: Issued) -> Self {
        Self {
            access_token: i.access_token,
            expires_in: i.expires_in,
            expires_at: i.expires_at,
            scope: i.scope,
            token_type: i.token_type,
            issued_token_type: i.issued_token_type,
            id_token: i.id_token,
            refresh_token: i.refresh_token,
        }
    }
}

impl From<Issued> for OnBehalfOfToken {
    fn from(i: Issued) -> Self {
        Self {
            access_token: i.access_token,
            expires_in: i.expires_in,
            expires_at: i.expires_at,
            scope: i.scope,
            token_type: i.token_type,
            issued_token_type: i.issued_token_type,
        }
    }
}

/// Parses a 2xx body received at `now`.
pub(crate) fn parse_success(body: &[u8], now: i64) -> Result<Issued, ExchangeError> {
    let document: Value = serde_json::from_slice(body).map_err(|_| ExchangeError::InvalidJson)?;
    let Value::Object(map) = document else {
        return Err(ExchangeError::InvalidResponse(
            "the token endpoint's answer is not a JSON object",
        ));
    };
    let access_token = match map.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => SecretToken(Arc::from(token.as_str())),
        _ => {
            return Err(ExchangeError::InvalidResponse(
                "missing or invalid access_token in the token endpoint's answer",
            ));
        }
    };
    let expires_in = match map.get("expires_in") {
        None => DEFAULT_EXPIRES_IN,
        Some(value) => expires_in(value).ok_or(ExchangeError::InvalidResponse(
            "expires_in in the token endpoint's answer is not a non-negative integer",
        ))?,
    }
    .min(MAX_EXPIRES_IN);
    let text = |name: &str| string(&map, name);
    let secret = |name: &str| {
        string(&map, name)
            .filter(|t| !t.is_empty())
            .map(|t| SecretToken(Arc::from(t)))
    };
    Ok(Issued {
        access_token,
        expires_in,
        expires_at: now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
        scope: text("scope"),
        token_type: text("token_type"),
        issued_token_type: text("issued_token_type"),
        id_token: secret("id_token"),
        refresh_token: secret("refresh_token"),
    })
}

fn string(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// `expires_in` as the reference SDK reads it (`int(value)`, then non-negative): an integer, or a
/// string of one (surrounding whitespace and a `+` allowed); a float only when it has no fraction.
/// Negative, fractional, boolean, `null` and other values are refused. An integer too large for
/// `u64` saturates (the caller clamps to [`MAX_EXPIRES_IN`] anyway).
fn expires_in(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            // `as` saturates at `u64::MAX`.
            (f.fract() == 0.0 && f >= 0.0).then_some(f as u64)
        }),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix('+').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Only digits: the one possible failure is overflow.
            Some(digits.parse().unwrap_or(u64::MAX))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<Issued, ExchangeError> {
        parse_success(body.to_string().as_bytes(), 1000)
    }

    #[test]
    fn a_full_answer() {
        let issued = parse(json!({
            "access_token": "at", "expires_in": 120, "scope": "a b", "token_type": "Bearer",
            "issued_token_type": "urn:x", "id_token": "idt", "refresh_token": "rt", "other": 1
        }))
        .unwrap();
        assert_eq!(issued.access_token.expose(), "at");
        assert_eq!((issued.expires_in, issued.expires_at), (120, 1120));
        assert_eq!(issued.scope.as_deref(), Some("a b"));
        assert_eq!(issued.id_token.as_ref().map(SecretToken::expose), Some("idt"));
        let later = issued.at(1100);
        assert_eq!((later.expires_in, later.expires_at), (20, 1120));
        let text = format!("{issued:?}");
        assert!(
            !text.contains("\"at\"") && !text.contains("idt") && !text.contains("rt\""),
            "{text}"
        );
        let obo = OnBehalfOfToken::from(issued.clone());
        assert_eq!(obo.scope.as_deref(), Some("a b"));
        let connection = ConnectionToken::from(parse(json!({"access_token": "x"})).unwrap());
        assert_eq!((connection.scope.as_str(), connection.expires_in), ("", 3600));
        // Empty scope is kept (the reference SDK keeps falsy values).
        assert_eq!(
            parse(json!({"access_token": "x", "scope": ""}))
                .unwrap()
                .scope
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn expires_in_shapes() {
        for (value, expected) in [
            (json!(3600), Some(3600)),
            (json!(0), Some(0)),
            (json!("3600"), Some(3600)),
            (json!(" 3600 "), Some(3600)),
            (json!("+60"), Some(60)),
            (json!(3600.0), Some(3600)),
            (json!(MAX_EXPIRES_IN), Some(MAX_EXPIRES_IN)),
            (json!(MAX_EXPIRES_IN + 1), Some(MAX_EXPIRES_IN)),
            (json!(9_000_000_000_000_000_u64), Some(MAX_EXPIRES_IN)),
            (json!(u64::MAX), Some(MAX_EXPIRES_IN)),
            (json!(1e300), Some(MAX_EXPIRES_IN)),
            (json!("99999999999999999999999999"), Some(MAX_EXPIRES_IN)),
            (json!(-1), None),
            (json!("-1"), None),
            (json!(1.5), None),
            (json!("1.5"), None),
            (json!("soon"), None),
            (json!(""), None),
            (json!(null), None),
            (json!(true), None),
            (json!([60]), None),
            (json!({"s": 60}), None),
        ] {
            let result = parse(json!({"access_token": "x", "expires_in": value}));
            match expected {
                Some(e) => assert_eq!(result.unwrap().expires_in, e, "{value}"),
                None => assert_eq!(result.unwrap_err().code(), "invalid_response", "{value}"),
            }
        }
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(
            parse_success(b"<html>", 0).unwrap_err(),
            ExchangeError::InvalidJson
        );
        assert_eq!(parse_success(b"", 0).unwrap_err(), ExchangeError::InvalidJson);
        for body in [
            json!([]),
            json!({}),
            json!({"access_token": ""}),
            json!({"access_token": 42}),
            json!({"access_token": null}),
            json!({"access_token": ["x"]}),
        ] {
            assert_eq!(
                parse(body.clone()).unwrap_err().code(),
                "invalid_response",
                "{body}"
            );
        }
    }
}
