use std::sync::Arc;

use super::*;

const NOW: i64 = 1_800_000_000;

fn check(store: &MemoryReplayStore, jkt: &str, jti: &str, expires_at: i64, now: i64) -> ReplayOutcome {
    store.record(&ProofUse::new(jkt, jti, "user", expires_at, now))
}

#[test]
fn a_proof_is_accepted_once() {
    let store = MemoryReplayStore::new(1000);
    assert_eq!(
        check(&store, "jkt", "one", NOW + 300, NOW),
        ReplayOutcome::FirstUse
    );
    assert_eq!(check(&store, "jkt", "one", NOW + 300, NOW), ReplayOutcome::Replay);
    assert_eq!(
        check(&store, "jkt", "one", NOW + 400, NOW + 10),
        ReplayOutcome::Replay
    );
    assert_eq!(
        check(&store, "jkt", "two", NOW + 300, NOW),
        ReplayOutcome::FirstUse
    );
    assert_eq!(
        check(&store, "other", "one", NOW + 300, NOW),
        ReplayOutcome::FirstUse
    );
    assert_eq!(store.len(), 3);
}

#[test]
fn keys_cannot_collide() {
    let store = MemoryReplayStore::new(1000);
    for (jkt, jti) in [("ab", "c"), ("a", "bc"), ("1:a", "b"), ("1", ":ab")] {
        assert_eq!(check(&store, jkt, jti, NOW + 300, NOW), ReplayOutcome::FirstUse);
    }
    let digest = |jkt, jti| ProofUse::new(jkt, jti, "s", 0, 0).digest();
    assert_ne!(digest("ab", "c"), digest("a", "bc"));
}

/// Defect: a replay handled as the second ticks found its record purged by a second clock
/// reading. The record lives through `expires_at`, judged by the caller's `now`.
#[test]
fn a_record_lives_through_its_last_second() {
    let store = MemoryReplayStore::new(1000);
    let iat = NOW;
    let last = iat + 300;
    assert_eq!(check(&store, "jkt", "edge", last, last), ReplayOutcome::FirstUse);
    assert_eq!(check(&store, "jkt", "edge", last, last), ReplayOutcome::Replay);
    // Past it the proof fails the iat check anyway; its slot is reusable.
    assert_eq!(
        check(&store, "jkt", "edge", last + 300, last + 1),
        ReplayOutcome::FirstUse
    );
}

/// Defect: a full store evicted live records (the ones nearest expiry), so one client with a
/// valid token could make the store forget other clients' proofs and replay them.
#[test]
fn a_full_store_refuses_instead_of_forgetting() {
    let store = MemoryReplayStore::new(100).with_share(1_000_000);
    let victim = ProofUse::new("victim-key", "captured", "victim", NOW + 5, NOW);
    assert_eq!(store.record(&victim), ReplayOutcome::FirstUse);
    let mut refused = 0;
    for i in 0..10_000 {
        // The attacker's proofs dated in the future live longest.
        let outcome = store.record(&ProofUse::new(
            "attacker",
            &i.to_string(),
            "mallory",
            NOW + 330,
            NOW,
        ));
        if outcome == ReplayOutcome::Unavailable {
            refused += 1;
        }
    }
    assert!(refused >= 10_000 - 110, "{refused}");
    assert_eq!(
        store.record(&victim),
        ReplayOutcome::Replay,
        "the victim's record survives"
    );
    // Once the victim's record expires, its slot makes room again.
    let later = ProofUse::new("victim-key", "next", "victim", NOW + 400, NOW + 6);
    assert_eq!(store.record(&later), ReplayOutcome::FirstUse);
}

#[test]
fn one_key_or_subject_holds_only_its_share() {
    let store = MemoryReplayStore::new(80_000);
    let share = 80_000 / 8;
    for i in 0..share {
        let jti = i.to_string();
        let proof = ProofUse::new("heavy-key", &jti, "heavy", NOW + 300, NOW);
        assert_eq!(store.record(&proof), ReplayOutcome::FirstUse, "{i}");
    }
    let over = ProofUse::new("heavy-key", "one-more", "heavy", NOW + 300, NOW);
    assert_eq!(store.record(&over), ReplayOutcome::Unavailable);
    // Another key of the same subject: the subject's share is used up too.
    let other_key = ProofUse::new("second-key", "x", "heavy", NOW + 300, NOW);
    assert_eq!(store.record(&other_key), ReplayOutcome::Unavailable);
    // Everybody else is unaffected.
    let honest = ProofUse::new("honest-key", "x", "honest", NOW + 300, NOW);
    assert_eq!(store.record(&honest), ReplayOutcome::FirstUse);
    // Once the heavy caller's proofs expire, its share is free again.
    let later = ProofUse::new("heavy-key", "later", "heavy", NOW + 700, NOW + 400);
    assert_eq!(store.record(&later), ReplayOutcome::FirstUse);
}

