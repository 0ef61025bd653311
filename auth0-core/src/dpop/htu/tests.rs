use super::*;
use proptest::prelude::*;

fn norm(url: &str) -> Option<String> {
    normalize_htu(url)
}

#[test]
fn scheme_and_host_are_lower_cased() {
    assert_eq!(
        norm("HTTPS://API.Example.COM/Path").as_deref(),
        Some("https://api.example.com/Path")
    );
    assert_eq!(norm("hTtP://X/").as_deref(), Some("http://x/"));
}

#[test]
fn default_ports_are_dropped() {
    assert_eq!(
        norm("https://a.example:443/x").as_deref(),
        Some("https://a.example/x")
    );
    assert_eq!(
        norm("http://a.example:80/x").as_deref(),
        Some("http://a.example/x")
    );
    assert_eq!(
        norm("https://a.example:80/x").as_deref(),
        Some("https://a.example:80/x")
    );
    assert_eq!(
        norm("http://a.example:443/x").as_deref(),
        Some("http://a.example:443/x")
    );
    assert_eq!(
        norm("https://a.example:8443/x").as_deref(),
        Some("https://a.example:8443/x")
    );
    assert_eq!(
        norm("https://a.example:/x").as_deref(),
        Some("https://a.example/x")
    );
    assert_eq!(
        norm("https://a.example:0443/x").as_deref(),
        Some("https://a.example/x")
    );
    assert_eq!(
        norm("https://a.example:08443").as_deref(),
        Some("https://a.example:8443/")
    );
    assert_eq!(norm("https://a.example:65536/x"), None);
    assert_eq!(norm("https://a.example:-1/x"), None);
    assert_eq!(norm("https://a.example:44a/x"), None);
    assert_eq!(norm("https://a.example:1:2/x"), None);
}

#[test]
fn dot_segments_are_removed() {
    let cases = [
        ("https://a/b/c/./../../g", "https://a/g"),
        ("https://a/b/./c", "https://a/b/c"),
        ("https://a/b/../c", "https://a/c"),
        ("https://a/..", "https://a/"),
        ("https://a/../../x", "https://a/x"),
        ("https://a/b/..", "https://a/"),
        ("https://a/b/.", "https://a/b/"),
        ("https://a/b/%2E%2e/c", "https://a/c"),
        ("https://a/b/%2e/c", "https://a/b/c"),
        ("https://a/b//../c", "https://a/b/c"),
        ("https://a//b", "https://a//b"),
        ("https://a/.b/..c/...", "https://a/.b/..c/..."),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input).as_deref(), Some(expected), "{input}");
    }
}

#[test]
fn percent_encoding_is_normalised() {
    assert_eq!(norm("https://a/%7e%7E~").as_deref(), Some("https://a/~~~"));
    assert_eq!(norm("https://a/%41%2d%5F%30").as_deref(), Some("https://a/A-_0"));
    assert_eq!(norm("https://a/x%2fy").as_deref(), Some("https://a/x%2Fy"));
    assert_eq!(norm("https://a/x%2Fy").as_deref(), Some("https://a/x%2Fy"));
    assert_ne!(norm("https://a/x%2Fy"), norm("https://a/x/y"));
    assert_eq!(norm("https://a/%c3%a9").as_deref(), Some("https://a/%C3%A9"));
    assert_eq!(norm("https://a/é").as_deref(), Some("https://a/%C3%A9"));
    assert_eq!(norm("https://a/{x}|").as_deref(), Some("https://a/%7Bx%7D%7C"));
    assert_eq!(norm("https://a/%25").as_deref(), Some("https://a/%25"));
    assert_eq!(norm("https://a/%"), None);
    assert_eq!(norm("https://a/%4"), None);
    assert_eq!(norm("https://a/%zz"), None);
}

#[test]
fn query_and_fragment_are_dropped() {
    assert_eq!(norm("https://a/p?x=1&y=2").as_deref(), Some("https://a/p"));
    assert_eq!(norm("https://a/p#frag").as_deref(), Some("https://a/p"));
    assert_eq!(norm("https://a/p?x#y").as_deref(), Some("https://a/p"));
    assert_eq!(norm("https://a?x").as_deref(), Some("https://a/"));
    assert_eq!(norm("https://a#x").as_deref(), Some("https://a/"));
    assert_eq!(norm("https://a/p?%zz").as_deref(), Some("https://a/p"));
}

