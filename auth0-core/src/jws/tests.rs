use super::*;
use proptest::prelude::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(b"sig")
    )
}

const HEADER: &str = r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#;
const PAYLOAD: &str = r#"{"sub":"user","aud":["a","b"],"cnf":{"jkt":"x"},"n":1.5e3,"z":null}"#;

#[test]
fn a_valid_token_parses() {
    let compact = token(HEADER, PAYLOAD);
    let jws = parse(&compact).unwrap();
    assert_eq!(jws.header, HEADER.as_bytes());
    assert_eq!(jws.payload, PAYLOAD.as_bytes());
    assert_eq!(jws.signature, b"sig");
    let dot = compact.rfind('.').unwrap();
    assert_eq!(jws.signing_input, &compact[..dot]);
}

#[test]
fn the_debug_output_does_not_show_the_token() {
    let compact = token(HEADER, PAYLOAD);
    let shown = format!("{:?}", parse(&compact).unwrap());
    assert!(!shown.contains(&b64(HEADER.as_bytes())));
}

#[test]
fn segment_count_must_be_three() {
    let h = b64(HEADER.as_bytes());
    let p = b64(PAYLOAD.as_bytes());
    let s = b64(b"sig");
    assert_eq!(parse(&format!("{h}.{p}")).unwrap_err(), JwsError::Malformed);
    assert_eq!(
        parse(&format!("{h}.{p}.{s}.{s}")).unwrap_err(),
        JwsError::Malformed
    );
    assert_eq!(parse(&format!("{h}.{p}.{s}.")).unwrap_err(), JwsError::Malformed);
    assert_eq!(parse("").unwrap_err(), JwsError::Malformed);
    assert_eq!(parse("..").unwrap_err(), JwsError::Malformed);
    // Three segments, but an empty header is not a JSON object.
    assert_eq!(parse(".e30.c2ln").unwrap_err(), JwsError::NotJson);
    assert_eq!(parse("e30..c2ln").unwrap_err(), JwsError::NotJson);
}

#[test]
fn an_empty_signature_is_refused() {
    let compact = format!("{}.{}.", b64(HEADER.as_bytes()), b64(PAYLOAD.as_bytes()));
    assert_eq!(parse(&compact).unwrap_err(), JwsError::Malformed);
}

#[test]
fn padding_is_refused() {
    // "sig" → "c2ln" needs no padding; "si" → "c2k" does.
    let h = b64(HEADER.as_bytes());
    let p = b64(PAYLOAD.as_bytes());
    assert!(parse(&format!("{h}.{p}.c2k")).is_ok());
    assert_eq!(parse(&format!("{h}.{p}.c2k=")).unwrap_err(), JwsError::Malformed);
    let padded_header = base64::engine::general_purpose::URL_SAFE.encode(b"{\"a\":1}");
    assert!(padded_header.ends_with('='));
    assert_eq!(
        parse(&format!("{padded_header}.{p}.c2k")).unwrap_err(),
        JwsError::Malformed
    );
}

#[test]
fn standard_alphabet_is_refused() {
    // 0xfb 0xff encodes as "-_8" in base64url and "+/8" in standard base64.
    let h = b64(HEADER.as_bytes());
    let p = b64(PAYLOAD.as_bytes());
    assert!(parse(&format!("{h}.{p}.-_8")).is_ok());
    assert_eq!(parse(&format!("{h}.{p}.+_8")).unwrap_err(), JwsError::Malformed);
    assert_eq!(parse(&format!("{h}.{p}.-/8")).unwrap_err(), JwsError::Malformed);
}

#[test]
fn whitespace_is_refused() {
    let compact = token(HEADER, PAYLOAD);
    for ws in [" ", "\n", "\t", "\r\n"] {
        let (h, rest) = compact.split_at(4);
        assert_eq!(parse(&format!("{h}{ws}{rest}")).unwrap_err(), JwsError::Malformed);
        assert_eq!(parse(&format!("{compact}{ws}")).unwrap_err(), JwsError::Malformed);
        assert_eq!(parse(&format!("{ws}{compact}")).unwrap_err(), JwsError::Malformed);
    }
}

