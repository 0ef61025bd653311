//! The key store against a real issuer over HTTPS: single flight, rotation, outages, caps.

use std::time::Duration;

use serde_json::json;

use base64::Engine as _;

use super::*;
use crate::http::redirect_policy;
use crate::testing::{Endpoint, Fault, TestIssuer};

fn client(issuer: &TestIssuer, timeout: Duration) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(issuer.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(timeout)
        .redirect(redirect_policy())
        .build()
        .unwrap()
}

fn store_with(issuer: &TestIssuer, settings: KeySettings) -> Arc<KeyStore> {
    Arc::new(KeyStore::new(client(issuer, Duration::from_secs(5)), settings))
}

fn store(issuer: &TestIssuer) -> Arc<KeyStore> {
    store_with(issuer, KeySettings::default())
}

/// Splits a compact JWS into (signing input, signature bytes).
fn jws_parts(token: &str) -> (String, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (input.to_owned(), BASE64URL.decode(signature).unwrap())
}

fn counts(issuer: &TestIssuer) -> (usize, usize) {
    (issuer.discovery_fetches(), issuer.jwks_fetches())
}

/// The testing kit's static key set: served by the hot path and the slow path, never fetched,
/// never refetched for an unknown `kid`.
#[tokio::test]
async fn a_static_key_set_is_served_without_fetching() {
    let issuer = TestIssuer::start();
    let store = store(&issuer);
    let iss = issuer.issuer();
    let before = store.generation();
    assert_eq!(store.preload(&iss, &issuer.jwks()), Ok(1));
    assert!(store.generation() > before);
    assert!(store.cached(&iss, "key-1").is_some());
    assert!(store.fetch(&iss, "key-1").await.is_ok());
    assert_eq!(store.fetch(&iss, "other").await.err(), Some(KeyError::UnknownKid));
    assert_eq!(store.fetch(&iss, "other").await.err(), Some(KeyError::UnknownKid));
    assert_eq!(counts(&issuer), (0, 0));
    assert_eq!(
        store.preload(
            &iss,
            &json!({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]})
        ),
        Err("has no key usable with the allowed algorithms")
    );
    assert_eq!(
        store.preload(&iss, &json!({})),
        Err("is not a JWK set (no `keys` array)")
    );
}

/// Waits (up to 5 s) for background work to show.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_set_is_served_while_one_caller_refreshes_it() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Past its lifetime: every caller is served, and one refresh starts in the background.
    assert!((0..50).all(|_| keys.cached(&iss, "key-1").is_some()));
    eventually("the refresh", || counts(&issuer) == (2, 2)).await;

    // The next refresh hangs on a slow issuer; requests meanwhile are not held up.
    issuer.set_fault(Fault::Slow(Duration::from_secs(2)));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let started = std::time::Instant::now();
    assert!((0..50).all(|_| keys.cached(&iss, "key-1").is_some()));
    assert!(started.elapsed() < Duration::from_millis(100));
    issuer.set_fault(Fault::None);
    eventually("the slow refresh", || counts(&issuer) == (3, 3)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counts(&issuer), (3, 3), "one refresh of each document each time");
}

/// Defect: the refresh ran in the future of the request that claimed it, so a dropped
/// request left the set claimed and unrefreshed, and a revoked key stayed valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_cannot_stall_a_refresh() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let rotated = issuer.rotate_key();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The caller that finds the set stale is served and goes away at once.
    assert!(keys.cached(&iss, "key-1").is_some());
    eventually("the background refresh", || keys.fresh(&iss, &rotated).is_some()).await;

    // A cold fetch whose waiter is dropped still completes.
    let cold = TestIssuer::start();
    let keys = store(&cold);
    let iss = cold.issuer();
    cold.set_fault(Fault::Slow(Duration::from_millis(300)));
    let waiting = keys.fetch(&iss, "key-1");
    let _ = tokio::time::timeout(Duration::from_millis(50), waiting).await;
    eventually("the detached fetch", || keys.fresh(&iss, "key-1").is_some()).await;
    assert_eq!(counts(&cold), (1, 1));
}

