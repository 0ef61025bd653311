use super::*;

/// The middleware can be built once and shared across worker threads (`Arc`, not `Rc`).
#[test]
fn middleware_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    struct Inner;
    send_sync::<RequireAuth>();
    send_sync::<RequireAuthMiddleware<Inner>>();
    send_sync::<DpopNonces>();
    send_sync::<DpopNoncesMiddleware<Inner>>();
}

#[test]
fn middleware_requirements_are_scope_tokens() {
    let ok = RequireAuth::new()
        .scopes(["read:messages", "a/b~c"])
        .permissions(["x"]);
    assert_eq!(ok.requirement.all_scopes.len(), 2);
    for bad in ["read messages", "say\"hi\"", "back\\slash", "café", ""] {
        let refused = std::panic::catch_unwind(|| RequireAuth::new().any_scopes([bad]));
        assert!(refused.is_err(), "{bad:?}");
    }
    assert!(std::panic::catch_unwind(|| RequireAuth::new().scopes(Vec::<String>::new())).is_err());
}

fn refusal(value: &str) -> String {
    let refused = std::panic::catch_unwind(|| RequireAuth::new().scopes([value]));
    match refused {
        Ok(_) => String::new(),
        Err(payload) => payload.downcast_ref::<String>().cloned().unwrap_or_default(),
    }
}

/// RFC 6749 allows a comma inside a scope-token; a list written as one string is refused with
/// the list to write instead.
#[test]
fn a_list_in_one_value_is_refused_with_the_list_to_write() {
    assert_eq!(
        RequireAuth::new()
            .scopes(["read:a,write:b"])
            .requirement
            .all_scopes
            .len(),
        1
    );
    assert_eq!(
        refusal("read:a, write:b"),
        "RequireAuth::scopes: \"read:a, write:b\" looks like a comma-separated list, expected one \
         scope per value, like [\"read:a\", \"write:b\"]"
    );
    assert_eq!(
        refusal("read:a write:b"),
        "RequireAuth::scopes: \"read:a write:b\" holds several space-delimited scopes, expected one \
         scope per value, like [\"read:a\", \"write:b\"]"
    );
    assert!(refusal("café, b").contains("is not an RFC 6749 scope-token"));
}