#[test]
fn expired_records_make_room_and_live_ones_stay() {
    let store = MemoryReplayStore::new(3000).with_share(1_000_000);
    // Fill it with records expiring at different times, far beyond capacity over time.
    for round in 0..20i64 {
        let now = NOW + round * 10;
        for i in 0..2_500 {
            let jti = format!("{round}-{i}");
            assert_eq!(
                check(&store, "k", &jti, now + 9, now),
                ReplayOutcome::FirstUse,
                "round {round}"
            );
        }
        // Every record of this round is still refused as a replay.
        for i in (0..2_500).step_by(97) {
            assert_eq!(
                check(&store, "k", &format!("{round}-{i}"), now + 9, now + 9),
                ReplayOutcome::Replay
            );
        }
        assert!(store.len() <= 3000 + 3000 / 16 + 1);
    }
}

#[test]
fn memory_is_fixed_and_small() {
    let store = MemoryReplayStore::default();
    let per_record = store.memory_bytes() as f64 / store.capacity() as f64;
    assert!(per_record <= 48.0, "{per_record} bytes a record");
    assert!(format!("{store:?}").contains("capacity: 330000"));
}

#[test]
fn concurrent_uses_are_accepted_once() {
    let store = Arc::new(MemoryReplayStore::new(100_000).with_share(100_000));
    let accepted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                s.spawn(move || {
                    (0..500)
                        .filter(|i| {
                            check(&store, "k", &i.to_string(), NOW + 300, NOW) == ReplayOutcome::FirstUse
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(accepted, 500);
}

/// A store that answers what it is told to, now or later.
struct Fixed(ReplayOutcome, bool);

impl ReplayStore for Fixed {
    fn check_and_record(&self, _: &ProofUse<'_>) -> ReplayCheck {
        let outcome = self.0;
        if self.1 {
            ReplayCheck::pending(async move { outcome })
        } else {
            ReplayCheck::Ready(outcome)
        }
    }
}

/// Failing open accepts what an unreachable store could not check, and nothing else: a full
/// store still refuses, a replay is still a replay.
#[tokio::test]
async fn failing_open_accepts_only_what_could_not_be_checked() {
    let proof = ProofUse::new("k", "j", "s", NOW + 1, NOW);
    for later in [false, true] {
        for (answer, expected) in [
            (ReplayOutcome::Unreachable, ReplayOutcome::FirstUse),
            (ReplayOutcome::Unavailable, ReplayOutcome::Unavailable),
            (ReplayOutcome::Replay, ReplayOutcome::Replay),
            (ReplayOutcome::FirstUse, ReplayOutcome::FirstUse),
        ] {
            let store = FailOpen::new(Arc::new(Fixed(answer, later)));
            let check = store.check_and_record(&proof);
            assert_eq!(matches!(check, ReplayCheck::Pending(_)), later);
            assert_eq!(check.await, expected, "{answer:?}");
        }
    }
    // The in-memory store, full, refuses even when failing open.
    let full = FailOpen::new(Arc::new(MemoryReplayStore::new(1)));
    let mut outcomes = Vec::new();
    for i in 0..10 {
        let (jkt, subject) = (format!("k{i}"), format!("s{i}"));
        outcomes.push(
            full.check_and_record(&ProofUse::new(&jkt, "j", &subject, NOW + 1, NOW))
                .await,
        );
    }
    assert_eq!(outcomes[0], ReplayOutcome::FirstUse);
    assert_eq!(outcomes[9], ReplayOutcome::Unavailable, "{outcomes:?}");
}

#[tokio::test]
async fn the_answer_is_a_future() {
    let store = MemoryReplayStore::new(10);
    let proof = ProofUse::new("k", "j", "s", NOW + 1, NOW);
    assert_eq!(store.check_and_record(&proof).await, ReplayOutcome::FirstUse);
    let pending = ReplayCheck::pending(async { ReplayOutcome::Unavailable });
    assert_eq!(pending.await, ReplayOutcome::Unavailable);
}