#[tokio::test]
async fn a_warm_up_caches_discovery_and_keys_without_a_kid() {
    let issuer = TestIssuer::start();
    let keys = store(&issuer);
    let iss = issuer.issuer();
    assert_eq!(keys.readiness(&iss), (KeysState::Missing, 0));
    assert_eq!(keys.warm(&iss, Via::Shared, false).await, Ok(1));
    assert_eq!(counts(&issuer), (1, 1));
    assert_eq!(keys.readiness(&iss), (KeysState::Fresh, 1));
    assert!(keys.cached(&iss, "key-1").is_some());
    // Both fresh: nothing is fetched again.
    assert_eq!(keys.warm(&iss, Via::Shared, true).await, Ok(1));
    assert_eq!(counts(&issuer), (1, 1));
    // Through a client of its own, too.
    let other = TestIssuer::start();
    let keys = store(&other);
    let http = client(&other, Duration::from_secs(5));
    assert_eq!(keys.warm(&other.issuer(), Via::WarmUp(&http), false).await, Ok(1));
    assert_eq!(counts(&other), (1, 1));
}

#[tokio::test]
async fn a_failed_warm_up_backs_off_only_when_asked() {
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::ServerError);
    let keys = store(&issuer);
    let iss = issuer.issuer();
    let error = keys.warm(&iss, Via::Shared, false).await.unwrap_err();
    assert!(error.contains("unexpected HTTP status 500"), "{error}");
    issuer.set_fault(Fault::None);
    // The startup warm-up records no back-off: the first request fetches at once.
    assert!(keys.fetch(&iss, "key-1").await.is_ok());

    // A probe's warm-up does, and respects it.
    let down = TestIssuer::start();
    down.set_fault(Fault::ServerError);
    let keys = store(&down);
    let iss = down.issuer();
    assert!(keys.warm(&iss, Via::Shared, true).await.is_err());
    assert_eq!(counts(&down), (1, 0));
    let error = keys.warm(&iss, Via::Shared, true).await.unwrap_err();
    assert!(error.contains("backing off"), "{error}");
    assert_eq!(counts(&down), (1, 0));
    assert_eq!(keys.readiness(&iss), (KeysState::Missing, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_tells_fresh_from_stale_keys() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.warm(&iss, Via::Shared, false).await.unwrap();
    assert_eq!(keys.readiness(&iss), (KeysState::Fresh, 1));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(keys.readiness(&iss), (KeysState::Stale, 1));
    // A failed refresh keeps the last good keys, for a while: still stale, not fresh.
    issuer.set_fault(Fault::ServerError);
    assert!(keys.fetch(&iss, "key-1").await.is_ok());
    assert_eq!(keys.readiness(&iss), (KeysState::Stale, 1));
    // A probe's kick refreshes them once the issuer is back (after the back-off).
    issuer.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    keys.kick(&iss);
    eventually("the kicked refresh", || {
        keys.readiness(&iss).0 == KeysState::Fresh
    })
    .await;
}

/// Defect: an unknown-kid refetch whose request was dropped spent the cooldown without
/// fetching, so the first token signed with a rotated-in key was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_unknown_kid_refetch_still_fetches() {
    let issuer = TestIssuer::start();
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let rotated = issuer.rotate_key();
    issuer.set_fault(Fault::Slow(Duration::from_millis(300)));
    let waiting = keys.fetch(&iss, &rotated);
    let _ = tokio::time::timeout(Duration::from_millis(50), waiting).await;
    issuer.set_fault(Fault::None);
    eventually("the refetch", || keys.fresh(&iss, &rotated).is_some()).await;
    assert_eq!(keys.fetch(&iss, &rotated).await.unwrap().kid(), rotated);
}