#[test]
fn non_canonical_trailing_bits_are_refused() {
    // "c2k" is "si"; "c2l" has the same two bytes with non-zero trailing bits.
    let h = b64(HEADER.as_bytes());
    let p = b64(PAYLOAD.as_bytes());
    assert_eq!(parse(&format!("{h}.{p}.c2l")).unwrap_err(), JwsError::Malformed);
    // An impossible length (4n + 1 characters).
    assert_eq!(parse(&format!("{h}.{p}.c2lnc")).unwrap_err(), JwsError::Malformed);
}

#[test]
fn header_and_payload_must_be_objects() {
    for bad in [
        "[]", "[{}]", "\"x\"", "1", "null", "true", "", "{", "{}{}", "{} x", "{\"a\"}",
    ] {
        assert_eq!(
            parse(&token(bad, PAYLOAD)).unwrap_err(),
            JwsError::NotJson,
            "{bad}"
        );
        assert_eq!(
            parse(&token(HEADER, bad)).unwrap_err(),
            JwsError::NotJson,
            "{bad}"
        );
    }
    assert!(parse(&token("{}", " {} ")).is_ok());
}

#[test]
fn invalid_utf8_is_refused() {
    let compact = format!(
        "{}.{}.{}",
        b64(HEADER.as_bytes()),
        b64(b"{\"a\":\"\xff\"}"),
        b64(b"sig")
    );
    assert_eq!(parse(&compact).unwrap_err(), JwsError::NotJson);
    // A lone surrogate escape is not a Unicode string either.
    assert_eq!(
        parse(&token(HEADER, r#"{"a":"\ud800"}"#)).unwrap_err(),
        JwsError::NotJson
    );
}

#[test]
fn duplicate_members_are_refused() {
    let cases = [
        r#"{"a":1,"a":1}"#,
        r#"{"a":1,"b":2,"a":3}"#,
        r#"{"cnf":{"jkt":"x","jkt":"y"}}"#,
        r#"{"x":[{"k":1},{"k":1,"k":2}]}"#,
        r#"{"x":[[[{"d":{"e":1,"e":1}}]]]}"#,
        // The same name once escaped: the names are equal after unescaping.
        r#"{"a":1,"\u0061":2}"#,
        r#"{"\u0061":1,"\u0061":2}"#,
        r#"{"alg":"RS256","al\u0067":"none"}"#,
    ];
    for bad in cases {
        assert_eq!(
            parse(&token(bad, PAYLOAD)).unwrap_err(),
            JwsError::NotJson,
            "{bad}"
        );
        assert_eq!(
            parse(&token(HEADER, bad)).unwrap_err(),
            JwsError::NotJson,
            "{bad}"
        );
    }
    // The same name in different objects, and similar names, are fine.
    for good in [
        r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#,
        r#"{"a":1,"A":2,"a ":3}"#,
    ] {
        assert!(parse(&token(HEADER, good)).is_ok(), "{good}");
    }
}

#[test]
fn duplicates_are_found_in_large_objects() {
    let mut members: Vec<String> = (0..200).map(|i| format!("\"m{i}\":{i}")).collect();
    let object = format!("{{{}}}", members.join(","));
    assert!(parse(&token(HEADER, &object)).is_ok());
    members.push("\"m3\":0".into());
    let object = format!("{{{}}}", members.join(","));
    assert_eq!(parse(&token(HEADER, &object)).unwrap_err(), JwsError::NotJson);
    members.pop();
    members.push("\"m199\":0".into());
    let object = format!("{{{}}}", members.join(","));
    assert_eq!(parse(&token(HEADER, &object)).unwrap_err(), JwsError::NotJson);
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(3000), "]".repeat(3000));
    let compact = token(HEADER, &deep);
    assert!(compact.len() <= MAX_JWS_BYTES);
    assert_eq!(parse(&compact).unwrap_err(), JwsError::NotJson);
}

#[test]
fn size_is_capped_before_decoding() {
    let pad = "x".repeat(MAX_JWS_BYTES);
    let big = token(HEADER, &format!("{{\"p\":\"{pad}\"}}"));
    assert_eq!(parse(&big).unwrap_err(), JwsError::TooLarge);
    // Over the cap, even garbage is reported as too large: nothing was decoded.
    assert_eq!(
        parse(&"!".repeat(MAX_JWS_BYTES + 1)).unwrap_err(),
        JwsError::TooLarge
    );
    // Exactly at the cap is looked at.
    let at_cap = "!".repeat(MAX_JWS_BYTES);
    assert_eq!(parse(&at_cap).unwrap_err(), JwsError::Malformed);
}

/// One edit to a compact JWS: a character inserted, replaced or removed, or none.
#[derive(Debug, Clone)]
enum Edit {
    None,
    Insert(prop::sample::Index, char),
    Replace(prop::sample::Index, char),
    Remove(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Base64url characters (so that a replacement is often still decodable), the standard
    // alphabet, padding, whitespace, a separator and some bytes no encoding has.
    let noise = prop::sample::select(vec![
        'A', 'B', 'Q', 'g', 'w', 'x', '0', '9', '-', '_', '+', '/', '=', ' ', '\n', '\t', '.', '%', 'é',
    ]);
    prop_oneof![
        Just(Edit::None),
        (any::<prop::sample::Index>(), noise.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<prop::sample::Index>(), noise).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<prop::sample::Index>().prop_map(Edit::Remove),
    ]
}

/// `s` (ASCII) with the edit applied.
fn apply(s: &str, edit: &Edit) -> String {
    let mut out = s.to_owned();
    match edit {
        Edit::None => {}
        Edit::Insert(i, c) => out.insert(i.index(s.len() + 1), *c),
        Edit::Replace(i, c) if !s.is_empty() => {
            let at = i.index(s.len());
            out.replace_range(at..=at, c.encode_utf8(&mut [0; 4]));
        }
        Edit::Remove(i) if !s.is_empty() => {
            out.remove(i.index(s.len()));
        }
        Edit::Replace(..) | Edit::Remove(_) => {}
    }
    out
}

/// A way to spell the bytes that a strict decoder must refuse.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    /// `=` padding (as `URL_SAFE` writes it, or one `=` too many).
    Padded,
    /// `+` and `/` (the standard alphabet) in place of `-` and `_`, or added.
    Standard,
    /// A whitespace character somewhere.
    Whitespace,
    /// The last character with non-zero bits past the end of the data.
    TrailingBits,
}

/// The 6-bit value of a base64url character.
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `bytes` spelled the wrong way, or `None` when `bytes` has no such spelling (no trailing
/// bits when the length is a multiple of 3).
fn misspell(bytes: &[u8], how: Spelling, at: prop::sample::Index, bits: u8) -> Option<String> {
    let canonical = b64(bytes);
    let mut out = canonical.clone();
    match how {
        Spelling::Padded => {
            let padded = base64::engine::general_purpose::URL_SAFE.encode(bytes);
            out = if padded == canonical {
                format!("{canonical}=")
            } else {
                padded
            };
        }
        Spelling::Standard => {
            out = canonical.replace('-', "+").replace('_', "/");
            if out == canonical {
                out.insert(
                    at.index(canonical.len() + 1),
                    if bits & 1 == 0 { '+' } else { '/' },
                );
            }
        }
        Spelling::Whitespace => {
            let ws = [' ', '\n', '\r', '\t'][usize::from(bits % 4)];
            out.insert(at.index(canonical.len() + 1), ws);
        }
        Spelling::TrailingBits => {
            // 1 byte left over: 4 unused bits; 2 bytes: 2 unused bits.
            let unused = match bytes.len() % 3 {
                1 => 0b1111,
                2 => 0b11,
                _ => return None,
            };
            let last = *canonical.as_bytes().last()?;
            let noise = (bits % unused) + 1;
            let bad = ALPHABET[usize::from(sextet(last) | noise)];
            out.pop();
            out.push(char::from(bad));
        }
    }
    Some(out)
}

fn object_text() -> impl Strategy<Value = String> {
    prop::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..4)
        .prop_map(|members| serde_json::to_string(&members).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: JWS compact parsing and its strict base64url never panic on any string; they
    // accept only canonical base64url (the URL-safe alphabet, no padding, no whitespace, no
    // non-zero trailing bits, so every byte string has exactly one accepted spelling); and
    // re-encoding what was accepted gives back the input byte for byte.

    #[test]
    fn parse_never_panics(s in ".{0,400}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_tokens(s in "[A-Za-z0-9_\\-.=+/ ]{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn decode_accepts_only_canonical_spellings(s in "[A-Za-z0-9_\\-=+/ \\n\\t.]{0,12}") {
        if let Ok(bytes) = decode(&s) {
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{s:?}");
            prop_assert_eq!(b64(&bytes), s);
        }
    }

    #[test]
    fn decode_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(decode(&b64(&bytes)), Ok(bytes));
    }

    #[test]
    fn every_other_spelling_is_refused(
        bytes in prop::collection::vec(any::<u8>(), 1..48),
        how in prop_oneof![
            Just(Spelling::Padded),
            Just(Spelling::Standard),
            Just(Spelling::Whitespace),
            Just(Spelling::TrailingBits),
        ],
        at in any::<prop::sample::Index>(),
        bits in any::<u8>(),
    ) {
        if let Some(bad) = misspell(&bytes, how, at, bits) {
            prop_assert_ne!(&bad, &b64(&bytes));
            prop_assert_eq!(decode(&bad), Err(JwsError::Malformed), "{:?}", bad);
            let h = b64(HEADER.as_bytes());
            let p = b64(PAYLOAD.as_bytes());
            for compact in [format!("{bad}.{p}.c2ln"), format!("{h}.{bad}.c2ln"), format!("{h}.{p}.{bad}")] {
                prop_assert!(parse(&compact).is_err(), "{:?}", compact);
            }
        }
    }

    #[test]
    fn an_accepted_token_re_encodes_to_itself(
        header in object_text(),
        payload in object_text(),
        signature in prop::collection::vec(any::<u8>(), 1..80),
        edit in edit(),
    ) {
        let original = format!("{}.{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()), b64(&signature));
        let compact = apply(&original, &edit);
        match parse(&compact) {
            Ok(jws) => {
                let again = format!("{}.{}.{}", b64(&jws.header), b64(&jws.payload), b64(&jws.signature));
                prop_assert_eq!(&again, &compact);
                let dot = compact.rfind('.').unwrap();
                prop_assert_eq!(jws.signing_input, &compact[..dot]);
            }
            Err(_) => prop_assert!(compact != original, "the unedited token was refused"),
        }
    }
}

/// A JSON value whose objects are lists of members, so that a name can be repeated.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// Member names: few letters (so near-misses such as `a`/`A`/`a ` are common), and characters
/// that must or may be escaped, one outside the BMP.
fn name() -> impl Strategy<Value = String> {
    r#"[aAbé😀"\\/\n\x00\x1f ]{0,3}"#
}

/// An object with distinct member names, in any order.
fn members(inner: impl Strategy<Value = J> + Clone) -> impl Strategy<Value = J> {
    prop::collection::btree_map(name(), inner, 0..4)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
        .prop_map(J::Obj)
}

/// An object without duplicate names at any depth.
fn object() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::Int),
        name().prop_map(J::Str),
    ];
    let value = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            members(inner),
        ]
    });
    members(value)
}

