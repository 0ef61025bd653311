use serde_json::json;

use super::*;

fn names(p: &Prepared) -> Vec<&str> {
    p.fields
        .iter()
        .map(|(n, _)| *n)
        .chain(p.extra.iter().map(|(n, _)| n.as_str()))
        .collect()
}

fn code_of(result: Result<Prepared, ExchangeError>) -> (u16, String, String) {
    let error = result.unwrap_err();
    (
        error.status(),
        error.code().to_owned(),
        error.description().into_owned(),
    )
}

#[test]
fn connection_fields_and_missing_arguments() {
    let p = ConnectionTokenRequest::new("google-oauth2", "tok")
        .prepare()
        .unwrap();
    assert_eq!(
        names(&p),
        [
            "connection",
            "requested_token_type",
            "grant_type",
            "client_id",
            "subject_token",
            "subject_token_type"
        ]
    );
    let p = ConnectionTokenRequest::new("c", "tok")
        .login_hint("alice")
        .prepare()
        .unwrap();
    assert_eq!(names(&p).last(), Some(&"login_hint"));
    let p = ConnectionTokenRequest::new("c", "tok")
        .login_hint("")
        .prepare()
        .unwrap();
    assert!(!names(&p).contains(&"login_hint"));

    assert_eq!(
        code_of(ConnectionTokenRequest::new("", "tok").prepare()),
        (
            400,
            "invalid_request".into(),
            "the argument 'connection' is required but was not provided".into()
        )
    );
    assert_eq!(
        code_of(ConnectionTokenRequest::new("c", "").prepare()).2,
        "the argument 'access_token' is required but was not provided"
    );
    assert_eq!(
        code_of(ConnectionTokenRequest::new("c", " tok").prepare()).1,
        CONNECTION_CODE
    );
}

#[test]
fn subject_token_rules() {
    let cases = [
        ("   ", "subject_token cannot be blank or whitespace"),
        ("\t\n", "subject_token cannot be blank or whitespace"),
        (
            " tok",
            "subject_token must not include leading or trailing whitespace",
        ),
        (
            "tok\n",
            "subject_token must not include leading or trailing whitespace",
        ),
        (
            "Bearer tok",
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ),
        (
            "bEaReR tok",
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ),
    ];
    for (token, description) in cases {
        let (status, code, text) = code_of(TokenExchangeRequest::new(token, "urn:t").prepare(Flow::Exchange));
        assert_eq!(
            (status, code.as_str(), text.as_str()),
            (400, EXCHANGE_CODE, description),
            "{token:?}"
        );
    }
    assert!(
        TokenExchangeRequest::new("Bearertok", "urn:t")
            .prepare(Flow::Exchange)
            .is_ok()
    );
    assert_eq!(
        code_of(TokenExchangeRequest::new("", "urn:t").prepare(Flow::Exchange)).2,
        "the argument 'subject_token' is required but was not provided"
    );
    assert_eq!(
        code_of(TokenExchangeRequest::new("t", "").prepare(Flow::Exchange)).2,
        "the argument 'subject_token_type' is required but was not provided"
    );
    assert_eq!(
        code_of(OnBehalfOfRequest::new("t", "").prepare()).2,
        "the argument 'audience' is required but was not provided"
    );
}

#[test]
fn extra_rules() {
    let base = || TokenExchangeRequest::new("tok", "urn:t");
    for name in RESERVED_PARAMETERS {
        for variant in [name.to_owned(), name.to_ascii_uppercase(), {
            let mut c = name.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }] {
            let (_, code, text) = code_of(base().extra(variant.clone(), "x").prepare(Flow::Exchange));
            assert_eq!(code, EXCHANGE_CODE, "{variant}");
            assert!(text.contains("reserved"), "{variant}");
        }
    }
    let twenty: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let p = base()
        .extra("list", twenty.clone())
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!(p.extra.len(), 20);
    let mut over = twenty;
    over.push("20".into());
    assert!(
        code_of(base().extra("list", over).prepare(Flow::Exchange))
            .2
            .contains("20 values")
    );
    for bad in [json!({"a": 1}), json!(null), json!([[1]]), json!([{"a": 1}])] {
        assert!(
            code_of(base().extra("x", bad.clone()).prepare(Flow::Exchange))
                .2
                .contains("unsupported"),
            "{bad}"
        );
    }
    let p = base()
        .extra("s", "v")
        .extra("n", 42)
        .extra("b", true)
        .extra("j", json!(1.5))
        .extra("l", ["a", "b"])
        .extra("s", "last wins")
        .prepare(Flow::Exchange)
        .unwrap();
    let pairs: Vec<(&str, &str)> = p.extra.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("s", "last wins"),
            ("n", "42"),
            ("b", "true"),
            ("j", "1.5"),
            ("l", "a"),
            ("l", "b")
        ]
    );
}