/// Defect: a refresh that only renewed discovery left the key set claimed for 30 s, so a
/// key removed from the set was still accepted long after its lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_is_refused_within_one_lifetime() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let kept = issuer.rotate_key();
    // Discovery is a little older than the key set: it expires first.
    keys.fetch(&iss, &kept).await.unwrap();
    assert!(issuer.remove_key("key-1"));
    let removed_at = std::time::Instant::now();
    loop {
        let served = keys.cached(&iss, "key-1").is_some() || keys.fetch(&iss, "key-1").await.is_ok();
        if !served {
            break;
        }
        assert!(
            removed_at.elapsed() < Duration::from_millis(2_500),
            "a removed key is still served after one lifetime and a fetch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(keys.cached(&iss, &kept).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_is_fetched_once_for_200_concurrent_callers() {
    let issuer = TestIssuer::start();
    let keys = store(&issuer);
    let iss = issuer.issuer();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let keys = Arc::clone(&keys);
        let iss = iss.clone();
        tasks.push(tokio::spawn(async move {
            keys.fetch(&iss, "key-1").await.map(|key| key.kid().to_owned())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "key-1");
    }
    assert_eq!(counts(&issuer), (1, 1));
    assert_eq!(keys.cached(&iss, "key-1").unwrap().kty(), "RSA");
    assert_eq!(counts(&issuer), (1, 1));
}

#[tokio::test]
async fn verifies_a_real_signature_with_every_key_type() {
    let issuer = TestIssuer::start();
    let es256 = issuer.add_key(Algorithm::ES256);
    let es384 = issuer.add_key(Algorithm::ES384);
    let eddsa = issuer.add_key(Algorithm::EdDSA);
    let ps256 = issuer.add_key(Algorithm::PS256);
    let algorithms = vec![
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    let keys = store_with(
        &issuer,
        KeySettings {
            algorithms: algorithms.clone(),
            ..KeySettings::default()
        },
    );
    let iss = issuer.issuer();
    for (alg, kid) in [
        (Algorithm::RS256, "key-1"),
        (Algorithm::ES256, es256.as_str()),
        (Algorithm::ES384, es384.as_str()),
        (Algorithm::EdDSA, eddsa.as_str()),
        (Algorithm::PS256, ps256.as_str()),
    ] {
        let key = keys.fetch(&iss, kid).await.unwrap();
        let (input, signature) = jws_parts(&issuer.token().alg(alg).sign());
        let parsed = key.for_alg(alg).unwrap();
        assert!(parsed.verify_sig(input.as_bytes(), &signature).is_ok(), "{alg:?}");
        assert!(parsed.verify_sig(b"tampered", &signature).is_err(), "{alg:?}");
        // A key serves only its own algorithm (its JWK declares `alg`).
        for other in algorithms.iter().filter(|other| **other != alg) {
            assert!(key.for_alg(*other).is_none(), "{kid} for {other:?}");
        }
    }
    // A forged token with a known kid does not verify.
    let key = keys.cached(&iss, "key-1").unwrap();
    let (input, signature) = jws_parts(&issuer.token().sign_with_unknown_key());
    assert!(
        key.for_alg(Algorithm::RS256)
            .unwrap()
            .verify_sig(input.as_bytes(), &signature)
            .is_err()
    );
    assert_eq!(counts(&issuer), (1, 1));
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_not_parsed() {
    let issuer = TestIssuer::start();
    issuer.add_key(Algorithm::ES256);
    let keys = store(&issuer); // RS256 only
    let iss = issuer.issuer();
    let key = keys.fetch(&iss, "key-1").await.unwrap();
    assert!(key.for_alg(Algorithm::RS256).is_some());
    assert!(key.for_alg(Algorithm::PS256).is_none());
    assert_eq!(
        keys.fetch(&iss, "es256-2").await.unwrap_err(),
        KeyError::UnknownKid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_at_most_once_per_cooldown() {
    let issuer = TestIssuer::start();
    let keys = store_with(
        &issuer,
        KeySettings {
            refetch_cooldown: Duration::from_millis(700),
            ..KeySettings::default()
        },
    );
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (1, 1));

    // A flood of random kids: one refetch in all.
    let mut tasks = Vec::new();
    for n in 0..100 {
        let keys = Arc::clone(&keys);
        let iss = iss.clone();
        tasks.push(tokio::spawn(async move {
            keys.fetch(&iss, &format!("random-{n}")).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), KeyError::UnknownKid);
    }
    assert_eq!(counts(&issuer), (1, 2));
    assert!(keys.cached(&iss, "random-1").is_none());
    assert_eq!(
        keys.fetch(&iss, "random-1").await.unwrap_err(),
        KeyError::UnknownKid
    );
    assert_eq!(counts(&issuer), (1, 2));

    // After the cooldown, one more.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        keys.fetch(&iss, "random-x").await.unwrap_err(),
        KeyError::UnknownKid
    );
    assert_eq!(
        keys.fetch(&iss, "random-y").await.unwrap_err(),
        KeyError::UnknownKid
    );
    assert_eq!(counts(&issuer), (1, 3));
    // Known keys were served all along.
    assert!(keys.cached(&iss, "key-1").is_some());
}

#[tokio::test]
async fn an_unknown_kid_on_a_cold_cache_does_not_refetch_at_once() {
    let issuer = TestIssuer::start();
    let keys = store(&issuer);
    let iss = issuer.issuer();
    assert_eq!(keys.fetch(&iss, "nope").await.unwrap_err(), KeyError::UnknownKid);
    assert_eq!(
        keys.fetch(&iss, "nope-2").await.unwrap_err(),
        KeyError::UnknownKid
    );
    assert_eq!(counts(&issuer), (1, 1));
    assert!(keys.cached(&iss, "key-1").is_some());
}

#[tokio::test]
async fn rotation_works_on_the_first_request_with_the_new_key() {
    let issuer = TestIssuer::start();
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let generation = keys.generation();

    let new = issuer.rotate_key();
    assert!(keys.cached(&iss, &new).is_none());
    let key = keys.fetch(&iss, &new).await.unwrap();
    assert_eq!(key.kid(), new);
    assert_eq!(counts(&issuer), (1, 2));
    assert!(keys.generation() > generation);
    // The previous key is still published, and both are served from the cache.
    assert!(keys.cached(&iss, "key-1").is_some());
    assert!(keys.cached(&iss, &new).is_some());

    // A second rotation right away (inside the cooldown) is not seen until the cooldown ends:
    // the flood protection wins over an issuer rotating twice within 30 s.
    let newer = issuer.rotate_key();
    assert_eq!(keys.fetch(&iss, &newer).await.unwrap_err(), KeyError::UnknownKid);
    assert_eq!(counts(&issuer), (1, 2));
}

#[tokio::test]
async fn identical_refetch_keeps_the_generation() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let generation = keys.generation();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (2, 2));
    assert_eq!(keys.generation(), generation);
    // A removed key is a change.
    issuer.rotate_key();
    issuer.remove_key("key-1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(keys.fetch(&iss, "key-1").await.unwrap_err(), KeyError::UnknownKid);
    assert!(keys.generation() > generation);
}

#[tokio::test]
async fn max_age_lowers_the_lifetime_but_never_raises_it() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    assert!(keys.cached(&iss, "key-1").is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(keys.fresh(&iss, "key-1").is_none());
    assert!(keys.cached(&iss, "key-1").is_some());
    eventually("the refresh", || counts(&issuer) == (2, 2)).await;

    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(86_400));
    let keys = store_with(
        &issuer,
        KeySettings {
            cache_ttl: Duration::from_secs(1),
            ..KeySettings::default()
        },
    );
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(keys.fresh(&iss, "key-1").is_none());
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (2, 2));
}

#[tokio::test]
async fn a_failed_refresh_serves_the_last_good_keys_and_backs_off() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    let generation = keys.generation();
    issuer.set_fault(Fault::ServerError);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    issuer.reset_counters();
    // Stale keys are served while one refresh runs in the background.
    assert!(keys.cached(&iss, "key-1").is_some());

    // One attempt (discovery fails, so the key set is not even asked), then stale keys.
    eventually("the refresh attempt", || counts(&issuer) == (1, 0)).await;
    assert_eq!(keys.fetch(&iss, "key-1").await.unwrap().kid(), "key-1");
    assert_eq!(counts(&issuer), (1, 0));
    // Served from the hot path during the back-off, without a fetch.
    assert!(keys.cached(&iss, "key-1").is_some());
    for _ in 0..20 {
        keys.fetch(&iss, "key-1").await.unwrap();
    }
    assert_eq!(keys.fetch(&iss, "other").await.unwrap_err(), KeyError::UnknownKid);
    assert_eq!(counts(&issuer), (1, 0));
    assert_eq!(keys.generation(), generation);

    // After the back-off (1 s), one more attempt, then a longer back-off (2 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    keys.fetch(&iss, "key-1").await.unwrap();
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (2, 0));

    // The issuer recovers: fresh keys after the back-off.
    issuer.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (3, 1));
    assert!(keys.cached(&iss, "key-1").is_some());
}

