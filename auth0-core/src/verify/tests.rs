//! The verifier against a real issuer, with a frozen clock.

use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::clock::now;
use crate::testing::{DpopKey, TestIssuer};

/// A request as plain parts.
struct Parts(Vec<(&'static str, String)>);

impl RequestParts for Parts {
    fn method(&self) -> &str {
        "GET"
    }
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }
    fn scheme(&self) -> &str {
        "http"
    }
    fn host(&self) -> &str {
        "api.test"
    }
    fn path(&self) -> &str {
        "/x"
    }
}

static CLOCK: AtomicI64 = AtomicI64::new(0);

fn frozen() -> i64 {
    CLOCK.load(Ordering::Relaxed)
}

/// Defect: the `iat` check and the replay store read the clock separately, so a replay
/// handled as the second ticked passed the check at `iat + 300` and found its record purged.
/// One reading now decides both, and the record lives through that last second.
#[tokio::test]
async fn a_proof_in_the_last_second_of_its_window_is_still_refused_again() {
    let issuer = TestIssuer::start();
    // Well in the past, so a store reading its own clock would have purged the record.
    let t = now() - 10_000;
    CLOCK.store(t, Ordering::Relaxed);
    let mut config = issuer.config("https://api.test");
    config.clock = frozen;
    let auth0 = Auth0::new(config).unwrap();
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience("https://api.test")
        .bind_to(&key)
        .issued_at(t - 10)
        .expires_at(t + 3600)
        .sign();
    let proof = key
        .proof("GET", "http://api.test/x")
        .access_token(&token)
        .issued_at(t - 300)
        .sign();
    let request = Parts(vec![("authorization", format!("DPoP {token}")), ("dpop", proof)]);
    let first = auth0.authenticate::<serde_json::Value>(&request).await;
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(
        auth0
            .authenticate::<serde_json::Value>(&request)
            .await
            .unwrap_err(),
        AuthError::InvalidDpopProof("the DPoP proof has already been used")
    );
    // A second later the proof fails its iat check: nothing can pass twice.
    CLOCK.store(t + 1, Ordering::Relaxed);
    assert_eq!(
        auth0
            .authenticate::<serde_json::Value>(&request)
            .await
            .unwrap_err(),
        AuthError::InvalidDpopProof("the DPoP proof has expired")
    );
}
static NONCE_CLOCK: AtomicI64 = AtomicI64::new(0);

fn nonce_clock() -> i64 {
    NONCE_CLOCK.load(Ordering::Relaxed)
}

/// Server nonces live for their step and the next (then the answer carries a fresh one), and
/// are refused after that: a proof's freshness then comes from the server.
#[tokio::test]
async fn a_nonce_expires_after_two_steps() {
    let issuer = TestIssuer::start();
    let t = (now() / 60) * 60 + 5;
    NONCE_CLOCK.store(t, Ordering::Relaxed);
    let mut config = issuer
        .config("https://api.test")
        .dpop_nonce_secrets([vec![3u8; 32]]);
    config.clock = nonce_clock;
    config.dpop_iat_offset = std::time::Duration::from_secs(3600);
    let auth0 = Auth0::new(config).unwrap();
    let key = DpopKey::generate();
    let token = issuer
        .token()
        .audience("https://api.test")
        .bind_to(&key)
        .issued_at(t - 10)
        .expires_at(t + 3600)
        .sign();
    let nonce = auth0.dpop_nonce().unwrap();
    let at = |when: i64| {
        NONCE_CLOCK.store(when, Ordering::Relaxed);
        let proof = key
            .proof("GET", "http://api.test/x")
            .access_token(&token)
            .issued_at(when)
            .nonce(&nonce)
            .sign();
        let request = Parts(vec![("authorization", format!("DPoP {token}")), ("dpop", proof)]);
        let auth0 = auth0.clone();
        async move {
            match auth0.attempt(&request, None) {
                Attempt::Done(result) => result.map(|v| v.renew_nonce).map_err(|d| d.error),
                _ => panic!("keys are cached after the first call"),
            }
        }
    };
    // Warm the keys, so that each attempt completes at once.
    let bearer = issuer
        .token()
        .audience("https://api.test")
        .issued_at(t)
        .expires_at(t + 3600)
        .sign();
    let warm = Parts(vec![("authorization", format!("Bearer {bearer}"))]);
    assert!(auth0.authenticate::<serde_json::Value>(&warm).await.is_ok());
    assert_eq!(at(t).await, Ok(false));
    assert_eq!(
        at(t + 60).await,
        Ok(true),
        "last step's nonce passes and asks for renewal"
    );
    assert_eq!(
        at(t + 120).await,
        Err(AuthError::UseDpopNonce(
            "the DPoP proof must carry the server's current nonce"
        ))
    );
}

/// A refusal's precise reason is built only when its event is recorded: a flood of bad tokens
/// pays for no formatting (nor, for proofs, a second parse) when nobody listens at debug.
#[test]
fn reasons_are_built_only_for_a_listener() {
    let issuer = TestIssuer::offline();
    let auth0 = issuer.validator("https://api.test");
    let token = issuer.token().audience("https://other.test").sign();
    let request = Parts(vec![("authorization", format!("Bearer {token}"))]);
    let reason = || match auth0.attempt(&request, None) {
        Attempt::Done(Err(denied)) => denied.reason,
        _ => panic!("an offline validator decides at once"),
    };
    assert_eq!(reason(), None, "no subscriber, no reason");
    let listening = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    let heard = tracing::subscriber::with_default(listening, || {
        // Callsite interest is cached process-wide: recompute it with this subscriber registered.
        tracing::callsite::rebuild_interest_cache();
        reason()
    });
    assert!(
        heard.as_deref().is_some_and(|r| r.contains("this API accepts")),
        "{heard:?}"
    );
}
