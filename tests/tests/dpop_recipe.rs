//! The DPoP recipe `test_issuer --dpop` prints (`examples::dpop_recipe`): its `curl` commands,
//! sent as written to a real server that trusts the issuer, are accepted once per proof, and a
//! pasted `DPoP-Nonce` gives a proof the server accepts.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers fail loudly")]

mod common;

use common::{AUDIENCE, Answer, Api};
use examples::dpop_recipe::{DEFAULT_URL, DpopRecipe, Target};

/// Sends a printed `curl -i [-X METHOD] 'URL' -H 'Name: value'…` command as curl would.
async fn send(api: &Api, command: &str) -> (Answer, Option<String>) {
    let words = shell_words(command);
    assert_eq!(words.first().map(String::as_str), Some("curl"), "{command}");
    let mut method = "GET".to_owned();
    let mut url = None;
    let mut headers = Vec::new();
    let mut words = words.into_iter().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "-i" => {}
            "-X" => method = words.next().expect("a method after -X"),
            "-H" => {
                let header = words.next().expect("a header after -H");
                let (name, value) = header.split_once(": ").expect("Name: value");
                headers.push((name.to_owned(), value.to_owned()));
            }
            other if other.starts_with("http") => url = Some(other.to_owned()),
            other => panic!("unexpected word {other:?} in {command}"),
        }
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = api.http.request(method, url.expect("a URL"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request");
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    (Answer::read(response).await, nonce)
}

/// The words of a command line of plain words and single-quoted ones (`'\''` for a quote).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => (quoted, started) = (!quoted, true),
            '\\' if !quoted => word.extend(chars.next()),
            ' ' if !quoted => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            '#' if !quoted && word.is_empty() && !started => break,
            c => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// The `curl` lines of the printed recipe.
fn commands(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("curl "))
        .collect()
}

fn target(method: &str, url: String) -> Target {
    let args = ["--method", method, "--url", &url].map(str::to_owned);
    Target::from_args(args)
        .expect("valid")
        .expect("--url implies --dpop")
}

#[actix_web::test]
async fn each_printed_proof_is_accepted_once() {
    let api = Api::start();
    let recipe = DpopRecipe::new(&api.issuer, AUDIENCE, target("GET", api.url("/above")));
    let text = recipe.instructions(3);
    let printed = commands(&text);
    assert_eq!(printed.len(), 3, "{text}");
    for command in &printed {
        let (answer, _) = send(&api, command).await;
        assert_eq!(answer.status, 200, "{command}\n{answer:?}");
        assert!(answer.text.to_lowercase().ends_with(" dpop"), "{answer:?}");
    }
    // Single use: the first proof again is a replay.
    let (replay, _) = send(&api, printed[0]).await;
    replay.assert_refused(401, "invalid_dpop_proof");
    assert_eq!(replay.description(), Some("the DPoP proof has already been used"));
    // Enter prints another proof that works.
    let (again, _) = send(&api, &recipe.answer("")).await;
    assert_eq!(again.status, 200, "{again:?}");
    // The token is bound: never accepted as a Bearer token.
    api.bearer("/above", recipe.token())
        .await
        .assert_refused(401, "invalid_token");
}

#[actix_web::test]
async fn a_pasted_nonce_gives_a_proof_the_api_accepts() {
    let api = Api::start_with(|config| config.dpop_nonce_secrets(vec![vec![7; 32]]));
    let recipe = DpopRecipe::new(&api.issuer, AUDIENCE, target("GET", api.url("/above")));
    let text = recipe.instructions(1);
    let (first, nonce) = send(&api, commands(&text)[0]).await;
    first.assert_refused(401, "use_dpop_nonce");
    let nonce = nonce.expect("a DPoP-Nonce header");
    for pasted in [nonce.clone(), format!("DPoP-Nonce: {nonce}")] {
        let (retry, _) = send(&api, &recipe.answer(&pasted)).await;
        assert_eq!(retry.status, 200, "{pasted}: {retry:?}");
    }
}

#[actix_web::test]
async fn a_proof_names_the_method_it_was_made_for() {
    let api = Api::start();
    let recipe = DpopRecipe::new(&api.issuer, AUDIENCE, target("POST", api.url("/above")));
    let command = recipe.curl(None);
    assert!(command.starts_with("curl -i -X POST '"), "{command}");
    // Sent as a GET, as it was made for POST: refused (`htm`).
    let get = command.replacen(" -X POST", "", 1);
    send(&api, &get).await.0.assert_refused(401, "invalid_dpop_proof");
}

#[test]
fn the_arguments() {
    let args = |list: &[&str]| Target::from_args(list.iter().map(|a| (*a).to_owned()));
    assert_eq!(args(&[]), Ok(None));
    assert_eq!(
        args(&["--dpop"]),
        Ok(Some(Target {
            method: "GET".to_owned(),
            url: DEFAULT_URL.to_owned()
        }))
    );
    assert_eq!(
        args(&["--url", "https://api.example.com/x", "--method", "DELETE"]),
        Ok(Some(Target {
            method: "DELETE".to_owned(),
            url: "https://api.example.com/x".to_owned()
        }))
    );
    for bad in [
        &["--url", "/api/private"][..],
        &["--url", "localhost:3000/api"],
        &["--url"],
        &["--method", "G T"],
        &["--dpopp"],
    ] {
        assert!(args(bad).is_err(), "{bad:?}");
    }
}
