//! Discovery and key sets through a real issuer: single flight, rotation, floods, outages.

mod common;

use std::time::Duration;

use auth0_runtime::testing::Fault;
use common::Api;
use futures_util::future::join_all;

#[tokio::test]
async fn a_cold_cache_fetches_once_for_200_concurrent_requests() {
    let api = Api::start();
    let token = api.token().sign();
    let requests = (0..200).map(|_| api.bearer("/below", &token));
    let answers = join_all(requests).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().find(|a| a.status != 200)
    );
    assert_eq!(
        (api.issuer.discovery_fetches(), api.issuer.jwks_fetches()),
        (1, 1)
    );
}

#[tokio::test]
async fn a_rotated_key_passes_on_its_first_request() {
    let api = Api::start();
    assert_eq!(api.bearer("/below", &api.token().sign()).await.status, 200);
    let new_kid = api.issuer.rotate_key();
    let answer = api.bearer("/below", &api.token().sign()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(api.token().sign().contains('.') && !new_kid.is_empty());
    assert_eq!(api.issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_refetch_per_cooldown() {
    let api = Api::start();
    assert_eq!(api.bearer("/below", &api.token().sign()).await.status, 200);
    let tokens: Vec<String> = (0..500)
        .map(|i| api.token().kid(format!("random-{i}")).sign())
        .collect();
    let answers = join_all(tokens.iter().map(|t| api.bearer("/below", t))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == 401 && a.error() == Some("invalid_token"))
    );
    assert!(
        api.issuer.jwks_fetches() <= 2,
        "{} key-set fetches",
        api.issuer.jwks_fetches()
    );
    assert_eq!(api.issuer.discovery_fetches(), 1);
}

#[tokio::test]
async fn the_issuer_going_down_after_keys_are_cached_changes_nothing() {
    let api = Api::start();
    let token = api.token().sign();
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    api.issuer.set_fault(Fault::Down);
    for _ in 0..5 {
        assert_eq!(api.bearer("/below", &token).await.status, 200);
    }
}

#[tokio::test]
async fn a_cold_start_with_the_issuer_down_is_503_and_recovers() {
    let api = Api::start_with(|c| c.http_timeout(Duration::from_secs(2)));
    let token = api.token().sign();
    for fault in [Fault::Down, Fault::ServerError, Fault::Garbage] {
        api.issuer.set_fault(fault);
        let answer = api.bearer("/below", &token).await;
        answer.assert_refused(503, "temporarily_unavailable");
        assert!(answer.retry_after.is_some(), "{answer:?}");
    }
    api.issuer.set_fault(Fault::None);
    let mut status = 0;
    // The store backs off between failed fetches; the issuer is asked again within seconds.
    for _ in 0..40 {
        status = api.bearer("/below", &token).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_slow_issuer_times_out_into_a_503() {
    let api = Api::start_with(|c| c.http_timeout(Duration::from_secs(1)));
    api.issuer.set_fault(Fault::Slow(Duration::from_secs(5)));
    api.bearer("/below", &api.token().sign())
        .await
        .assert_refused(503, "temporarily_unavailable");
}
