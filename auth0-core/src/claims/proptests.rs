use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, short and from few letters, so
/// that tokens differing only in case are common.
fn scope_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-cA-C:]{1,4}",
        1 => "[!#-\\[\\]-~]{1,8}",
    ]
}

/// `tokens` joined by runs of spaces, with runs before and after (possibly empty).
fn joined(tokens: &[String], runs: &[usize]) -> String {
    let mut runs = runs.iter().copied().cycle();
    let mut out = " ".repeat(runs.next().unwrap_or(0) % 3);
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(1 + runs.next().unwrap_or(0)));
        }
        out.push_str(token);
    }
    out.push_str(&" ".repeat(runs.next().unwrap_or(0) % 3));
    out
}

fn claims_with_scope(scope: &str) -> TokenClaims {
    let payload = serde_json::json!({
        "iss": "https://t/", "sub": "u", "aud": "a", "exp": 2_000_000_000, "iat": 1, "scope": scope,
    });
    TokenClaims::from_payload(&serde_json::to_vec(&payload).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: parsing the `scope` claim never panics; a list of scope-tokens joined by runs of
    // spaces (also before and after, and with repeats) parses to exactly that set; and
    // `has_scope` (with `has_all_scopes` and `has_any_scope`) is exact and case-sensitive: true
    // for the members of the set and for nothing else, not even the same token in another case
    // or with a space.

    #[test]
    fn scopes_never_panic(raw in ".{0,80}") {
        let scopes = Scopes::parse(&raw);
        prop_assert!(scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
    }

    #[test]
    fn space_joined_tokens_parse_to_their_set(
        tokens in prop::collection::vec(scope_token(), 0..8),
        runs in prop::collection::vec(0..4usize, 1..10),
    ) {
        let set: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        let scopes = Scopes::parse(&joined(&tokens, &runs));
        prop_assert_eq!(scopes.iter().collect::<BTreeSet<_>>(), set.clone());
        prop_assert_eq!(scopes.len(), set.len());
        prop_assert_eq!(scopes.is_empty(), set.is_empty());
    }

    #[test]
    fn has_scope_is_exact_and_case_sensitive(
        tokens in prop::collection::vec(scope_token(), 0..6),
        runs in prop::collection::vec(0..4usize, 1..10),
        probes in prop::collection::vec(prop_oneof![scope_token(), ".{0,6}"], 0..6),
    ) {
        let set: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        let claims = claims_with_scope(&joined(&tokens, &runs));
        let mut all: Vec<String> = probes;
        for token in &tokens {
            all.push(token.to_ascii_uppercase());
            all.push(token.to_ascii_lowercase());
            all.push(format!("{token} "));
            all.push(format!(" {token}"));
            all.push(token[..token.len() - 1].to_owned());
        }
        for probe in &all {
            prop_assert_eq!(claims.has_scope(probe), set.contains(probe.as_str()), "{:?}", probe);
            prop_assert_eq!(claims.has_any_scope(&[probe]), set.contains(probe.as_str()));
        }
        prop_assert!(claims.has_all_scopes(&tokens));
        prop_assert_eq!(claims.has_all_scopes(&all), all.iter().all(|p| set.contains(p.as_str())));
        prop_assert_eq!(claims.has_any_scope(&all), all.iter().any(|p| set.contains(p.as_str())));
    }
}
