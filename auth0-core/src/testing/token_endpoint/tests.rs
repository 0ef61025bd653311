use super::*;

#[test]
fn forms_and_basic_credentials_decode() {
    assert_eq!(
        parse_form("a=1&b=x+y%2Fz&&c&d=%C3%A9").unwrap(),
        [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x y/z".to_owned()),
            ("c".to_owned(), String::new()),
            ("d".to_owned(), "é".to_owned()),
        ]
    );
    assert_eq!(parse_form("a=%zz"), None);
    assert_eq!(parse_form("a=%4"), None);
    let request = TokenRequest {
        authorization: Some(format!("Basic {}", STANDARD.encode("a%3Ab:p+w"))),
        content_type: None,
        body: String::new(),
        form: Vec::new(),
    };
    assert_eq!(
        request.basic_credentials(),
        Some(("a:b".to_owned(), "p w".to_owned()))
    );
    assert_eq!(request.client_assertion(), None);
}
