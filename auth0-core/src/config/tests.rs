use super::env::names_redis;
use super::*;
use crate::answer::{ConfigError, shown};

fn issuers(domain: &str) -> Result<Vec<String>, ConfigError> {
    Auth0Config::new(domain, "https://api").validate()
}

#[test]
fn proxy_blocks() {
    let v4 = Cidr::parse("10.1.0.0/16").expect("cidr");
    assert!(v4.contains("10.1.200.3".parse().expect("ip")) && !v4.contains("10.2.0.1".parse().expect("ip")));
    assert!(
        v4.contains("::ffff:10.1.0.9".parse().expect("ip")),
        "IPv4-mapped peers match IPv4 blocks"
    );
    let one = Cidr::parse("::1").expect("cidr");
    assert!(one.contains("::1".parse().expect("ip")) && !one.contains("::2".parse().expect("ip")));
    assert!(Cidr::parse("0.0.0.0/0").is_some_and(|c| c.contains("8.8.8.8".parse().expect("ip"))));
    for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", ""] {
        assert_eq!(Cidr::parse(bad), None, "{bad}");
    }
}

#[test]
fn values_are_shown_quoted_escaped_and_cut() {
    assert_eq!(shown("maybe"), "\"maybe\"");
    assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
    let long = "é".repeat(100);
    assert_eq!(shown(&long), format!("{:?}…", "é".repeat(64)));
}

#[test]
fn domains_are_normalised() {
    for d in [
        "tenant.auth0.com",
        "https://tenant.auth0.com/",
        " HTTPS://Tenant.Auth0.com ",
        "tenant.auth0.com/",
    ] {
        assert_eq!(
            issuers(d),
            Ok(vec!["https://tenant.auth0.com/".to_owned()]),
            "{d}"
        );
    }
    assert_eq!(
        issuers("localhost:8443"),
        Ok(vec!["https://localhost:8443/".to_owned()])
    );
}

/// `AUTH0_REPLAY_STORE`: `memory`, or a Redis URL only in a build with the `redis` feature;
/// a refusal never repeats the value (a Redis URL may hold a password).
#[test]
fn the_replay_store_setting() {
    for memory in ["memory", "Memory"] {
        assert_eq!(names_redis(memory, false), Ok(false));
        assert_eq!(names_redis(memory, true), Ok(false));
    }
    let url = "redis://:hunter2@127.0.0.1:6379/2";
    assert_eq!(names_redis(url, true), Ok(true));
    assert_eq!(names_redis("REDISS://h:6380", true), Ok(true));
    let missing = names_redis(url, false).expect_err("no redis feature").to_string();
    assert_eq!(
        missing,
        "AUTH0_REPLAY_STORE is a Redis URL, but this build has no Redis support: enable the \
         `redis` feature of auth0-runtime or auth0-axum (or set it to memory)"
    );
    for other in ["memcached://h", "redis:/h", "http://:hunter2@h", "mem"] {
        let refused = names_redis(other, true).expect_err(other).to_string();
        assert!(
            refused.starts_with("AUTH0_REPLAY_STORE must be memory"),
            "{refused}"
        );
        assert!(!refused.contains("hunter2"), "{refused}");
    }
}

/// Without the `redis` feature, a Redis URL in the environment stops the app at startup and
/// names the feature to enable.
#[cfg(not(feature = "redis"))]
#[test]
fn a_redis_url_needs_the_redis_feature() {
    let env = |name: &str| match name {
        "AUTH0_DOMAIN" => Some("tenant.us.auth0.com".to_owned()),
        "AUTH0_AUDIENCE" => Some("https://api.example.com".to_owned()),
        "AUTH0_REPLAY_STORE" => Some("redis://:hunter2@127.0.0.1:6379/2".to_owned()),
        _ => None,
    };
    let message = Auth0Config::from_lookup(env)
        .expect_err("no redis feature")
        .to_string();
    assert!(
        message.starts_with("AUTH0_REPLAY_STORE is a Redis URL"),
        "{message}"
    );
    assert!(
        message.contains("enable the `redis` feature of auth0-runtime"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn bad_domains_are_refused_with_a_fix() {
    for d in [
        "http://tenant.auth0.com",
        "tenant.auth0.com/path",
        "tenant.auth0.com?x=1",
        "user:pw@tenant.auth0.com",
        "",
        "ftp://x",
        "tenant..com",
        "host:0",
        "host:99999",
        "ten ant.com",
    ] {
        let err = issuers(d).expect_err(d).to_string();
        assert!(err.starts_with("AUTH0_DOMAIN "), "{err}");
    }
    assert!(
        issuers("http://t.auth0.com")
            .expect_err("http")
            .to_string()
            .contains("not a URL with http://")
    );
}
