use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

fn decode(token: &str) -> (Value, Value, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    (
        json(parts[0]),
        json(parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
    )
}

#[test]
fn token_defaults() {
    let issuer = TestIssuer::start();
    let (header, claims, signature) = decode(&issuer.token().sign());
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"}));
    assert_eq!(claims["iss"], json!(issuer.issuer()));
    assert_eq!(claims["sub"], "user|123");
    assert_eq!(claims["aud"], "https://api.example.com");
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600);
    assert_eq!(signature.len(), 256);
    assert_eq!(issuer.current_kid(), "key-1");
    assert_eq!(issuer.issuer(), format!("https://localhost:{}/", issuer.port()));
}

#[test]
fn every_member_can_be_changed() {
    let issuer = TestIssuer::start();
    let token = issuer
        .token()
        .subject("auth0|alice")
        .audiences(["a", "b"])
        .scope("read:messages write:messages")
        .permissions(["read:admin"])
        .claim("org_id", "org_123")
        .claim("cnf", json!({"x5t#S256": "abc"}))
        .bind_to_jkt("thumb")
        .remove("iat")
        .expires_at(10)
        .not_before(5)
        .issuer("https://elsewhere.example.com/")
        .kid("other")
        .header("typ", "at+jwt")
        .header("crit", json!(["exp"]))
        .sign();
    let (header, claims, _) = decode(&token);
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "other", "crit": ["exp"]})
    );
    assert_eq!(
        claims,
        json!({
            "iss": "https://elsewhere.example.com/",
            "sub": "auth0|alice",
            "aud": ["a", "b"],
            "scope": "read:messages write:messages",
            "permissions": ["read:admin"],
            "org_id": "org_123",
            "cnf": {"x5t#S256": "abc", "jkt": "thumb"},
            "exp": 10,
            "nbf": 5,
        })
    );
    let (header, _, _) = decode(&issuer.token().remove_header("kid").remove_header("typ").sign());
    assert_eq!(header, json!({"alg": "RS256"}));
}

#[test]
fn algorithms_pick_their_keys() {
    let issuer = TestIssuer::start();
    // No EC key published: a key nobody knows signs.
    let (header, _, _) = decode(&issuer.token().alg(Algorithm::ES256).sign());
    assert_eq!(header["kid"], UNPUBLISHED);
    let es = issuer.add_key(Algorithm::ES256);
    let (header, _, signature) = decode(&issuer.token().alg(Algorithm::ES256).sign());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some(es.as_str()))
    );
    assert_eq!(signature.len(), 64);
    let ed = issuer.add_key(Algorithm::EdDSA);
    let (header, _, signature) = decode(&issuer.token().alg(Algorithm::EdDSA).sign());
    assert_eq!(header["kid"], json!(ed));
    assert_eq!(signature.len(), 64);
    // PS256 without a PS256 key: the current RSA key signs.
    let (header, _, _) = decode(&issuer.token().alg(Algorithm::PS256).sign());
    assert_eq!(header["kid"], "key-1");
    // HMAC: the algorithm-confusion token.
    let (header, _, signature) = decode(&issuer.token().alg_confusion().sign());
    assert_eq!((header["alg"].as_str(), signature.len()), (Some("HS256"), 32));
    // Unsecured.
    let token = issuer.token().unsecured();
    assert!(token.ends_with('.'));
    let (header, _) = token.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "none");
    // A forged token keeps the kid.
    let forged = issuer.token().sign_with_unknown_key();
    let genuine = issuer.token().sign();
    assert_eq!(decode(&forged).0["kid"], "key-1");
    assert_ne!(decode(&forged).2, decode(&genuine).2);
}

const UNPUBLISHED: &str = "unpublished-key";

#[test]
fn rotation_publishes_the_new_and_the_previous_key() {
    let issuer = TestIssuer::start();
    let ec = issuer.add_key(Algorithm::ES256);
    let second = issuer.rotate_key();
    let third = issuer.rotate_key();
    let kids: Vec<String> = issuer.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, [ec.clone(), second.clone(), third.clone()]);
    assert_eq!(issuer.current_kid(), third);
    // An unpublished key still signs when named.
    let (header, _, _) = decode(&issuer.token().kid("key-1").sign());
    assert_eq!(header["kid"], "key-1");
    assert!(issuer.remove_key(&ec));
    assert!(!issuer.remove_key(&ec));
    issuer.publish_jwk(json!({"kid": "raw"}));
    assert!(issuer.remove_key("raw"));
    assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn serves_discovery_and_keys_over_https() {
    let issuer = TestIssuer::start();
    let client = issuer.http_client();
    let get = |path: &str| client.get(format!("{}{path}", issuer.issuer())).send();
    let response = get(".well-known/openid-configuration").await.unwrap();
    assert_eq!(response.status(), 200);
    let discovery: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(discovery["issuer"], json!(issuer.issuer()));
    assert_eq!(
        discovery["jwks_uri"],
        json!(format!("{}.well-known/jwks.json", issuer.issuer()))
    );
    assert_eq!(
        discovery["token_endpoint"],
        json!(format!("{}oauth/token", issuer.issuer()))
    );
    let response = get(".well-known/jwks.json?x=1").await.unwrap();
    assert_eq!(response.headers().get("cache-control"), None);
    let jwks: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(jwks, issuer.jwks());
    assert_eq!(get("nothing").await.unwrap().status(), 404);
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));

    issuer.set_max_age(Some(15));
    let response = get(".well-known/jwks.json").await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=15");
    issuer.reset_counters();
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (0, 0));

    issuer.set_fault(Fault::ServerError);
    assert_eq!(get(".well-known/jwks.json").await.unwrap().status(), 500);
    issuer.set_fault(Fault::Garbage);
    let body = get(".well-known/jwks.json").await.unwrap().bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    issuer.set_fault(Fault::Down);
    assert!(get(".well-known/jwks.json").await.is_err());
    issuer.set_fault(Fault::None);
    issuer.set_fault_on(Endpoint::Discovery, Fault::Down);
    assert!(get(".well-known/openid-configuration").await.is_err());
    assert_eq!(get(".well-known/jwks.json").await.unwrap().status(), 200);
    issuer.set_fault_on(Endpoint::Discovery, Fault::None);
    issuer.set_discovery_issuer(Some("https://evil.example.com/".to_owned()));
    let response = get(".well-known/openid-configuration").await.unwrap();
    let discovery: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(discovery["issuer"], "https://evil.example.com/");
}

#[test]
fn the_ca_file_and_shutdown() {
    let issuer = TestIssuer::start();
    let dir = std::env::temp_dir();
    let path = issuer.write_ca_file(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), issuer.ca_pem());
    std::fs::remove_file(path).unwrap();
    let port = issuer.port();
    assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
    drop(issuer);
    assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
}
