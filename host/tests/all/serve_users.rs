//! People in `callqa serve`, over a real socket: `callqa users` adds, lists
//! and disables them; `POST /v1/login` gives a session cookie that reads
//! freely and writes only with its CSRF token; failed logins all look alike
//! and are throttled; a disabled user's cookie and token stop working on
//! the next request; a user's token acts as the user; and reviewers and
//! agents get what their role allows of the existing endpoints.

use std::process::Command;

use serde_json::{json, Value};

use crate::serve_support::{client, sample_ctrs, session_document, users_in, Server};

const PASSWORD: &str = "correct horse battery staple";

fn users(server: &Server, args: &[&str]) -> String {
    let (ok, stdout, stderr) = users_in(&server.path("data"), args, "");
    assert!(ok, "callqa users {args:?} failed: {stderr}");
    stdout
}

fn add_user(server: &Server, name: &str, role: &str, extra: &[&str]) {
    let mut args = vec!["add", name, "--role", role, "--password-stdin"];
    args.extend(extra);
    let (ok, _, stderr) = users_in(&server.path("data"), &args, &format!("{PASSWORD}\n"));
    assert!(ok, "adding {name} failed: {stderr}");
}

/// A token acting for `name`.
fn user_token(server: &Server, name: &str) -> String {
    users(server, &["token", name]).trim().to_owned()
}

/// A logged-in person: the `Cookie` header to send, and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login_attempt(server: &Server, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(server.url("/v1/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn login(server: &Server, username: &str) -> Session {
    let response = login_attempt(server, username, PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200, "{username} cannot log in");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Session { cookie, csrf: body["csrf_token"].as_str().unwrap().to_owned() }
}

/// The credential a request carries.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Token(&'a str),
    /// The cookie, and the CSRF header or not.
    Cookie(&'a Session, bool),
}