#[test]
fn an_empty_path_is_a_slash() {
    assert_eq!(norm("https://a.example").as_deref(), Some("https://a.example/"));
    assert_eq!(
        norm("https://a.example:8080").as_deref(),
        Some("https://a.example:8080/")
    );
}

#[test]
fn ipv6_hosts_are_accepted() {
    assert_eq!(norm("https://[::1]/x").as_deref(), Some("https://[::1]/x"));
    assert_eq!(
        norm("http://[2001:DB8::A]:80/").as_deref(),
        Some("http://[2001:db8::a]/")
    );
    assert_eq!(
        norm("http://[2001:db8::a]:8080").as_deref(),
        Some("http://[2001:db8::a]:8080/")
    );
    assert_eq!(
        norm("http://[::ffff:1.2.3.4]/").as_deref(),
        Some("http://[::ffff:1.2.3.4]/")
    );
    assert_eq!(norm("http://[::1/"), None);
    assert_eq!(norm("http://[]/"), None);
    assert_eq!(norm("http://[fe80::1%25eth0]/"), None);
    assert_eq!(norm("http://[v1.x]/"), None);
    assert_eq!(norm("http://[::1]x/"), None);
    assert_eq!(norm("http://::1/"), None);
}

#[test]
fn other_urls_are_refused() {
    for bad in [
        "",
        "/relative/path",
        "example.com/x",
        "ftp://a/x",
        "https:/a/x",
        "https:a/x",
        "https:///x",
        "https://",
        "https://user@a/x",
        "https://user:pw@a/x",
        "https://@a/x",
        "https://a b/x",
        "https://a/x y",
        "https://a/x\ty",
        "https://a/x\0",
        "https://a/\u{85}",
        " https://a/x",
        "https://a/x\n",
        "https://a%2eb/x",
        "https://exämple.com/x",
        "https://a\\b/x",
        "https://a<b/x",
    ] {
        assert_eq!(norm(bad), None, "{bad:?}");
    }
}

#[test]
fn request_urls_come_from_the_connection_by_default() {
    let parts = UrlParts {
        scheme: "http",
        host: "internal:8080",
        path: "/api/x?y=1",
        forwarded_proto: Some("https"),
        forwarded_host: Some("api.example.com"),
        forwarded_prefix: Some("/v1"),
    };
    assert_eq!(request_url(&parts, false), "http://internal:8080/api/x?y=1");
    assert_eq!(request_url(&parts, true), "https://api.example.com/v1/api/x?y=1");
}

#[test]
fn forwarded_headers_are_read_carefully() {
    let base = UrlParts {
        scheme: "http",
        host: "internal",
        path: "/x",
        ..UrlParts::default()
    };
    let with = |proto, host, prefix| {
        request_url(
            &UrlParts {
                forwarded_proto: proto,
                forwarded_host: host,
                forwarded_prefix: prefix,
                ..base
            },
            true,
        )
    };
    assert_eq!(with(None, None, None), "http://internal/x");
    assert_eq!(with(Some("HTTPS"), None, None), "https://internal/x");
    assert_eq!(with(Some(" https , http"), None, None), "https://internal/x");
    assert_eq!(with(Some("ftp"), None, None), "http://internal/x");
    assert_eq!(with(Some("https:"), None, None), "http://internal/x");
    assert_eq!(with(Some("javascript"), None, None), "http://internal/x");
    assert_eq!(
        with(None, Some("a.example, b.example"), None),
        "http://a.example/x"
    );
    assert_eq!(
        with(None, Some("  a.example:8443 "), None),
        "http://a.example:8443/x"
    );
    assert_eq!(with(None, Some("[::1]:8443"), None), "http://[::1]:8443/x");
    assert_eq!(with(None, Some(""), None), "http://internal/x");
    assert_eq!(with(None, Some(", a.example"), None), "http://internal/x");
    assert_eq!(with(None, Some("evil.example/path"), None), "http://internal/x");
    assert_eq!(with(None, Some("user@evil.example"), None), "http://internal/x");
    assert_eq!(with(None, Some("a b"), None), "http://internal/x");
    assert_eq!(with(None, None, Some("/api/")), "http://internal/api/x");
    assert_eq!(with(None, None, Some("/")), "http://internal/x");
    let url = request_url(
        &UrlParts {
            path: "",
            forwarded_prefix: Some("/api"),
            ..base
        },
        true,
    );
    assert_eq!(url, "http://internal/api");
}