#[tokio::test]
async fn a_failed_key_set_refresh_also_serves_stale_keys() {
    let issuer = TestIssuer::start();
    issuer.set_max_age(Some(1));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    keys.fetch(&iss, "key-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Discovery succeeds, the key set is garbage.
    issuer.set_fault_on(Endpoint::Jwks, Fault::Garbage);
    issuer.reset_counters();
    assert_eq!(keys.fetch(&iss, "key-1").await.unwrap().kid(), "key-1");
    assert_eq!(counts(&issuer), (1, 1));
    assert!(keys.cached(&iss, "key-1").is_some());
    keys.fetch(&iss, "key-1").await.unwrap();
    assert_eq!(counts(&issuer), (1, 1));
    // The key set endpoint drops connections: same (discovery, expired too, is refetched).
    issuer.set_fault_on(Endpoint::Jwks, Fault::Down);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(keys.fetch(&iss, "key-1").await.unwrap().kid(), "key-1");
    assert_eq!(counts(&issuer), (2, 2));
    assert!(keys.cached(&iss, "key-1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_cached_and_fetch_failing_is_unavailable_with_back_off() {
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::ServerError);
    let keys = store(&issuer);
    let iss = issuer.issuer();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let keys = Arc::clone(&keys);
        let iss = iss.clone();
        tasks.push(tokio::spawn(async move { keys.fetch(&iss, "key-1").await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), KeyError::Unavailable);
    }
    assert_eq!(counts(&issuer), (1, 0));

    issuer.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(keys.fetch(&iss, "key-1").await.unwrap().kid(), "key-1");
    assert_eq!(counts(&issuer), (2, 1));
}

#[tokio::test]
async fn every_fault_is_unavailable_on_a_cold_cache() {
    for fault in [
        Fault::Down,
        Fault::Garbage,
        Fault::ServerError,
        Fault::Oversized,
        Fault::Slow(Duration::from_secs(3)),
    ] {
        let issuer = TestIssuer::start();
        issuer.set_fault(fault);
        let keys = Arc::new(KeyStore::new(
            client(&issuer, Duration::from_millis(500)),
            KeySettings::default(),
        ));
        assert_eq!(
            keys.fetch(&issuer.issuer(), "key-1").await.unwrap_err(),
            KeyError::Unavailable,
            "{fault:?}"
        );
        assert_eq!(issuer.jwks_fetches(), 0, "{fault:?}");
    }
}

#[tokio::test]
async fn responses_are_capped_at_1_mib() {
    let issuer = TestIssuer::start();
    issuer.set_fault(Fault::Oversized);
    let keys = store(&issuer);
    let url = format!("{}.well-known/jwks.json", issuer.issuer());
    assert!(matches!(
        keys.get_json(Via::Shared, &url).await,
        Err(FetchError::TooLarge)
    ));
    issuer.set_fault(Fault::None);
    assert!(keys.get_json(Via::Shared, &url).await.is_ok());
}

#[tokio::test]
async fn discovery_with_another_issuer_is_refused() {
    let issuer = TestIssuer::start();
    issuer.set_discovery_issuer(Some("https://evil.example.com/".to_owned()));
    let keys = store(&issuer);
    let iss = issuer.issuer();
    assert_eq!(
        keys.fetch(&iss, "key-1").await.unwrap_err(),
        KeyError::Unavailable
    );
    assert_eq!(counts(&issuer), (1, 0));
    assert!(matches!(
        keys.fetch_discovery(Via::Shared, &iss).await,
        Err(FetchError::IssuerMismatch)
    ));
    // Not even a trailing-slash difference.
    issuer.set_discovery_issuer(Some(iss.trim_end_matches('/').to_owned()));
    assert!(matches!(
        keys.fetch_discovery(Via::Shared, &iss).await,
        Err(FetchError::IssuerMismatch)
    ));
}

#[tokio::test]
async fn bad_keys_are_skipped_without_losing_the_good_ones() {
    let issuer = TestIssuer::start();
    let good = issuer.jwks()["keys"][0].clone();
    let with = |changes: serde_json::Value| {
        let mut jwk = good.clone();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                jwk.as_object_mut().unwrap().remove(name);
            } else {
                jwk[name] = value.clone();
            }
        }
        jwk
    };
    let short_modulus = BASE64URL.encode([0xC5u8; 128]); // 1024 bits
    for jwk in [
        with(json!({"kid": "bad-base64", "n": "!!!not base64!!!"})),
        with(json!({"kid": "enc", "use": "enc"})),
        with(json!({"kid": "no-verify", "key_ops": ["encrypt"]})),
        with(json!({"kid": null})),
        with(json!({"kid": ""})),
        with(json!({"kid": "short", "n": short_modulus})),
        with(json!({"kid": "even-e", "e": "AQAA"})),
        with(json!({"kid": "oaep", "alg": "RSA-OAEP"})),
        with(json!({"kid": "ps256-only", "alg": "PS256"})),
        with(json!({"kid": "no-n", "n": null})),
        json!({"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"}),
        json!({"kty": "EC", "kid": "short-x", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "EC", "kid": "off-curve", "crv": "P-256",
               "x": BASE64URL.encode([1u8; 32]), "y": BASE64URL.encode([2u8; 32])}),
        json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": BASE64URL.encode([9u8; 32])}),
        json!("not an object"),
        with(json!({"kid": "key-1"})), // a duplicate of the good kid: the first one wins
    ] {
        issuer.publish_jwk(jwk);
    }
    let keys = store(&issuer);
    let iss = issuer.issuer();
    let key = keys.fetch(&iss, "key-1").await.unwrap();
    let (input, signature) = jws_parts(&issuer.token().sign());
    assert!(
        key.for_alg(Algorithm::RS256)
            .unwrap()
            .verify_sig(input.as_bytes(), &signature)
            .is_ok()
    );
    for kid in [
        "bad-base64",
        "enc",
        "no-verify",
        "short",
        "even-e",
        "oaep",
        "ps256-only",
        "no-n",
        "symmetric",
        "short-x",
        "off-curve",
        "x25519",
    ] {
        assert!(keys.cached(&iss, kid).is_none(), "{kid}");
    }
    assert_eq!(
        keys.snapshot.load().key_sets.values().next().unwrap().keys.len(),
        1
    );
}

