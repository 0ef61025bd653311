use super::*;

#[test]
fn credentials_never_show() {
    for url in [
        "redis://:hunter2@127.0.0.1:6379/2",
        "redis://alice:hunter2@127.0.0.1/0",
        "rediss://alice:hun%40ter2@cache.internal:6380/1",
        "redis://:hun/ter2@127.0.0.1:6379",
        "redis://:hun@ter2@127.0.0.1:6379/3?x=hunter2#hunter2",
    ] {
        let builder = RedisReplayStore::builder(url);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("hun"), "{shown}");
        match builder.build() {
            Ok(store) => {
                let shown = format!("{store:?}");
                assert!(!shown.contains("hun") && !shown.contains("alice"), "{shown}");
                assert!(
                    shown.contains("127.0.0.1:6379") || shown.contains(":6380/1"),
                    "{shown}"
                );
            }
            Err(error) => {
                let shown = format!("{error} {error:?}");
                assert!(shown.starts_with("AUTH0_REPLAY_STORE "), "{shown}");
                assert!(!shown.contains("hun"), "{shown}");
            }
        }
    }
    let store = RedisReplayStore::new("redis://:pw@127.0.0.1:6379/2").unwrap();
    assert_eq!(store.inner.target, "redis://127.0.0.1:6379/2");
    let store = RedisReplayStore::new("rediss://u:pw@[::1]:6380").unwrap();
    assert_eq!(store.inner.target, "rediss://[::1]:6380/0");
}

#[test]
fn bad_settings_are_refused_by_name() {
    let refusal = |builder: RedisReplayStoreBuilder| builder.build().unwrap_err().to_string();
    for url in [
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis+unix:///tmp/r.sock",
        "memory",
    ] {
        let message = refusal(RedisReplayStore::builder(url));
        assert!(
            message.starts_with("AUTH0_REPLAY_STORE must be a Redis URL"),
            "{message}"
        );
    }
    let message = refusal(RedisReplayStore::builder("rediss://h:6380/0#insecure"));
    assert!(message.contains("#fragment"), "{message}");
    let message = refusal(RedisReplayStore::builder("redis://:pw@host:notaport/0"));
    assert!(
        message.contains("not a valid Redis URL") && !message.contains("pw"),
        "{message}"
    );
    let message = refusal(RedisReplayStore::builder("redis://h/x"));
    assert!(message.contains("not a valid Redis URL"), "{message}");
    let message = refusal(RedisReplayStore::builder("redis://h").timeout(Duration::ZERO));
    assert!(message.contains("timeout"), "{message}");
    let message = refusal(RedisReplayStore::builder("redis://h").clock_skew(Duration::from_secs(301)));
    assert!(message.contains("clock skew"), "{message}");
    let message = refusal(RedisReplayStore::builder("redis://h").prefix("p".repeat(129)));
    assert!(message.contains("prefix"), "{message}");
    let message = refusal(RedisReplayStore::builder("redis://h").root_certificates_pem("x"));
    assert!(message.contains("rediss://"), "{message}");
}

#[test]
fn one_fixed_size_key_per_proof_expiring_after_its_window() {
    let store = RedisReplayStore::builder("redis://127.0.0.1:1/0")
        .prefix("p:")
        .clock_skew(Duration::from_secs(2))
        .build()
        .unwrap();
    let now = 1_800_000_000;
    let proof = ProofUse::new("thumbprint", "jti", "user", now + 300, now);
    let args: Vec<String> = store
        .inner
        .command(&proof)
        .args_iter()
        .map(|a| match a {
            ::redis::Arg::Simple(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            _ => panic!("a plain argument"),
        })
        .collect();
    let key = format!("p:{}", URL_SAFE_NO_PAD.encode(proof.digest()));
    let expires = ((now + 300 + 1 + 2) * 1000).to_string();
    assert_eq!(args, ["SET", &key, "1", "NX", "PXAT", &expires]);
    assert_eq!(key.len(), 2 + 43);
}

/// Nothing listens on port 1: the check answers `Unreachable` within its timeout, from a
/// runtime that is not the store's, and the store was built outside any runtime.
#[test]
fn an_unreachable_store_answers_in_bounded_time() {
    let store = RedisReplayStore::builder("redis://127.0.0.1:1/0")
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let proof = ProofUse::new("k", "j", "s", 1_800_000_300, 1_800_000_000);
    let started = Instant::now();
    let outcome = runtime.block_on(store.check_and_record(&proof));
    assert_eq!(outcome, ReplayOutcome::Unreachable);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!runtime.block_on(store.reachable()));
}
