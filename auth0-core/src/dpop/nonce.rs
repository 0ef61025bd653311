//! DPoP server nonces (RFC 9449 §8–9), stateless: a nonce is a time step and an HMAC over it, so
//! every instance holding the same secret accepts every other instance's nonces, with no shared
//! state.
//!
//! `nonce = base64url(step as 8 bytes, big-endian || HMAC-SHA256(secret, label || step)[..16])`.
//! A nonce is accepted during its own step and the next one; the first secret makes nonces and
//! every secret is accepted, so secrets rotate without a flag day.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length of a step, in seconds.
pub(crate) const STEP_SECONDS: i64 = 60;
/// Bytes of MAC kept in a nonce: 128 bits, unguessable.
const MAC_LEN: usize = 16;
/// Domain separation: these MACs mean nothing anywhere else.
const LABEL: &[u8] = b"auth0-runtime dpop nonce v1";

/// Makes and checks nonces.
pub(crate) struct Nonces {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("secrets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Whether a validator of this process uses server nonces. Until one does, adapters skip the
/// per-request bookkeeping of nonce renewal.
static IN_USE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`IN_USE`].
#[cfg_attr(not(feature = "actix"), allow(dead_code, reason = "the Actix adapter's"))]
pub(crate) fn in_use() -> bool {
    IN_USE.load(std::sync::atomic::Ordering::Relaxed)
}

impl Nonces {
    /// From the secrets, the first making nonces; `None` for an empty list.
    pub(crate) fn new(secrets: &[Vec<u8>]) -> Option<Self> {
        if !secrets.is_empty() {
            IN_USE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        (!secrets.is_empty()).then(|| Self {
            keys: secrets
                .iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s))
                .collect(),
        })
    }

    fn step(now: i64) -> i64 {
        now.div_euclid(STEP_SECONDS)
    }

    fn mac(key: &hmac::Key, step: i64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(LABEL);
        ctx.update(&step.to_be_bytes());
        ctx.sign()
    }

    /// The nonce of the current step.
    pub(crate) fn current(&self, now: i64) -> String {
        let step = Self::step(now);
        let mut raw = [0u8; 8 + MAC_LEN];
        raw[..8].copy_from_slice(&step.to_be_bytes());
        if let Some(key) = self.keys.first() {
            raw[8..].copy_from_slice(&Self::mac(key, step).as_ref()[..MAC_LEN]);
        }
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` was made by one of the secrets, in this step or the previous one.
    pub(crate) fn check(&self, nonce: &str, now: i64) -> Verdict {
        let mut raw = [0u8; 8 + MAC_LEN];
        let decoded = URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut raw);
        if decoded != Ok(raw.len()) || nonce.len() != 32 {
            return Verdict::Invalid;
        }
        let mut step = [0u8; 8];
        step.copy_from_slice(&raw[..8]);
        let step = i64::from_be_bytes(step);
        let current = Self::step(now);
        if step != current && step != current - 1 {
            return Verdict::Invalid;
        }
        let genuine = self.keys.iter().any(|key| {
            constant_time::verify_slices_are_equal(&Self::mac(key, step).as_ref()[..MAC_LEN], &raw[8..])
                .is_ok()
        });
        match (genuine, step == current) {
            (false, _) => Verdict::Invalid,
            (true, true) => Verdict::Current,
            (true, false) => Verdict::Previous,
        }
    }
}

/// What a proof's nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Made in this step.
    Current,
    /// Made in the previous step: accepted, and the answer carries the current one.
    Previous,
    /// Missing, forged, from another secret, or too old.
    Invalid,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_nonce_lives_for_its_step_and_the_next() {
        let nonces = Nonces::new(&[vec![7; 32]]).unwrap();
        let nonce = nonces.current(NOW);
        assert_eq!(nonce.len(), 32);
        assert_eq!(nonces.check(&nonce, NOW), Verdict::Current);
        assert_eq!(nonces.check(&nonce, NOW + STEP_SECONDS), Verdict::Previous);
        assert_eq!(nonces.check(&nonce, NOW + 2 * STEP_SECONDS), Verdict::Invalid);
        assert_eq!(
            nonces.check(&nonce, NOW - STEP_SECONDS),
            Verdict::Invalid,
            "not from the future"
        );
    }

    #[test]
    fn only_the_secrets_make_valid_nonces() {
        let old = Nonces::new(&[vec![1; 32]]).unwrap();
        let rotated = Nonces::new(&[vec![2; 32], vec![1; 32]]).unwrap();
        let other = Nonces::new(&[vec![3; 32]]).unwrap();
        let nonce = old.current(NOW);
        assert_eq!(
            rotated.check(&nonce, NOW),
            Verdict::Current,
            "old secrets are still accepted"
        );
        assert_eq!(other.check(&nonce, NOW), Verdict::Invalid);
        assert_eq!(
            old.check(&rotated.current(NOW), NOW),
            Verdict::Invalid,
            "the first secret makes them"
        );
        // Tampered steps and truncated or padded nonces.
        let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        raw[7] ^= 1;
        assert_eq!(old.check(&URL_SAFE_NO_PAD.encode(&raw), NOW), Verdict::Invalid);
        for bad in ["", "x", &nonce[..31], &format!("{nonce}A"), &format!("{nonce}=")] {
            assert_eq!(old.check(bad, NOW), Verdict::Invalid, "{bad}");
        }
    }
}