#[test]
fn exchange_fields_in_the_reference_order() {
    let p = TokenExchangeRequest::new("tok", "urn:t")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!(names(&p), ["grant_type", "subject_token", "subject_token_type"]);
    let p = TokenExchangeRequest::new("tok", "urn:t")
        .audience("a")
        .scope("s")
        .requested_token_type("r")
        .organization("org_1")
        .actor_token("act", "urn:act")
        .extra("x", "1")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!(
        names(&p),
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "scope",
            "requested_token_type",
            "organization",
            "actor_token",
            "actor_token_type",
            "x"
        ]
    );
    let p = TokenExchangeRequest::new("tok", "urn:t")
        .audience("")
        .scope("")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!(p.fields.len(), 3, "empty optional values are not sent");
    let obo = OnBehalfOfRequest::new("tok", "https://api").prepare().unwrap();
    assert_eq!(
        names(&obo),
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "requested_token_type"
        ]
    );
}

#[test]
fn cache_keys_cover_every_input() {
    let key = |r: TokenExchangeRequest| r.prepare(Flow::Exchange).unwrap().key;
    let base = || {
        TokenExchangeRequest::new("tok", "urn:t")
            .audience("a")
            .scope("read write")
    };
    let reference = key(base());
    assert_eq!(reference, key(base()));
    assert_eq!(
        reference,
        key(base().scope("write  read read")),
        "scopes are a set"
    );
    assert_eq!(reference, key(base().force_refresh(true)));
    let different = [
        key(TokenExchangeRequest::new("tok2", "urn:t")
            .audience("a")
            .scope("read write")),
        key(base().audience("b")),
        key(base().scope("read")),
        key(base().requested_token_type("r")),
        key(base().organization("org_1")),
        key(base().actor_token("x", "urn:y")),
        key(base().extra("k", "v")),
        key(base().extra("k", "w")),
        key(base().extra("k", ["v", "w"])),
        key(base().extra("k", ["w", "v"])),
        key(TokenExchangeRequest::new("tok", "urn:u")
            .audience("a")
            .scope("read write")),
    ];
    for (i, d) in different.iter().enumerate() {
        assert_ne!(reference, *d, "input {i}");
    }
    // Extras in another order are the same request.
    assert_eq!(
        key(base().extra("a", "1").extra("b", "2")),
        key(base().extra("b", "2").extra("a", "1"))
    );
    // The flows never share a key.
    let obo = OnBehalfOfRequest::new("tok", "a")
        .scope("read write")
        .prepare()
        .unwrap()
        .key;
    let exchange = key(TokenExchangeRequest::new("tok", ACCESS_TOKEN_TYPE)
        .audience("a")
        .scope("read write")
        .requested_token_type(ACCESS_TOKEN_TYPE));
    assert_ne!(obo, exchange);
    let c = |conn: &str, hint: Option<&str>| {
        let mut r = ConnectionTokenRequest::new(conn, "tok");
        if let Some(h) = hint {
            r = r.login_hint(h);
        }
        r.prepare().unwrap().key
    };
    assert_ne!(c("a", None), c("b", None));
    assert_ne!(c("a", None), c("a", Some("x")));
    assert_eq!(c("a", None), c("a", Some("")));
}

#[test]
fn debug_never_prints_tokens() {
    let r = TokenExchangeRequest::new("secret-subject", "urn:t").actor_token("secret-actor", "urn:a");
    let text = format!("{r:?} {:?}", ConnectionTokenRequest::new("c", "secret-subject"));
    assert!(!text.contains("secret-"), "{text}");
}

#[test]
fn debug_prints_names_never_values() {
    let exchange = TokenExchangeRequest::new("secret-subject", "urn:t")
        .audience("https://api")
        .scope("read")
        .actor_token("secret-actor", "urn:a")
        .extra("device_secret", "secret-extra")
        .extra("roles", ["secret-role-1", "secret-role-2"]);
    assert_eq!(
        format!("{exchange:?}"),
        "TokenExchangeRequest { subject_token: <redacted>, subject_token_type: \"urn:t\", \
             audience: Some(\"https://api\"), scope: Some(\"read\"), requested_token_type: None, \
             organization: None, actor_token: Some(<redacted>), actor_token_type: Some(\"urn:a\"), \
             extra: [\"device_secret\", \"roles\"], force_refresh: false }"
    );
    let connection =
        ConnectionTokenRequest::new("google-oauth2", "secret-subject").login_hint("secret-alice@example.com");
    assert_eq!(
        format!("{connection:?}"),
        "ConnectionTokenRequest { connection: \"google-oauth2\", subject_token: <redacted>, \
             login_hint: Some(<redacted>), force_refresh: false }"
    );
    assert!(format!("{:?}", ConnectionTokenRequest::new("c", "t")).contains("login_hint: None"));
    let obo = OnBehalfOfRequest::new("secret-subject", "https://b").scope("read");
    assert_eq!(
        format!("{obo:?}"),
        "OnBehalfOfRequest { subject_token: <redacted>, audience: \"https://b\", \
             scope: Some(\"read\"), force_refresh: false }"
    );
    let values = format!(
        "{:?} {:?} {:?}",
        ExtraValue::from("secret-x"),
        ExtraValue::from(["secret-a", "secret-b"]),
        ExtraValue::from(json!({"secret": 1}))
    );
    assert_eq!(
        values,
        "ExtraValue(<1 value>) ExtraValue(<2 values>) ExtraValue(<unsupported>)"
    );
    // Nor does the prepared request, which holds the form.
    let prepared = format!("{:?}", exchange.prepare(Flow::Exchange).unwrap());
    assert!(!prepared.contains("secret"), "{prepared}");
}

