//! The verified-token cache: repeat presentations of a token skip parsing and the signature check.
//!
//! A fixed array of slots indexed by the token's SHA-256; each slot holds at most one entry and a
//! newer token landing on the same slot replaces it, so the cache is bounded by construction and
//! needs no eviction pass. Reads and writes are single atomic pointer operations (arc-swap): no
//! lock. An entry keeps the whole digest, so a hit means the very same token bytes, and the key-set
//! generation it was verified under, so a changed key set invalidates it.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_lc_rs::digest;

use crate::claims::TokenClaims;

pub(crate) struct TokenCache {
    slots: Box<[ArcSwapOption<Entry>]>,
}

pub(crate) struct Entry {
    digest: [u8; 32],
    generation: u64,
    /// The key that verified the token: a hit counts only while its key set is still usable.
    pub(crate) kid: Box<str>,
    pub(crate) claims: Arc<TokenClaims>,
}

/// A token's digest, computed once per request and used for both lookup and insertion.
pub(crate) struct Key([u8; 32]);

impl Key {
    pub(crate) fn of(token: &str) -> Self {
        let mut out = [0; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        Self(out)
    }

    fn slot<'c>(&self, slots: &'c [ArcSwapOption<Entry>]) -> Option<&'c ArcSwapOption<Entry>> {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        let index = u64::from_le_bytes(head).checked_rem(slots.len() as u64)?;
        slots.get(usize::try_from(index).ok()?)
    }
}

impl TokenCache {
    /// A cache of `entries` slots; 0 turns it off.
    pub(crate) fn new(entries: usize) -> Self {
        Self {
            slots: (0..entries).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The entry of a token verified under key-set `generation`, if cached.
    pub(crate) fn get(&self, key: &Key, generation: u64) -> Option<Arc<Entry>> {
        let slot = key.slot(&self.slots)?;
        let guard = slot.load();
        let entry = guard.as_ref()?;
        (entry.digest == key.0 && entry.generation == generation).then(|| Arc::clone(entry))
    }

    pub(crate) fn insert(&self, key: Key, generation: u64, kid: &str, claims: Arc<TokenClaims>) {
        if let Some(slot) = key.slot(&self.slots) {
            slot.store(Some(Arc::new(Entry {
                digest: key.0,
                generation,
                kid: kid.into(),
                claims,
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str) -> Arc<TokenClaims> {
        let json = format!(r#"{{"iss":"https://t/","sub":"{sub}","aud":"a","exp":2000000000,"iat":1}}"#);
        Arc::new(TokenClaims::from_payload(json.as_bytes()).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn a_hit_needs_the_same_token_and_generation() {
        let cache = TokenCache::new(64);
        cache.insert(Key::of("token-a"), 1, "kid", claims("a"));
        assert_eq!(
            cache.get(&Key::of("token-a"), 1).map(|c| c.claims.sub.clone()),
            Some("a".to_owned())
        );
        assert!(cache.get(&Key::of("token-b"), 1).is_none());
        assert!(
            cache.get(&Key::of("token-a"), 2).is_none(),
            "a new key set invalidates"
        );
    }

    #[test]
    fn it_is_bounded_and_can_be_off() {
        let cache = TokenCache::new(8);
        for i in 0..1000 {
            cache.insert(Key::of(&format!("t{i}")), 0, "kid", claims("x"));
        }
        let live = (0..1000)
            .filter(|i| cache.get(&Key::of(&format!("t{i}")), 0).is_some())
            .count();
        assert!(live <= 8, "{live}");
        let off = TokenCache::new(0);
        off.insert(Key::of("t"), 0, "kid", claims("x"));
        assert!(!off.enabled() && off.get(&Key::of("t"), 0).is_none());
    }
}
