//! Strict parsing of compact JWS (RFC 7515 §7.1), shared by access tokens and DPoP proofs.
//!
//! Only the structure is checked here: three segments of strict base64url, a header and a payload
//! that are JSON objects without duplicate member names (at any depth), and a size cap applied
//! before any decoding. What the header and payload say is for the callers to judge.
//!
//! Duplicate member names are refused because two JSON parsers may disagree on which of the
//! repeated members wins (RFC 8259 §4 leaves it open; RFC 7515 §5.2 says to reject or take the last).
//! Names are compared after unescaping, so `{"a":1,"\u0061":2}` is a duplicate too.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The largest compact JWS looked at, in bytes; anything longer is refused before decoding.
pub(crate) const MAX_JWS_BYTES: usize = 16 * 1024;

/// A compact JWS that passed the structural checks. Nothing in it is verified yet.
pub(crate) struct Jws<'a> {
    /// `header.payload`, exactly as received: the JWS signing input.
    pub(crate) signing_input: &'a str,
    /// The decoded header: a JSON object with no duplicate member names.
    pub(crate) header: Vec<u8>,
    /// The decoded payload: a JSON object with no duplicate member names.
    pub(crate) payload: Vec<u8>,
    /// The decoded signature (never empty).
    pub(crate) signature: Vec<u8>,
}

impl fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: never print it.
        f.debug_struct("Jws")
            .field("signing_input_len", &self.signing_input.len())
            .field("header_len", &self.header.len())
            .field("payload_len", &self.payload.len())
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// Why a compact JWS was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwsError {
    /// Longer than [`MAX_JWS_BYTES`].
    TooLarge,
    /// Not three segments, a segment that is not strict base64url, or an empty signature.
    Malformed,
    /// The header or the payload is not a JSON object, or repeats a member name.
    NotJson,
}

/// Split and decode a compact JWS, checking its structure only.
///
/// Strict base64url (RFC 7515 §2, RFC 4648 §5): the alphabet `A–Z a–z 0–9 - _` only, no padding,
/// no whitespace, and no non-zero trailing bits (each byte string has exactly one encoding).
pub(crate) fn parse(compact: &str) -> Result<Jws<'_>, JwsError> {
    if compact.len() > MAX_JWS_BYTES {
        return Err(JwsError::TooLarge);
    }
    let (header_b64, rest) = compact.split_once('.').ok_or(JwsError::Malformed)?;
    let (payload_b64, signature_b64) = rest.split_once('.').ok_or(JwsError::Malformed)?;
    if signature_b64.contains('.') || signature_b64.is_empty() {
        return Err(JwsError::Malformed);
    }
    let signing_input = &compact[..header_b64.len() + 1 + payload_b64.len()];

    let header = decode(header_b64)?;
    let payload = decode(payload_b64)?;
    let signature = decode(signature_b64)?;
    check_object(&header)?;
    check_object(&payload)?;
    Ok(Jws {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// Strict base64url without padding.
///
/// `URL_SAFE_NO_PAD` refuses padding, every byte outside the URL-safe alphabet (so `+`, `/` and
/// whitespace), impossible lengths, and non-canonical trailing bits
/// (`decode_allow_trailing_bits` is false in its config).
pub(crate) fn decode(segment: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwsError::Malformed)
}

/// Is `bytes` exactly one JSON object with no duplicate member names at any depth?
///
/// One pass with serde_json, allocation only for escaped member names and for the per-object
/// name lists; serde_json's recursion limit (128) bounds the depth.
pub(crate) fn check_object(bytes: &[u8]) -> Result<(), JwsError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    TopObject::deserialize(&mut de).map_err(|_| JwsError::NotJson)?;
    de.end().map_err(|_| JwsError::NotJson)
}

/// The top level: an object and nothing else.
struct TopObject;

impl<'de> Deserialize<'de> for TopObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectOnly)?;
        Ok(Self)
    }
}

struct ObjectOnly;

impl<'de> Visitor<'de> for ObjectOnly {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        walk_object(map)
    }
}

/// Any JSON value, walked for the objects inside it.
struct AnyValue;

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyVisitor)?;
        Ok(Self)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<AnyValue>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        walk_object(map)
    }
}

/// Walk one object's members, refusing a repeated (unescaped) name.
fn walk_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    let mut seen = SeenNames::default();
    while let Some(MemberName(name)) = map.next_key()? {
        if !seen.insert(name) {
            return Err(de::Error::custom("duplicate member name"));
        }
        map.next_value::<AnyValue>()?;
    }
    Ok(())
}

/// The member names of one object: a short list (the usual case, a handful of members), switching
/// to a hash set for large objects so a crafted token cannot make the check quadratic.
#[derive(Default)]
struct SeenNames<'de> {
    list: Vec<Cow<'de, str>>,
    set: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenNames<'de> {
    const LIST_MAX: usize = 16;

    /// `false` if `name` was already there.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(name);
        }
        if self.list.contains(&name) {
            return false;
        }
        if self.list.len() < Self::LIST_MAX {
            self.list.push(name);
        } else {
            let mut set: HashSet<Cow<'de, str>> = self.list.drain(..).collect();
            set.insert(name);
            self.set = Some(set);
        }
        true
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor).map(MemberName)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
