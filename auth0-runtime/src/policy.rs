//! What a route requires of a verified token: scopes (all or any), permissions, and step-up
//! authentication (RFC 9470).

use crate::answer::AuthError;
use crate::claims::TokenClaims;

/// Step-up (RFC 9470): the token's `acr` must be one of `acr_values` (when any are given), and
/// its `auth_time` at most `max_age` seconds before `now` (when given). A missing or malformed
/// claim fails the check it is needed for.
pub(crate) fn authorize_step_up<S: AsRef<str>>(
    claims: &TokenClaims,
    acr_values: &[S],
    max_age: Option<u64>,
    now: i64,
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
        let auth_time = claims.extra.get("auth_time").and_then(serde_json::Value::as_i64);
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
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
