use super::*;

fn parse(json: &str) -> Result<TokenClaims, &'static str> {
    TokenClaims::from_payload(json.as_bytes())
}

const BASE: &str = r#""iss":"https://t/","sub":"u","aud":"a","exp":2000000000,"iat":1"#;

#[test]
fn scopes_are_split_on_spaces_exactly() {
    let c = parse(&format!(r#"{{{BASE},"scope":"  read:a  write:b read:a "}}"#)).expect("claims");
    assert!(c.has_scope("read:a") && c.has_scope("write:b") && !c.has_scope("READ:A"));
    assert!(c.has_all_scopes(&["read:a", "write:b"]) && !c.has_all_scopes(&["read:a", "x"]));
    assert!(c.has_any_scope(&["x", "write:b"]) && !c.has_any_scope(&["x"]));
    assert_eq!(c.scope.len(), 2);
}

#[test]
fn malformed_scope_and_permissions_mean_none() {
    let c = parse(&format!(
        r#"{{{BASE},"scope":["read:a"],"permissions":"read:a"}}"#
    ))
    .expect("claims");
    assert!(c.scope.is_empty() && c.permissions.is_empty());
    let c = parse(&format!(r#"{{{BASE},"permissions":["read:a",1]}}"#)).expect("claims");
    assert!(c.permissions.is_empty());
}

#[test]
fn registered_claims_of_the_wrong_type_are_refused() {
    let cases = [
        (
            r#"{"iss":"https://t/","sub":"u","aud":"a","exp":"2000000000","iat":1}"#,
            "expiry",
        ),
        (r#"{"iss":"https://t/","sub":"u","aud":"a","iat":1}"#, "expiry"),
        (
            r#"{"iss":"https://t/","sub":"u","aud":"a","exp":2000000000}"#,
            "issue time",
        ),
        (
            r#"{"iss":1,"sub":"u","aud":"a","exp":2000000000,"iat":1}"#,
            "issuer",
        ),
        (
            r#"{"iss":"https://t/","sub":"u","aud":[1],"exp":2000000000,"iat":1}"#,
            "audience",
        ),
        (
            r#"{"iss":"https://t/","sub":"u","aud":"a","exp":2000000000,"iat":1,"nbf":null}"#,
            "not-before",
        ),
        (r#"[1,2]"#, "malformed"),
    ];
    for (json, word) in cases {
        let err = parse(json).expect_err(json);
        assert!(err.contains(word), "{json}: {err}");
    }
}

#[test]
fn extras_and_helpers() {
    let c = parse(&format!(
            r#"{{{BASE},"aud":["a","b"],"https://x/roles":["admin"],"cnf":{{"jkt":"abc","x5t#S256":"y"}},"act":{{"sub":"svc","act":{{"sub":"first"}}}}}}"#
        ))
        .expect("claims");
    assert!(c.aud.contains("b") && !c.aud.contains("c"));
    assert_eq!(
        c.get::<Vec<String>>("https://x/roles"),
        Some(vec!["admin".to_owned()])
    );
    assert_eq!(c.get::<u32>("https://x/roles"), None);
    assert_eq!(c.jkt(), Some("abc"));
    let chain: Vec<_> = c
        .act
        .as_ref()
        .map(|a| a.chain().map(|a| a.sub.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(chain, ["svc", "first"]);
}

#[test]
fn claims_serialize_to_the_token_payload() {
    let payload = serde_json::json!({
        "iss": "https://t/", "sub": "u", "aud": ["a", "b"], "exp": 2000000000, "iat": 1,
        "nbf": 1, "azp": "client", "jti": "id", "scope": "read:a write:b",
        "permissions": ["read:a"], "org_id": "org_1", "cnf": {"jkt": "abc"},
        "act": {"sub": "svc", "act": {"sub": "first"}}, "https://x/roles": ["admin"],
    });
    let token = TokenClaims::from_payload(payload.to_string().as_bytes()).expect("claims");
    assert_eq!(serde_json::to_value(&token).expect("json"), payload);
    // What a missing claim parsed to stays missing; one audience stays a string.
    let minimal = parse(&format!(r#"{{{BASE},"scope":"","permissions":[]}}"#)).expect("claims");
    let expected =
        serde_json::json!({"iss": "https://t/", "sub": "u", "aud": "a", "exp": 2000000000, "iat": 1});
    assert_eq!(serde_json::to_value(&minimal).expect("json"), expected);
    // `Claims<T>`: `T` in place of the other claims; the scheme is not a claim.
    #[derive(Serialize)]
    struct Custom {
        tenant: &'static str,
    }
    let claims = Claims::new(Arc::new(minimal), Scheme::Dpop, Custom { tenant: "acme" });
    let mut expected = expected;
    expected["tenant"] = "acme".into();
    assert_eq!(serde_json::to_value(&claims).expect("json"), expected);
    let scheme = (
        serde_json::to_value(Scheme::Dpop).expect("json"),
        Scheme::Dpop.to_string(),
    );
    assert_eq!(scheme, (serde_json::json!("DPoP"), "DPoP".to_owned()));
    assert_eq!(Scheme::Bearer.to_string(), "Bearer");
}
