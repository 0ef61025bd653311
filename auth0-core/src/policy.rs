//! What a route requires of a verified token: scopes (all or any), permissions, and step-up
//! authentication (RFC 9470).

use std::sync::Arc;

use crate::answer::AuthError;
use crate::claims::TokenClaims;

/// Step-up (RFC 9470): the token's `acr` must be one of `acr_values` (when any are given), and
/// its `auth_time` at most `max_age` seconds before `now` (when given). A missing or malformed
/// claim fails the check it is needed for.
pub(crate) fn authorize_step_up<S: AsRef<str>>(
    claims: &TokenClaims,
    acr_values: &[S],
    max_age: Option<u64>,
    now: impl FnOnce() -> i64,
) -> Result<(), AuthError> {
    let refuse = |description| {
        let acr = acr_values.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
        Err(AuthError::InsufficientUserAuthentication {
            acr_values: acr.into(),
            max_age,
            description,
        })
    };
    if !acr_values.is_empty() {
        let acr = claims.extra.get("acr").and_then(serde_json::Value::as_str);
        if !acr.is_some_and(|acr| acr_values.iter().any(|v| v.as_ref() == acr)) {
            return refuse("a different authentication level is required");
        }
    }
    if let Some(max_age) = max_age {
        // A NumericDate, fractional or not, as `exp` and `iat` are read.
        let auth_time = crate::claims::numeric_date(claims.extra.get("auth_time"));
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        // The clock is read only for a route with a `max_age`.
        let now = now();
        if auth_time.is_none_or(|at| now.saturating_sub(at) > max_age) {
            return refuse("more recent authentication is required");
        }
    }
    Ok(())
}

/// What a route requires of a verified token.
pub(crate) fn authorize<S: AsRef<str>>(
    claims: &TokenClaims,
    all_scopes: &[S],
    any_scopes: &[S],
    permissions: &[S],
) -> Result<(), AuthError> {
    let join = |items: &[S]| items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
    if !claims.has_all_scopes(all_scopes) {
        return Err(AuthError::InsufficientScope {
            required: join(all_scopes).into(),
            description: "the access token lacks a required scope",
        });
    }
    if !any_scopes.is_empty() && !claims.has_any_scope(any_scopes) {
        return Err(AuthError::InsufficientScope {
            required: join(any_scopes).into(),
            description: "the access token has none of the accepted scopes",
        });
    }
    if !permissions.iter().all(|p| claims.has_permission(p.as_ref())) {
        return Err(AuthError::InsufficientScope {
            required: join(permissions).into(),
            description: "the access token lacks a required permission",
        });
    }
    Ok(())
}

/// What a route requires of a verified token, beyond being valid: the framework-neutral form of
/// [`RequireAuth`](crate::RequireAuth)'s options, checked by [`Auth0::authorize`](crate::Auth0::authorize).
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::Requirement;
///
/// let admin = Requirement::new()
///     .scopes(["read:users", "write:users"])
///     .acr_values(["http://schemas.openid.net/pape/policies/2007/06/multi-factor"])
///     .max_age(Duration::from_secs(300));
/// # let _ = admin;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Requirement {
    pub(crate) all_scopes: Arc<[String]>,
    pub(crate) any_scopes: Arc<[String]>,
    pub(crate) permissions: Arc<[String]>,
    pub(crate) acr_values: Arc<[String]>,
    pub(crate) max_age: Option<u64>,
}

impl Requirement {
    /// A valid access token, nothing more.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scopes the token must all have (RFC 6749 `scope`, exact match), one scope per value.
    ///
    /// # Panics
    /// On an empty list or a value that is not an RFC 6749 scope-token (printable ASCII other
    /// than space, `"` and `\`); a list written as one value (`"read:a, write:b"`) is refused with
    /// the list to write instead. Requirements are built at startup: the mistake shows at once.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.all_scopes = scope_tokens("Requirement", "scopes", scopes);
        self
    }

    /// Scopes of which the token must have at least one.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn any_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.any_scopes = scope_tokens("Requirement", "any_scopes", scopes);
        self
    }

    /// Auth0 RBAC permissions the token must all carry.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, permissions: I) -> Self {
        self.permissions = scope_tokens("Requirement", "permissions", permissions);
        self
    }

    /// Step-up (RFC 9470): the token's `acr` must be one of these authentication context classes.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn acr_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.acr_values = scope_tokens("Requirement", "acr_values", values);
        self
    }

    /// Step-up (RFC 9470): the token's `auth_time` must be at most `max_age` ago (whole seconds).
    pub fn max_age(mut self, max_age: std::time::Duration) -> Self {
        self.max_age = Some(max_age.as_secs());
        self
    }

    /// Checks `claims` at `now` (Unix seconds): step-up first, then scopes (all, then any), then
    /// permissions.
    ///
    /// # Errors
    /// [`AuthError::InsufficientUserAuthentication`] or [`AuthError::InsufficientScope`], naming
    /// what the route requires.
    pub fn check(&self, claims: &TokenClaims, now: i64) -> Result<(), AuthError> {
        self.check_at(claims, || now)
    }

    /// [`Self::check`], reading the clock only if the requirement has a `max_age`.
    pub(crate) fn check_at(&self, claims: &TokenClaims, now: impl FnOnce() -> i64) -> Result<(), AuthError> {
        authorize_step_up(claims, &self.acr_values, self.max_age, now)?;
        authorize(claims, &self.all_scopes, &self.any_scopes, &self.permissions)
    }
}

/// Checks a route's requirement once, when the app is built.
///
/// Each value is one RFC 6749 `scope-token`, which may contain a comma (`"a,b"` is one scope). A
/// value that is not a scope-token because it is a list written as one string (`"a, b"`, `"a b"`)
/// is refused with a message that shows the list to write instead.
pub(crate) fn scope_tokens<I: IntoIterator<Item = S>, S: Into<String>>(
    owner: &str,
    what: &str,
    values: I,
) -> Arc<[String]> {
    let values: Arc<[String]> = values.into_iter().map(Into::into).collect();
    assert!(!values.is_empty(), "{owner}::{what} needs at least one value");
    for v in values.iter() {
        if is_scope_token(v) {
            continue;
        }
        let parts: Vec<&str> = v.split([',', ' ']).filter(|part| !part.is_empty()).collect();
        if parts.len() > 1 && parts.iter().all(|part| is_scope_token(part)) {
            let what_it_is = if v.contains(',') {
                "looks like a comma-separated list"
            } else {
                "holds several space-delimited scopes"
            };
            panic!("{owner}::{what}: {v:?} {what_it_is}, expected one scope per value, like {parts:?}");
        }
        panic!(
            "{owner}::{what}: {v:?} is not an RFC 6749 scope-token \
             (printable ASCII other than space, '\"' and '\\')"
        );
    }
    values
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn is_scope_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}