fn scope_sent(scope: &str) -> Result<Option<String>, ExchangeError> {
    let p = TokenExchangeRequest::new("tok", "urn:t")
        .scope(scope)
        .prepare(Flow::Exchange)?;
    Ok(p.fields
        .iter()
        .find(|(n, _)| *n == "scope")
        .map(|(_, v)| match v {
            FieldValue::Text(v) => v.clone(),
            _ => panic!("scope is text"),
        }))
}

#[test]
fn scope_is_sent_as_the_key_holds_it() {
    for (scope, sent) in [
        ("read", Some("read")),
        ("read write", Some("read write")),
        ("write read", Some("read write")),
        ("  write   read read ", Some("read write")),
        (
            "openid offline_access read:data",
            Some("offline_access openid read:data"),
        ),
        ("a!#[]~ b", Some("a!#[]~ b")),
        ("   ", None),
        ("", None),
    ] {
        assert_eq!(scope_sent(scope).unwrap().as_deref(), sent, "{scope:?}");
    }
    for scope in [
        "read\twrite",
        "read\nwrite",
        "read\r\nwrite",
        "read\u{a0}write",
        "lecture:données",
        "quote\"d",
        "back\\slash",
        "nul\0",
    ] {
        let (status, code, text) = code_of(
            TokenExchangeRequest::new("tok", "urn:t")
                .scope(scope)
                .prepare(Flow::Exchange),
        );
        assert_eq!((status, code.as_str()), (400, EXCHANGE_CODE), "{scope:?}");
        assert!(text.starts_with("scope must be"), "{text}");
        assert!(
            OnBehalfOfRequest::new("tok", "https://b")
                .scope(scope)
                .prepare()
                .is_err(),
            "{scope:?}"
        );
    }
}

fn jwt(payload: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(payload))
}

#[test]
fn the_exp_of_a_jwt_is_read_without_verifying() {
    assert_eq!(
        unverified_exp(&jwt(r#"{"sub":"a","exp":1700000000}"#)),
        Some(1_700_000_000)
    );
    assert_eq!(
        unverified_exp(&jwt(r#"{"exp":1700000000.9}"#)),
        Some(1_700_000_000)
    );
    assert_eq!(unverified_exp(&jwt(r#"{"exp":1e300}"#)), Some(i64::MAX));
    assert_eq!(unverified_exp(&jwt(r#"{"exp":-5}"#)), Some(-5));
    for opaque in [
        "opaque-token".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d.e".to_owned(),
        "..".to_owned(),
        "x.!!!.y".to_owned(),
        jwt(r#"{"sub":"a"}"#),
        jwt(r#"{"exp":"1700000000"}"#),
        jwt(r#"{"exp":null}"#),
        jwt(r#"[1700000000]"#),
        jwt("not json"),
        jwt(r#"{"exp":1,"exp":2}"#),
        format!("{}.e30.sig", "a".repeat(100_000)),
    ] {
        assert_eq!(unverified_exp(&opaque), None, "{opaque:.40}");
    }
}

#[test]
fn an_expired_subject_or_actor_is_refused() {
    let live = jwt(r#"{"exp":2000}"#);
    let dead = jwt(r#"{"exp":1000}"#);
    let check = |p: Prepared| {
        p.check_expiry(1000)
            .map_err(|e| (e.code().to_owned(), e.description().into_owned()))
    };
    let vault = ConnectionTokenRequest::new("c", &dead).prepare().unwrap();
    assert_eq!(
        check(vault),
        Err((CONNECTION_CODE.to_owned(), "subject_token has expired".to_owned()))
    );
    let obo = OnBehalfOfRequest::new(&dead, "https://b").prepare().unwrap();
    assert_eq!(
        check(obo),
        Err((EXCHANGE_CODE.to_owned(), "subject_token has expired".to_owned()))
    );
    let actor = TokenExchangeRequest::new(&live, "urn:t")
        .actor_token(&dead, "urn:a")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!(actor.not_after(), Some(1000));
    assert_eq!(
        check(actor),
        Err((EXCHANGE_CODE.to_owned(), "actor_token has expired".to_owned()))
    );
    let fine = TokenExchangeRequest::new(&live, "urn:t")
        .actor_token("opaque", "urn:a")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!((fine.not_after(), check(fine)), (Some(2000), Ok(())));
    let opaque = TokenExchangeRequest::new("opaque", "urn:t")
        .prepare(Flow::Exchange)
        .unwrap();
    assert_eq!((opaque.not_after(), check(opaque)), (None, Ok(())));
}
