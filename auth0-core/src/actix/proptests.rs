use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::claims::TokenClaims;
use crate::policy::authorize;
use crate::policy::scope_tokens;

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn scope_token() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-cA-C:]{1,4}", 1 => "[!#-\\[\\]-~]{1,8}"]
}

/// Route requirements: mostly scope-tokens, sometimes anything (spaces, quotes, backslashes,
/// controls, non-ASCII, the empty string).
fn requirement() -> impl Strategy<Value = String> {
    prop_oneof![6 => scope_token(), 1 => ".{0,6}", 1 => "[ \"\\\\a]{0,3}"]
}

fn claims(scope: &str, permissions: &[String]) -> TokenClaims {
    let payload = serde_json::json!({
        "iss": "https://t/", "sub": "u", "aud": "a", "exp": 2_000_000_000, "iat": 1,
        "scope": scope, "permissions": permissions,
    });
    TokenClaims::from_payload(&serde_json::to_vec(&payload).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: a route's scope and permission requirements are taken, unchanged and in order,
    // exactly when the list is non-empty and every value is an RFC 6749 scope-token, and
    // refused otherwise (by the documented panic when the app is built, never at request
    // time); and an accepted requirement agrees with a token's space-delimited `scope` (and its
    // `permissions`): all scopes pass iff each is granted, any scopes iff one is, exactly and
    // case-sensitively.

    #[test]
    fn scope_tokens_accept_exactly_scope_tokens(values in prop::collection::vec(requirement(), 0..4)) {
        let taken = std::panic::catch_unwind(|| scope_tokens("RequireAuth", "scopes", values.clone()));
        let valid = !values.is_empty() && values.iter().all(|v| is_scope_token(v));
        match taken {
            Ok(taken) => {
                prop_assert!(valid, "{:?}", values);
                prop_assert_eq!(&taken[..], &values[..]);
            }
            Err(_) => prop_assert!(!valid, "{:?}", values),
        }
    }

    #[test]
    fn requirements_agree_with_the_token(
        required in prop::collection::vec(scope_token(), 1..4),
        granted in prop::collection::vec(scope_token(), 0..6),
        separators in prop::collection::vec(" {1,3}", 1..8),
    ) {
        let route = RequireAuth::new().scopes(required.clone()).permissions(required.clone());
        let any = RequireAuth::new().any_scopes(required.clone());
        let mut scope = String::new();
        for (token, separator) in granted.iter().zip(separators.iter().cycle()) {
            scope.push_str(separator);
            scope.push_str(token);
        }
        let token = claims(&scope, &granted);
        let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
        let all_granted = required.iter().all(|r| granted.contains(r.as_str()));
        let one_granted = required.iter().any(|r| granted.contains(r.as_str()));
        prop_assert_eq!(authorize(&token, &route.requirement.all_scopes, &[], &[]).is_ok(), all_granted);
        prop_assert_eq!(authorize(&token, &[], &any.requirement.any_scopes, &[]).is_ok(), one_granted);
        prop_assert_eq!(authorize(&token, &[], &[], &route.requirement.permissions).is_ok(), all_granted);
        if let Err(refused) = authorize(&token, &route.requirement.all_scopes, &any.requirement.any_scopes, &[]) {
            prop_assert_eq!(refused.status(), 403);
        }
    }
}
