//! The request URL a proof's `htu` is compared with, and the normalisation both sides go through.

use std::fmt::Write as _;

/// Normalise an `htu` (or a request URL) for comparison, as RFC 9449 §4.3 check 9 asks.
///
/// Syntax-based normalisation (RFC 3986 §6.2.2) plus the scheme-based default port (§6.2.3):
///
/// - the scheme (`http` or `https` only) and the host are lower-cased;
/// - the default port (80 for `http`, 443 for `https`) and an empty port are dropped; other ports
///   lose leading zeros;
/// - the query and the fragment are dropped;
/// - percent-encoding hex digits are upper-cased, and percent-encoded unreserved characters
///   (`A–Z a–z 0–9 - . _ ~`) are decoded, so `%7e` and `~` are the same, but `%2F` stays encoded
///   (it is not the same as `/`);
/// - dot segments (`.`, `..`, also written `%2E`) are removed;
/// - an empty path becomes `/`;
/// - characters not allowed in a URI path (such as `{`, `|` or non-ASCII) are percent-encoded
///   (as UTF-8), the way browsers send them.
///
/// `None` when the input is not an absolute `http`/`https` URL with a host, or holds a space, a
/// control character, user information (`user@`), a malformed percent-encoding, a bad port, or a
/// host with characters a host cannot have (percent-encoded and non-ASCII hosts are refused: send
/// the punycode form).
///
/// The output is its own normal form: `normalize_htu(&normalize_htu(x)?) == normalize_htu(x)`.
///
/// # Examples
///
/// ```
/// use auth0_runtime::normalize_htu;
///
/// assert_eq!(
///     normalize_htu("HTTPS://API.Example.COM:443/a/./b/../c%7e?x=1#top").as_deref(),
///     Some("https://api.example.com/a/c~"),
/// );
/// assert_eq!(normalize_htu("http://example.com").as_deref(), Some("http://example.com/"));
/// assert_eq!(normalize_htu("ftp://example.com/"), None);
/// ```
pub fn normalize_htu(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let (scheme, rest) = url.split_once(':')?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else {
        return None;
    };
    let rest = rest.strip_prefix("//")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..path_end];

    let (host, port) = split_authority(authority)?;
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(scheme);
    out.push_str("://");
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(port) = port.filter(|&p| p != default_port) {
        let _ = write!(out, ":{port}");
    }
    let path = normalize_percent_encoding(path)?;
    let path = remove_dot_segments(&path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Some(out)
}

/// Split `host[:port]`, checking both; the port is `None` when absent or empty.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        // IP-literal: an IPv6 address (IPvFuture and zone identifiers are not accepted).
        let end = literal.find(']')?;
        let inner = &literal[..end];
        if !inner.contains(':')
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let after = &literal[end + 1..];
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (&authority[..end + 2], port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || !host.bytes().all(is_reg_name_byte) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// RFC 3986 `reg-name` without percent-encoding: unreserved and sub-delims.
fn is_reg_name_byte(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// A character a URI path may hold as it is: `pchar` minus `%`, plus `/`.
fn is_path_byte(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || matches!(b, b':' | b'@' | b'/')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_encoded(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Upper-case percent-encoding hex, decode unreserved characters, encode what a path cannot hold.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            let decoded = (hi << 4) | lo;
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                push_encoded(&mut out, decoded);
            }
        } else if is_path_byte(b) {
            out.push(char::from(b));
        } else {
            push_encoded(&mut out, b);
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4 for an absolute (or empty) path, segment by segment.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            s => {
                kept.push(s);
                continue;
            }
        }
        // A dot segment at the end leaves the path ending in "/".
        if last {
            kept.push("");
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in kept {
        out.push('/');
        out.push_str(segment);
    }
    out
}

/// The parts of a request [`request_url`] builds the URL from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UrlParts<'a> {
    /// The connection's scheme (`http` or `https`).
    pub(crate) scheme: &'a str,
    /// The `Host` (with port, if any) as the server saw it.
    pub(crate) host: &'a str,
    /// The request path (a query is harmless: it is dropped by the normalisation).
    pub(crate) path: &'a str,
    /// `X-Forwarded-Proto`, if the request has one.
    pub(crate) forwarded_proto: Option<&'a str>,
    /// `X-Forwarded-Host`, if the request has one.
    pub(crate) forwarded_host: Option<&'a str>,
    /// `X-Forwarded-Prefix`, if the request has one.
    pub(crate) forwarded_prefix: Option<&'a str>,
}

/// The URL of a request as its client addressed it, for the `htu` comparison.
///
/// Without `trust_proxy` the connection's scheme, host and path. With it, each `X-Forwarded-*`
/// header that is acceptable replaces its part, and an unacceptable one is ignored:
/// - `X-Forwarded-Proto`: the first of a comma-separated list, `http` or `https` in any case;
/// - `X-Forwarded-Host`: the first of a comma-separated list, trimmed, made of host characters
///   (with an optional port) only;
/// - `X-Forwarded-Prefix`: put before the path (with a leading `/` added if missing); ignored if
///   it starts with `//` or holds `..`, `:`, `%2e` (any case, so also `%2e%2e`), `?`, `#`, `\`,
///   whitespace, NUL or another control character.
///
/// The result is not normalised: [`check_htu`](super::check_htu) does that.
pub(crate) fn request_url(parts: &UrlParts<'_>, trust_proxy: bool) -> String {
    let mut scheme = parts.scheme;
    let mut host = parts.host;
    let mut prefix = "";
    if trust_proxy {
        if let Some(p) = parts.forwarded_proto.and_then(forwarded_proto) {
            scheme = p;
        }
        if let Some(h) = parts.forwarded_host.and_then(forwarded_host) {
            host = h;
        }
        if let Some(p) = parts.forwarded_prefix.and_then(forwarded_prefix) {
            prefix = p.strip_suffix('/').unwrap_or(p);
        }
    }
    let mut url = String::with_capacity(scheme.len() + host.len() + prefix.len() + parts.path.len() + 4);
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(host);
    // A prefix without its leading `/` gets one, as the reference SDK does.
    if !prefix.is_empty() && !prefix.starts_with('/') {
        url.push('/');
    }
    url.push_str(prefix);
    if !parts.path.is_empty() && !parts.path.starts_with('/') {
        url.push('/');
    }
    url.push_str(parts.path);
    url
}

fn first_item(value: &str) -> &str {
    value.split_once(',').map_or(value, |(first, _)| first).trim()
}

fn forwarded_proto(value: &str) -> Option<&'static str> {
    let proto = first_item(value);
    if proto.eq_ignore_ascii_case("https") {
        Some("https")
    } else if proto.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

fn forwarded_host(value: &str) -> Option<&str> {
    let host = first_item(value);
    let acceptable = !host.is_empty()
        && host
            .bytes()
            .all(|b| is_reg_name_byte(b) || matches!(b, b':' | b'[' | b']'));
    acceptable.then_some(host)
}

fn forwarded_prefix(value: &str) -> Option<&str> {
    let prefix = value.trim();
    let hostile = prefix.is_empty()
        || prefix.starts_with("//")
        || prefix.contains("..")
        || prefix.bytes().any(|b| {
            matches!(b, b':' | b'?' | b'#' | b'\\') || b.is_ascii_whitespace() || b.is_ascii_control()
        })
        || prefix
            .as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%2e"));
    (!hostile).then_some(prefix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