/// Writes `j` as JSON text; `escape` says, character by character, whether a member name's
/// character is written as `\uXXXX` (names are compared after unescaping).
fn render(j: &J, escape: &mut impl Iterator<Item = bool>, out: &mut String) {
    use std::fmt::Write as _;
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(n) => out.push_str(&n.to_string()),
        J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, escape, out);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                for c in name.chars() {
                    if escape.next().unwrap_or(false) || c == '"' || c == '\\' || c < ' ' {
                        for unit in c.encode_utf16(&mut [0; 2]) {
                            write!(out, "\\u{unit:04x}").unwrap();
                        }
                    } else {
                        out.push(c);
                    }
                }
                out.push_str("\":");
                render(value, escape, out);
            }
            out.push('}');
        }
    }
}

fn text(j: &J, escape: &[bool]) -> String {
    let mut out = String::new();
    render(j, &mut escape.iter().copied().cycle(), &mut out);
    out
}

/// What serde_json should read from `j` (names distinct).
fn expected(j: &J) -> serde_json::Value {
    use serde_json::Value;
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Int(n) => Value::from(*n),
        J::Str(s) => Value::String(s.clone()),
        J::Arr(items) => Value::Array(items.iter().map(expected).collect()),
        J::Obj(members) => Value::Object(members.iter().map(|(n, v)| (n.clone(), expected(v))).collect()),
    }
}