#[tokio::test]
async fn a_set_without_usable_keys_is_a_failure() {
    let issuer = TestIssuer::start();
    issuer.remove_key("key-1");
    issuer.publish_jwk(json!({"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"}));
    let keys = store(&issuer);
    assert_eq!(
        keys.fetch(&issuer.issuer(), "symmetric").await.unwrap_err(),
        KeyError::Unavailable
    );
}

#[tokio::test]
async fn caches_are_bounded_least_recently_used_first() {
    let issuers = [TestIssuer::start(), TestIssuer::start(), TestIssuer::start()];
    // One client trusting all three CAs.
    let mut builder = reqwest::Client::builder();
    for issuer in &issuers {
        builder =
            builder.tls_certs_merge([reqwest::Certificate::from_pem(issuer.ca_pem().as_bytes()).unwrap()]);
    }
    let keys = Arc::new(KeyStore::new(
        builder.build().unwrap(),
        KeySettings {
            cache_max_entries: 2,
            ..KeySettings::default()
        },
    ));
    let [a, b, c] = issuers.each_ref().map(TestIssuer::issuer);
    keys.fetch(&a, "key-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    keys.fetch(&b, "key-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(keys.cached(&a, "key-1").is_some()); // a is now more recent than b
    tokio::time::sleep(Duration::from_millis(5)).await;
    keys.fetch(&c, "key-1").await.unwrap();
    let snapshot = keys.snapshot.load();
    assert_eq!(snapshot.issuers.len(), 2);
    assert_eq!(snapshot.key_sets.len(), 2);
    assert!(keys.cached(&a, "key-1").is_some());
    assert!(keys.cached(&b, "key-1").is_none());
    assert!(keys.cached(&c, "key-1").is_some());
}

/// A plain-HTTP server answering `respond(path)` verbatim; returns its base URL and a hit counter.
async fn plain_server(
    respond: impl Fn(&str, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counter, own) = (Arc::clone(&hits), base.clone());
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buffer = vec![0; 4096];
            let read = tcp.read(&mut buffer).await.unwrap();
            let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let response = respond(&own, &path);
            tcp.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (base, hits)
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_origin() {
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_owned();
    let redirect = |to: String| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let (other, other_hits) = {
        let ok = ok.clone();
        plain_server(move |_, _| ok.clone()).await
    };
    let (base, _) = plain_server(move |own, path| match path {
        "/same" => redirect(format!("{own}/ok")),
        "/cross" => redirect(format!("{other}/ok")),
        "/loop" => redirect(format!("{own}/loop")),
        _ => ok.clone(),
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .unwrap();
    let status = |path: &'static str| {
        let request = client.get(format!("{base}{path}")).send();
        async move { request.await.map(|response| response.status().as_u16()) }
    };
    assert_eq!(status("/same").await.unwrap(), 200);
    assert_eq!(status("/cross").await.unwrap(), 302);
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    assert!(status("/loop").await.is_err());
}

#[test]
fn rsa_der_from_a_jwk_matches_aws_lc() {
    use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = pair.public_key();
    let jwk = json!({
        "n": BASE64URL.encode(public.modulus().big_endian_without_leading_zero()),
        // With a superfluous leading zero, which must be tolerated.
        "e": BASE64URL.encode([0u8, 1, 0, 1]),
    });
    let der = rsa_material(jwk.as_object().unwrap()).unwrap();
    assert_eq!(der, public.as_ref());
}