async fn send(server: &Server, method: &str, path: &str, who: As<'_>, body: Option<(&str, Vec<u8>)>) -> (u16, Value) {
    let url = server.url(path);
    let mut request = match method {
        "GET" => client().get(url),
        _ => client().post(url),
    };
    if let Some((content_type, bytes)) = body {
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        request = request.body(bytes);
    }
    request = match who {
        As::Nobody => request,
        As::Token(token) => request.bearer_auth(token),
        As::Cookie(session, csrf) => {
            let request = request.header("cookie", &session.cookie);
            if csrf {
                request.header("x-csrf-token", &session.csrf)
            } else {
                request
            }
        }
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &Server, path: &str, who: As<'_>) -> (u16, Value) {
    send(server, "GET", path, who, None).await
}

async fn post(server: &Server, path: &str, who: As<'_>) -> (u16, Value) {
    send(server, "POST", path, who, None).await
}

#[test]
fn users_are_added_listed_and_disabled_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str], stdin: &str| users_in(&data, args, stdin);

    let (ok, stdout, stderr) = run(
        &[
            "add",
            "maria.lopez",
            "--role",
            "reviewer",
            "--team",
            "Team B",
            "--team",
            "Lisbon/Team C",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty(), "a password read from stdin is printed: {stdout}");
    // Without --password-stdin, a stdin that is not a terminal is read too.
    let (ok, _, stderr) =
        run(&["add", "jdoe", "--role", "agent", "--agent-id", "john.doe"], &format!("{PASSWORD}\r\n"));
    assert!(ok, "{stderr}");
    let (ok, generated, stderr) = run(&["add", "root", "--role", "admin", "--generate-password"], "");
    assert!(ok, "{stderr}");
    let generated = generated.trim();
    assert!(generated.len() >= 20, "{generated}");
    assert!(stderr.contains("shown only now"), "{stderr}");

    // Refusals that name what to do.
    for (args, stdin, says) in [
        (vec!["add", "ana", "--role", "agent", "--password-stdin"], PASSWORD, "--agent-id"),
        (vec!["add", "bot", "--role", "ingest", "--password-stdin"], PASSWORD, "callqa tokens create"),
        (vec!["add", "maria.lopez", "--role", "admin", "--password-stdin"], PASSWORD, "exists already"),
        (vec!["add", "ana", "--role", "admin", "--password-stdin"], "short", "shorter than 12"),
        (vec!["add", "ana", "--role", "admin", "--password-stdin"], "", "no password on stdin"),
        (vec!["add", "a b", "--role", "admin", "--password-stdin"], PASSWORD, "not usable"),
        (vec!["disable", "nobody"], "", "callqa users list"),
    ] {
        let (ok, _, stderr) = run(&args, stdin);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Tokens for people's roles come from their users.
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["tokens", "create", "--name", "x", "--role", "agent", "--data-dir"])
        .arg(&data)
        .env_remove("CALLQA_TOKENS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("callqa users add"));

    let (ok, table, _) = run(&["disable", "jdoe"], "");
    assert!(ok && table.is_empty());
    let (ok, table, _) = run(&["list"], "");
    assert!(ok);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("AGENT-ID"), "{table}");
    let row = |name: &str| lines.iter().find(|l| l.starts_with(name)).copied().unwrap_or_default();
    assert!(row("maria.lopez").contains("reviewer") && row("maria.lopez").contains("Team B, Lisbon/Team C"));
    assert!(row("jdoe").contains("john.doe") && row("jdoe").contains("disabled"), "{table}");
    assert!(row("root").contains("admin") && row("root").contains("enabled"), "{table}");

    let (ok, listed, _) = run(&["list", "--format", "json"], "");
    assert!(ok);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(
        listed[0],
        json!({"name": "maria.lopez", "role": "reviewer", "agent_id": null,
        "teams": ["Team B", "Lisbon/Team C"], "disabled": false, "created": listed[0]["created"]})
    );
    assert_eq!(listed[1]["disabled"], true);
    let (ok, _, _) = run(&["enable", "jdoe"], "");
    assert!(ok);
    let (_, listed, _) = run(&["list", "--format", "json"], "");
    assert!(!listed.contains("argon2"), "list shows a hash");
    assert_eq!(serde_json::from_str::<Value>(&listed).unwrap()[1]["disabled"], false);

    // The file holds hashes, never a password, and only its owner reads it.
    let file = std::fs::read_to_string(data.join("users.json")).unwrap();
    assert!(!file.contains(PASSWORD) && !file.contains(generated));
    assert_eq!(file.matches("$argon2id$").count(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(data.join("users.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_gives_a_session_cookie_and_failures_all_look_alike() {
    let server = Server::start(&["--session-hours", "2"]);
    add_user(&server, "maria.lopez", "reviewer", &["--team", "Team B"]);

    let response = login_attempt(&server, "maria.lopez", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], "maria.lopez");
    assert_eq!(body["role"], "reviewer");
    assert_eq!(body["teams"], json!(["Team B"]));
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let attributes: Vec<&str> = set_cookie.split("; ").collect();
    let value = attributes[0].strip_prefix("callqa_session=").unwrap();
    assert!(value.starts_with("maria.lopez.") && value.split('.').count() == 4, "{set_cookie}");
    for attribute in ["Path=/", "Max-Age=7200", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(attributes.contains(&attribute), "{attribute} missing: {set_cookie}");
    }
    let session = Session { cookie: attributes[0].to_owned(), csrf: csrf.clone() };

    let (status, me) = get(&server, "/v1/me", As::Cookie(&session, false)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "maria.lopez");
    assert_eq!(me["via"], "session");
    assert_eq!(me["csrf_token"], csrf.as_str());
    let (status, body) = get(&server, "/v1/me", As::Nobody).await;
    assert_eq!((status, &body["error"]["code"]), (401, &json!("unauthenticated")));
    let (status, me) = get(&server, "/v1/me", As::Token(&server.token)).await;
    assert_eq!(status, 200);
    assert_eq!((me["role"].as_str(), me["via"].as_str(), &me["user"]), (Some("admin"), Some("token"), &Value::Null));

    // A tampered cookie: another user's name, or a later expiry.
    for forged in [value.replacen("maria.lopez", "root", 1), {
        let parts: Vec<&str> = value.rsplitn(3, '.').collect();
        format!("{}.{}.{}", parts[2], parts[1].parse::<i64>().unwrap() + 3600, parts[0])
    }] {
        let forged = Session { cookie: format!("callqa_session={forged}"), csrf: csrf.clone() };
        let (status, _) = get(&server, "/v1/me", As::Cookie(&forged, false)).await;
        assert_eq!(status, 401);
    }

    // A wrong password and an unknown user get the same answer.
    let mut answers = Vec::new();
    for (username, password) in [("maria.lopez", "wrong password here"), ("nobody", PASSWORD)] {
        let response = login_attempt(&server, username, password).await;
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().get("set-cookie").is_none());
        answers.push(response.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    let answer: Value = serde_json::from_str(&answers[0]).unwrap();
    assert_eq!(answer["error"]["code"], "login-failed");

    // Logout ends the session, for this copy of the cookie and any other.
    let response = client().post(server.url("/v1/logout")).header("cookie", &session.cookie).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("callqa_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let (status, body) = get(&server, "/v1/me", As::Cookie(&session, false)).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("log in again"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_write_needs_the_csrf_token_and_a_bearer_write_does_not() {
    let server = Server::start(&[]);
    add_user(&server, "root", "admin", &[]);
    let session = login(&server, "root").await;

    let (status, body) = post(&server, "/v1/rules/reload", As::Cookie(&session, false)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf");
    assert!(body["error"]["message"].as_str().unwrap().contains("x-csrf-token"), "{body}");
    let wrong = Session { cookie: session.cookie.clone(), csrf: "AAAA".into() };
    let (status, body) = post(&server, "/v1/rules/reload", As::Cookie(&wrong, true)).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("csrf")));
    // Another session's token is not this one's.
    let other = login(&server, "root").await;
    let crossed = Session { cookie: session.cookie.clone(), csrf: other.csrf.clone() };
    if other.cookie != session.cookie {
        let (status, _) = post(&server, "/v1/rules/reload", As::Cookie(&crossed, true)).await;
        assert_eq!(status, 403);
    }

    let (status, body) = post(&server, "/v1/rules/reload", As::Cookie(&session, true)).await;
    assert_eq!(status, 200, "{body}");
    // Reads need no token.
    let (status, _) = get(&server, "/v1/rules", As::Cookie(&session, false)).await;
    assert_eq!(status, 200);
    // Neither does a bearer write, a user's token included.
    let (status, _) = post(&server, "/v1/rules/reload", As::Token(&server.token)).await;
    assert_eq!(status, 200);
    let (status, _) = post(&server, "/v1/rules/reload", As::Token(&user_token(&server, "root"))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_login_in_a_row_is_throttled_even_with_the_right_password() {
    let server = Server::start(&["--insecure-cookies"]);
    add_user(&server, "maria.lopez", "reviewer", &[]);
    add_user(&server, "jdoe", "agent", &["--agent-id", "john.doe"]);

    // --insecure-cookies: no Secure attribute.
    let response = login_attempt(&server, "maria.lopez", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && !set_cookie.contains("Secure"), "{set_cookie}");

    for attempt in 1..=5 {
        let response = login_attempt(&server, "maria.lopez", "not the password").await;
        assert_eq!(response.status().as_u16(), 401, "attempt {attempt}");
    }
    let response = login_attempt(&server, "maria.lopez", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry_after), "Retry-After {retry_after}");
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "throttled");
    // The failures came from one address, which is throttled too, for
    // every user name.
    let response = login_attempt(&server, "jdoe", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 429);
    // Credentials other than a password are not throttled.
    let (status, _) = get(&server, "/v1/rules", As::Token(&server.token)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_users_cookie_and_token_are_refused_at_once() {
    let server = Server::start(&[]);
    add_user(&server, "maria.lopez", "reviewer", &["--team", "Team B"]);
    let session = login(&server, "maria.lopez").await;
    let token = user_token(&server, "maria.lopez");
    for who in [As::Cookie(&session, false), As::Token(&token)] {
        let (status, me) = get(&server, "/v1/me", who).await;
        assert_eq!(status, 200);
        assert_eq!(me["user"], "maria.lopez");
    }

    users(&server, &["disable", "maria.lopez"]);
    for who in [As::Cookie(&session, false), As::Token(&token)] {
        for path in ["/v1/me", "/v1/rules"] {
            let (status, body) = get(&server, path, who).await;
            assert_eq!(status, 401, "{path}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("disabled"), "{body}");
        }
    }
    let response = login_attempt(&server, "maria.lopez", PASSWORD).await;
    assert_eq!(response.status().as_u16(), 401, "a disabled user logged in");
    let (ok, _, stderr) = users_in(&server.path("data"), &["token", "maria.lopez"], "");
    assert!(!ok && stderr.contains("disabled"), "{stderr}");

    users(&server, &["enable", "maria.lopez"]);
    for who in [As::Cookie(&session, false), As::Token(&token)] {
        let (status, _) = get(&server, "/v1/rules", who).await;
        assert_eq!(status, 200);
    }
    // A new password ends the sessions; the token is no password and stays.
    let (ok, _, stderr) =
        users_in(&server.path("data"), &["passwd", "maria.lopez", "--password-stdin"], "a brand new passphrase\n");
    assert!(ok, "{stderr}");
    let (status, _) = get(&server, "/v1/rules", As::Cookie(&session, false)).await;
    assert_eq!(status, 401);
    let (status, _) = get(&server, "/v1/rules", As::Token(&token)).await;
    assert_eq!(status, 200);
    let response = login_attempt(&server, "maria.lopez", "a brand new passphrase").await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_token_acts_as_the_user() {
    let server = Server::start(&[]);
    add_user(&server, "jdoe", "agent", &["--agent-id", "john.doe"]);
    let token = user_token(&server, "jdoe");
    assert!(token.starts_with("cqa_"), "{token}");
    let listed = crate::serve_support::run_tokens(&server, &["list"]);
    assert!(listed.lines().any(|l| l.contains("jdoe") && l.contains("agent")), "{listed}");

    let (status, me) = get(&server, "/v1/me", As::Token(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"], "jdoe");
    assert_eq!(me["role"], "agent");
    assert_eq!(me["agent_id"], "john.doe");
    assert_eq!(me["via"], "token");
    assert_eq!(me["csrf_token"], Value::Null);

    let (status, body) = post(&server, "/v1/rules/reload", As::Token(&token)).await;
    assert_eq!(status, 403);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("of user `jdoe`") && message.contains("agent") && message.contains("admin"), "{body}");

    // A burst of guesses at once gets no more tries than guesses in a row.
    let burst = (0..12).map(|i| {
        let server = &server;
        async move { login_attempt(server, "jdoe", &format!("guess number {i}")).await.status().as_u16() }
    });
    let mut statuses = futures::future::join_all(burst).await;
    statuses.sort();
    assert_eq!(statuses, [vec![401; 5], vec![429; 7]].concat());
}

/// The endpoints that existed before people: a reviewer and an agent may
/// read the rules, and may do none of the rest, by cookie or by token.
#[tokio::test(flavor = "multi_thread")]
async fn reviewers_and_agents_against_the_existing_endpoints() {
    let server = Server::start(&[]);
    add_user(&server, "maria.lopez", "reviewer", &["--team", "Team B"]);
    add_user(&server, "jdoe", "agent", &["--agent-id", "john.doe"]);
    add_user(&server, "root", "admin", &[]);

    let writes: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/v1/ctr", "application/json", sample_ctrs().remove(0)),
        ("/v1/firehose/transform", "application/json", b"{}".to_vec()),
        ("/v1/sessions/evaluate", "application/json", session_document("voice-en-billing-pass.json")),
        ("/v1/rules/reload", "", Vec::new()),
        ("/v1/rules/greeting-hotline/release", "", Vec::new()),
    ];
    for name in ["maria.lopez", "jdoe"] {
        let session = login(&server, name).await;
        let token = user_token(&server, name);
        for who in [As::Cookie(&session, true), As::Token(&token)] {
            let (status, body) = get(&server, "/v1/rules", who).await;
            assert_eq!(status, 200, "{name} GET /v1/rules: {body}");
            for (path, content_type, bytes) in &writes {
                let (status, body) = send(&server, "POST", path, who, Some((content_type, bytes.clone()))).await;
                assert_eq!(status, 403, "{name} POST {path}: {body}");
                assert_eq!(body["error"]["code"], "forbidden", "{name} POST {path}");
            }
        }
    }

    // The control: an admin's session does them all (with its CSRF token).
    let session = login(&server, "root").await;
    let writes_ok = [
        ("/v1/ctr", "application/json", sample_ctrs().remove(0)),
        ("/v1/sessions/evaluate", "application/json", session_document("voice-en-billing-pass.json")),
        ("/v1/rules/reload", "", Vec::new()),
        ("/v1/rules/greeting-hotline/release", "", Vec::new()),
    ];
    for (path, content_type, bytes) in writes_ok {
        let (status, body) = send(&server, "POST", path, As::Cookie(&session, true), Some((content_type, bytes))).await;
        assert_eq!(status, 200, "admin POST {path}: {body}");
    }
}