/// Non-empty objects in `j`, counted in document order.
fn non_empty_objects(j: &J) -> usize {
    match j {
        J::Obj(members) => {
            usize::from(!members.is_empty())
                + members.iter().map(|(_, v)| non_empty_objects(v)).sum::<usize>()
        }
        J::Arr(items) => items.iter().map(non_empty_objects).sum(),
        _ => 0,
    }
}

/// Repeats a member of the `which`-th non-empty object (`seen` counts them), at `at`.
fn repeat_member(
    j: &mut J,
    seen: &mut usize,
    which: usize,
    member: prop::sample::Index,
    at: prop::sample::Index,
) -> bool {
    match j {
        J::Obj(members) => {
            if !members.is_empty() {
                if *seen == which {
                    let (name, _) = members[member.index(members.len())].clone();
                    members.insert(at.index(members.len() + 1), (name, J::Int(0)));
                    return true;
                }
                *seen += 1;
            }
            members
                .iter_mut()
                .any(|(_, v)| repeat_member(v, seen, which, member, at))
        }
        J::Arr(items) => items
            .iter_mut()
            .any(|v| repeat_member(v, seen, which, member, at)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: the duplicate-member check never panics; an object that repeats a member name
    // (compared after unescaping) at any depth is refused, although it is valid JSON; and
    // objects without repeated names are accepted and read by serde_json as what was written.

    #[test]
    fn check_object_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = check_object(&bytes);
    }

    #[test]
    fn parse_never_panics_on_encoded_json_like_input(h in "[{}\\[\\]\":,a0\\\\u ]{0,60}", p in "[{}\\[\\]\":,a0\\\\u ]{0,60}") {
        let compact = token(&h, &p);
        if let Ok(jws) = parse(&compact) {
            prop_assert!(serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&jws.header).is_ok());
            prop_assert!(serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&jws.payload).is_ok());
        }
    }

    #[test]
    fn objects_without_duplicates_are_accepted_as_serde_json_reads_them(
        j in object(),
        escape in prop::collection::vec(any::<bool>(), 1..32),
    ) {
        let json = text(&j, &escape);
        prop_assert_eq!(check_object(json.as_bytes()), Ok(()), "{}", json);
        let read: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(read, expected(&j));
        prop_assert!(parse(&token(HEADER, &json)).is_ok());
    }

    #[test]
    fn a_duplicate_at_any_depth_is_refused(
        mut j in object(),
        which in any::<prop::sample::Index>(),
        member in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        escape in prop::collection::vec(any::<bool>(), 1..32),
    ) {
        match non_empty_objects(&j) {
            0 => j = J::Obj(vec![("a".into(), J::Null), ("a".into(), J::Null)]),
            n => prop_assert!(repeat_member(&mut j, &mut 0, which.index(n), member, at)),
        }
        let json = text(&j, &escape);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "{}", json);
        prop_assert_eq!(check_object(json.as_bytes()), Err(JwsError::NotJson), "{}", json);
        prop_assert_eq!(parse(&token(&json, PAYLOAD)).unwrap_err(), JwsError::NotJson);
        prop_assert_eq!(parse(&token(HEADER, &json)).unwrap_err(), JwsError::NotJson);
    }
}
