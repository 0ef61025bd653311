//! The verified-token cache through real HTTP: a hit is still checked for time and per route, and a
//! changed key set invalidates it.

mod common;

use std::time::Duration;

use common::Api;

#[tokio::test]
async fn a_cached_token_still_expires() {
    let api = Api::start();
    let token = api.token().expires_in(2).sign();
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let answer = api.bearer("/below", &token).await;
    answer.assert_refused(401, "invalid_token");
    assert_eq!(answer.description(), Some("the access token has expired"));
}

#[tokio::test]
async fn a_cached_token_is_checked_against_each_route() {
    let api = Api::start();
    let token = api.token().scope("read:messages").sign();
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    api.bearer("/scoped", &token)
        .await
        .assert_refused(403, "insufficient_scope");
    assert_eq!(api.bearer("/scoped-list", &token).await.status, 200);
    api.bearer("/perms", &token)
        .await
        .assert_refused(403, "insufficient_scope");
}

#[tokio::test]
async fn a_changed_key_set_drops_cached_tokens() {
    let api = Api::start_with(|c| c.refetch_cooldown(Duration::ZERO));
    let old_kid = api.issuer.current_kid();
    let old = api.token().sign();
    assert_eq!(api.bearer("/below", &old).await.status, 200);
    // The tenant revokes the old key: a token under the new key makes the API refetch the set.
    api.issuer.rotate_key();
    assert!(api.issuer.remove_key(&old_kid));
    assert_eq!(api.bearer("/below", &api.token().sign()).await.status, 200);
    api.bearer("/below", &old)
        .await
        .assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let api = Api::start_with(|c| c.token_cache_entries(0));
    let token = api.token().sign();
    for _ in 0..3 {
        assert_eq!(api.bearer("/below", &token).await.status, 200);
    }
    api.bearer("/below", &api.token().expires_in(-1).sign())
        .await
        .assert_refused(401, "invalid_token");
}