#[test]
fn hostile_prefixes_are_ignored() {
    let base = UrlParts {
        scheme: "https",
        host: "api.example.com",
        path: "/x",
        ..UrlParts::default()
    };
    let bare = UrlParts {
        forwarded_prefix: Some("api"),
        ..base
    };
    assert_eq!(
        request_url(&bare, true),
        "https://api.example.com/api/x",
        "a missing `/` is added"
    );
    for hostile in [
        "//evil.example",
        "/a/../b",
        "/..",
        "/a/%2e%2e/b",
        "/a/%2E%2E/b",
        "/a/%2e./b",
        "/a/.%2E/b",
        "/a:b",
        "/http://evil.example",
        "/a\0b",
        "/a\r\nX-Injected: 1",
        "/a b",
        "/a?b",
        "/a#b",
        "/a\\..\\b",
        "",
    ] {
        let parts = UrlParts {
            forwarded_prefix: Some(hostile),
            ..base
        };
        assert_eq!(
            request_url(&parts, true),
            "https://api.example.com/x",
            "{hostile:?}"
        );
    }
}

/// A little deterministic bit source, so that one generated number decides every spelling
/// choice of a variant.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> bool {
        // xorshift64; a zero state would stay zero.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 & 1 == 1
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        let i = (usize::from(self.next()) << 1 | usize::from(self.next())) % options.len();
        options[i]
    }

    fn case(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.next() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
}

/// One character of a path in normal form, and how an equivalent URL may spell it.
#[derive(Debug, Clone)]
enum Atom {
    /// An unreserved character: as is, or percent-encoded (hex digits in either case).
    Unreserved(u8),
    /// A sub-delimiter, `:` or `@`: only as is (`%2C` is not `,`, RFC 3986 §2.2).
    Delimiter(u8),
    /// A percent-encoded byte that is not unreserved (`%2F` is not `/`): hex in either case.
    Encoded(u8),
    /// A character a path cannot hold as is: raw (it gets encoded), or encoded UTF-8.
    Raw(char),
}

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        4 => prop::sample::select(b"abcxyzABCXYZ019-._~".to_vec()).prop_map(Atom::Unreserved),
        2 => prop::sample::select(b"!$&'()*+,;=:@".to_vec()).prop_map(Atom::Delimiter),
        1 => prop_oneof![
            // Reserved characters first: decoding them would change the path.
            prop::sample::select(b"/?#%:@,;=+ ".to_vec()),
            any::<u8>().prop_filter("not unreserved", |&b| !is_unreserved(b)),
        ]
        .prop_map(Atom::Encoded),
        1 => prop::sample::select(vec!['{', '}', '|', '"', '<', '>', '^', '`', '\\', '[', ']', 'é', '€', '😀'])
            .prop_map(Atom::Raw),
    ]
}

fn encoded(bytes: &[u8], bits: &mut Bits) -> String {
    let mut out = String::new();
    for &b in bytes {
        let mut one = String::new();
        push_encoded(&mut one, b);
        out.push_str(&bits.case(&one));
    }
    out
}

impl Atom {
    fn canonical(&self) -> String {
        let mut out = String::new();
        match *self {
            Self::Unreserved(b) | Self::Delimiter(b) => out.push(char::from(b)),
            Self::Encoded(b) => push_encoded(&mut out, b),
            Self::Raw(c) => c
                .encode_utf8(&mut [0; 4])
                .bytes()
                .for_each(|b| push_encoded(&mut out, b)),
        }
        out
    }

    fn variant(&self, bits: &mut Bits) -> String {
        match *self {
            Self::Unreserved(b) if bits.next() => encoded(&[b], bits),
            Self::Unreserved(b) | Self::Delimiter(b) => char::from(b).to_string(),
            Self::Encoded(b) => encoded(&[b], bits),
            Self::Raw(c) if bits.next() => c.to_string(),
            Self::Raw(c) => encoded(c.encode_utf8(&mut [0; 4]).as_bytes(), bits),
        }
    }
}

/// A path segment in normal form: never `.` or `..`.
fn segment() -> impl Strategy<Value = Vec<Atom>> {
    prop::collection::vec(atom(), 0..5).prop_map(|mut atoms| {
        let text: String = atoms.iter().map(Atom::canonical).collect();
        if text == "." || text == ".." {
            atoms.push(Atom::Unreserved(b'x'));
        }
        atoms
    })
}

/// The parts of an `http`/`https` URL in normal form.
#[derive(Debug, Clone)]
struct Parts {
    https: bool,
    host: String,
    port: Option<u16>,
    segments: Vec<Vec<Atom>>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        any::<bool>(),
        "[a-z0-9][a-z0-9_~-]{0,5}(\\.[a-z0-9_~-]{1,6}){0,2}|\\[[0-9a-f]{1,4}(:[0-9a-f]{0,4}){1,4}\\]",
        proptest::option::of(any::<u16>()),
        prop::collection::vec(segment(), 0..4),
    )
        .prop_map(|(https, host, port, segments)| {
            let default = if https { 443 } else { 80 };
            Parts {
                https,
                host,
                port: port.filter(|&p| p != default),
                segments,
            }
        })
}

impl Parts {
    fn default_port(&self) -> u16 {
        if self.https { 443 } else { 80 }
    }

    /// The URL in normal form: what every spelling of it normalises to.
    fn canonical(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path: Vec<String> = self
            .segments
            .iter()
            .map(|s| s.iter().map(Atom::canonical).collect())
            .collect();
        format!("{scheme}://{}{port}/{}", self.host, path.join("/"))
    }

    /// The same URL spelled another way (RFC 3986 §6.2.2 and §6.2.3): scheme and host in any
    /// case, the default port written out (or an empty port, or leading zeros), unreserved
    /// characters percent-encoded, percent-encoding hex in any case, dot segments, and any
    /// query and fragment.
    fn variant(&self, bits: &mut Bits, tail: &str) -> String {
        let scheme = bits.case(if self.https { "https" } else { "http" });
        let host = bits.case(&self.host);
        let port = match self.port {
            Some(p) => format!("{}{p}", bits.pick(&[":", ":0", ":00"])),
            None => {
                let default = self.default_port();
                bits.pick(&["", ":", ":{}", ":0{}"])
                    .replace("{}", &default.to_string())
            }
        };
        let mut path = String::new();
        if self.segments.is_empty() {
            path.push_str(bits.pick(&["", "/", "/.", "/j/%2e%2E"]));
        }
        for segment in &self.segments {
            path.push('/');
            // A dot segment, or a segment undone by `..`, before this one.
            match bits.pick(&["", "", "dot", "up"]) {
                "dot" => {
                    path.push_str(bits.pick(&[".", "%2E", "%2e"]));
                    path.push('/');
                }
                "up" => {
                    path.push_str(bits.pick(&["j", "%7E", "..."]));
                    path.push('/');
                    path.push_str(bits.pick(&["..", ".%2E", "%2e.", "%2E%2e"]));
                    path.push('/');
                }
                _ => {}
            }
            for atom in segment {
                path.push_str(&atom.variant(bits));
            }
        }
        format!("{scheme}://{host}{port}{path}{tail}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: `normalize_htu` never panics; it is idempotent (a normalised URL normalises to
    // itself); and two URLs normalise equal exactly when they are equivalent per RFC 3986 §6:
    // every spelling of a URL (scheme and host case, default port, percent-encoding of
    // unreserved characters and hex case, dot segments, query and fragment) gives its normal
    // form, and URLs whose normal forms differ (another path, host, port or scheme) do not
    // normalise equal.

    #[test]
    fn normalize_never_panics(s in ".{0,200}") {
        let _ = normalize_htu(&s);
    }

    #[test]
    fn normalize_is_idempotent(
        scheme in "(?i)https?",
        host in "[a-zA-Z0-9.\\-_~]{1,12}|\\[[0-9a-fA-F:]{2,12}\\]",
        port in proptest::option::of("[0-9]{0,6}"),
        path in "(/|\\.|%[0-9a-fA-F]{2}|%|[a-zA-Z0-9~!$&'()*+,;=:@\\-_{}|é ]){0,30}",
        tail in "([?#].{0,10})?",
    ) {
        let url = match port {
            Some(p) => format!("{scheme}://{host}:{p}{path}{tail}"),
            None => format!("{scheme}://{host}{path}{tail}"),
        };
        if let Some(once) = normalize_htu(&url) {
            prop_assert_eq!(normalize_htu(&once), Some(once.clone()));
        }
    }

    #[test]
    fn normalize_is_idempotent_on_anything(s in "(?i)https?://.{0,60}") {
        if let Some(once) = normalize_htu(&s) {
            prop_assert_eq!(normalize_htu(&once), Some(once.clone()));
        }
    }

    #[test]
    fn a_normal_form_normalises_to_itself(url in parts()) {
        let canonical = url.canonical();
        prop_assert_eq!(normalize_htu(&canonical), Some(canonical));
    }

    #[test]
    fn every_spelling_of_a_url_normalises_to_its_normal_form(
        url in parts(),
        seed in 1..u64::MAX,
        tail in "(\\?[!-~]{0,10})?(#[!-~]{0,10})?",
    ) {
        let variant = url.variant(&mut Bits(seed), &tail);
        prop_assert_eq!(normalize_htu(&variant), Some(url.canonical()), "{}", variant);
    }

    #[test]
    fn urls_normalise_equal_only_when_equivalent(
        a in parts(),
        b in parts(),
        other_path in prop::collection::vec(segment(), 0..4),
        how in 0..4u8,
        seeds in (1..u64::MAX, 1..u64::MAX),
    ) {
        // Often the same origin, so that paths are compared.
        let b = match how {
            0 => b,
            1 => Parts { segments: other_path, ..a.clone() },
            2 => Parts { port: b.port.filter(|_| a.port.is_none()), ..a.clone() },
            _ => a.clone(),
        };
        let one = normalize_htu(&a.variant(&mut Bits(seeds.0), "")).unwrap();
        let two = normalize_htu(&b.variant(&mut Bits(seeds.1), "?q")).unwrap();
        prop_assert_eq!(one == two, a.canonical() == b.canonical(), "{} {}", one, two);
    }

    #[test]
    fn path_case_and_encoded_delimiters_are_significant(url in parts(), at in any::<prop::sample::Index>()) {
        let canonical = url.canonical();
        let path_start = canonical.find("://").unwrap() + 3;
        let path_start = path_start + canonical[path_start..].find('/').unwrap();
        // Flip the case of one letter of the path (not of a percent-encoding), or, if there is
        // none, encode the path's first `/`.
        let path = &canonical[path_start..];
        let letters: Vec<usize> = path
            .char_indices()
            .filter(|&(i, c)| {
                c.is_ascii_alphabetic()
                    && !path[..i].ends_with('%')
                    && !(i >= 2 && path.as_bytes()[i - 2] == b'%')
            })
            .map(|(i, _)| path_start + i)
            .collect();
        let changed = if letters.is_empty() {
            format!("{}%2F{}", &canonical[..path_start], &canonical[path_start + 1..])
        } else {
            let i = letters[at.index(letters.len())];
            let c = char::from(canonical.as_bytes()[i]);
            let flipped = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
            format!("{}{flipped}{}", &canonical[..i], &canonical[i + 1..])
        };
        prop_assert_ne!(normalize_htu(&changed), Some(canonical));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Property: building the request URL from the connection and the `X-Forwarded-*` headers
    // never panics, whatever those headers hold, and neither does normalising the result.

    #[test]
    fn request_url_never_panics(
        scheme in ".{0,6}", host in ".{0,20}", path in ".{0,20}",
        proto in proptest::option::of(".{0,10}"),
        fhost in proptest::option::of(".{0,20}"),
        prefix in proptest::option::of(".{0,20}"),
        trust in any::<bool>(),
    ) {
        let parts = UrlParts {
            scheme: &scheme, host: &host, path: &path,
            forwarded_proto: proto.as_deref(),
            forwarded_host: fhost.as_deref(),
            forwarded_prefix: prefix.as_deref(),
        };
        let _ = normalize_htu(&request_url(&parts, trust));
    }
}
