//! `POST /v1/login`, `POST /v1/logout`, `GET /v1/me`: people in a browser
//! (the workbench) get a session cookie for their user name and password;
//! scripts use a token instead (`callqa users token`).
//!
//! A password can be guessed, so logins are throttled: after
//! [`MAX_FAILURES`] failures within [`WINDOW`] for one user name, or from
//! one client address, further attempts are answered 429 without looking at
//! the password, even a right one, so the answer does not tell a guesser
//! when they hit. The two counters cover a guesser trying many passwords on
//! one user, and one trying a few on many. A failure says the same and
//! takes the same time whether the user exists or not (an unknown user's
//! password is checked against a hash of nothing), so logins do not tell
//! which names exist.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use super::api_error::ApiError;
use super::app_state::AppState;
use super::auth::{self, Via};
use super::user_store;
use super::web_session;

/// Failed logins allowed per user name, and per client address, within
/// [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names (and client addresses) whose failures are remembered at
/// once: the memory an attacker spraying names can make us spend.
const MAX_KEYS: usize = 10_000;
const MAX_USERNAME_BYTES: usize = 256;

/// What the login routes keep between requests.
pub struct LoginState {
    throttle: Throttle,
    /// Each verification takes ~19 MiB for tens of milliseconds; more at
    /// once than cores only queue in memory.
    verifying: Semaphore,
    /// What an unknown user's password is checked against: made at start,
    /// so even the first unknown name costs what a known one does.
    dummy_hash: String,
}

impl LoginState {
    /// Takes one password hash's time (tens of milliseconds).
    pub fn new() -> anyhow::Result<LoginState> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy_hash = user_store::hash_password(&user_store::generate_password()?)?;
        Ok(LoginState { throttle: Throttle::default(), verifying: Semaphore::new(cores.max(2)), dummy_hash })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

pub async fn login(
    State(app): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: super::json_body::JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let LoginBody { username, password } = body.0;
    let (user, issued) = sign_in(&app, peer.map(|Extension(ConnectInfo(addr))| addr), username, password).await?;
    let mut response = Json(json!({
        "user": user.name,
        "role": user.role,
        "agent_id": user.agent_id,
        "teams": user.teams,
        "csrf_token": issued.csrf_token,
        "expires": chrono::DateTime::from_timestamp(issued.expires, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }))
    .into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.sessions.set_cookie(&issued));
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Checks a user name and password, throttled, and begins a session: what
/// `POST /v1/login` and the workbench's sign-in form share.
pub async fn sign_in(
    app: &AppState,
    peer: Option<SocketAddr>,
    username: String,
    password: String,
) -> Result<(Arc<user_store::UserRecord>, web_session::Issued), ApiError> {
    if username.len() > MAX_USERNAME_BYTES || password.len() > user_store::MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(format!(
            "the username is at most {MAX_USERNAME_BYTES} bytes, the password at most {} bytes",
            user_store::MAX_PASSWORD_BYTES
        )));
    }
    let client = peer.map_or_else(|| "unknown".to_owned(), |addr| client_key(addr.ip()));
    let user_key = username.to_lowercase();
    let attempted = Instant::now();
    if let Err(wait) = app.login.throttle.attempt(&user_key, &client, attempted) {
        tracing::warn!(user = ?username, client, "login refused: too many failed attempts");
        return Err(throttled(wait));
    }

    let user = app.users.get(&username);
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => app.login.dummy_hash.clone(),
    };
    let verified = {
        let _turn = app.login.verifying.acquire().await.map_err(|_| ApiError::internal("shutting down"))?;
        tokio::task::spawn_blocking(move || user_store::verify_password(&hash, &password))
            .await
            .map_err(|e| ApiError::internal(format!("the password check failed: {e}")))?
    };
    let user = match user {
        Some(user) if verified && !user.disabled => user,
        // Counted already, by `attempt`.
        _ => {
            tracing::warn!(user = ?username, client, "login failed");
            // A disabled user with the right password is told the same:
            // the answer confirms no password.
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "login-failed", "wrong user name or password"));
        }
    };
    app.login.throttle.succeeded(&user_key, &client, attempted);
    let issued = app.sessions.issue(&user);
    tracing::info!(user = %user.name, role = %user.role, client, "logged in");
    Ok((user, issued))
}

/// Ends the session the request carries, if any, and tells the browser to
/// drop the cookie. Needs no CSRF token: the worst a forged logout does is
/// log someone out.
pub async fn logout(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    for value in web_session::cookie_values(&headers) {
        if let Ok(user) = app.sessions.verify(value, &app.users) {
            app.sessions.end(value);
            tracing::info!(user = %user.name, "logged out");
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.sessions.clear_cookie());
    response
}

/// Who the credential is: what the workbench shows, and the CSRF token a
/// page loaded later needs for its writes.
pub async fn me(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let caller = match auth::identify(&app, &headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let (via, csrf_token, token) = match &caller.via {
        Via::Session { csrf_token } => ("session", Some(csrf_token.clone()), None),
        Via::Token => ("token", None, Some(json!({"id": caller.id, "name": caller.name}))),
    };
    let mut response = Json(json!({
        "user": caller.user,
        "role": caller.role,
        "agent_id": caller.agent_id,
        "teams": caller.teams,
        "via": via,
        "token": token,
        "csrf_token": csrf_token,
    }))
    .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

fn throttled(wait: Duration) -> ApiError {
    let seconds = wait.as_secs().max(1);
    ApiError {
        retry_after: Some(u32::try_from(seconds).unwrap_or(u32::MAX)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed logins for this user or from this address; try again in {seconds} s"),
        )
    }
}

/// The address failures are counted by. An IPv6 host usually holds a
/// whole /64, so that is one client.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Recent failures per user name and per client, at most [`MAX_FAILURES`]
/// each (older ones no longer matter), for at most [`MAX_KEYS`] of each.
#[derive(Default)]
struct Throttle {
    inner: Mutex<(Failures, Failures)>,
}

type Failures = HashMap<String, VecDeque<Instant>>;

impl Throttle {
    /// Counts an attempt as a failure before its password is checked, or
    /// refuses it with the time to wait when `user` or `client` is at the
    /// limit. Check and count are one step, so a burst of concurrent
    /// guesses cannot all pass the check before the first failure is
    /// counted; a right password takes its count back ([`Self::succeeded`]).
    fn attempt(&self, user: &str, client: &str, now: Instant) -> Result<(), Duration> {
        let mut inner = self.inner.lock();
        let (users, clients) = &mut *inner;
        let wait = match (wait(users, user, now), wait(clients, client, now)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(wait) = wait {
            return Err(wait);
        }
        record(users, user, now);
        record(clients, client, now);
        Ok(())
    }

    /// The attempt made at `at` was right. The user starts afresh; their
    /// address only loses this attempt's count, or one right password
    /// would reset a guesser's count on every other name.
    fn succeeded(&self, user: &str, client: &str, at: Instant) {
        let mut inner = self.inner.lock();
        inner.0.remove(user);
        if let Some(times) = inner.1.get_mut(client) {
            if let Some(i) = times.iter().position(|t| *t == at) {
                times.remove(i);
            }
        }
    }
}

/// How long until `key` may try again; `None`: now.
fn wait(failures: &Failures, key: &str, now: Instant) -> Option<Duration> {
    let recent: Vec<Instant> =
        failures.get(key)?.iter().copied().filter(|at| now.duration_since(*at) < WINDOW).collect();
    (recent.len() >= MAX_FAILURES).then(|| (recent[recent.len() - MAX_FAILURES] + WINDOW) - now)
}

fn record(failures: &mut Failures, key: &str, now: Instant) {
    if !failures.contains_key(key) && failures.len() >= MAX_KEYS {
        failures.retain(|_, times| times.back().is_some_and(|last| now.duration_since(*last) < WINDOW));
        if failures.len() >= MAX_KEYS {
            // The key whose last failure is oldest is the one least likely
            // to reach the limit again soon.
            let stalest = failures.iter().min_by_key(|(_, times)| times.back().copied()).map(|(k, _)| k.clone());
            if let Some(stalest) = stalest {
                failures.remove(&stalest);
            }
        }
    }
    let times = failures.entry(key.to_owned()).or_default();
    times.retain(|at| now.duration_since(*at) < WINDOW);
    times.push_back(now);
    while times.len() > MAX_FAILURES {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_the_name_and_the_address_for_the_window() {
        let throttle = Throttle::default();
        let start = Instant::now();
        let secs = Duration::from_secs;
        for i in 0..MAX_FAILURES as u64 {
            assert_eq!(throttle.attempt("maria", "10.0.0.1", start + secs(i)), Ok(()));
        }
        let now = start + secs(10);
        assert_eq!(throttle.attempt("maria", "10.0.0.2", now), Err(WINDOW - secs(10)));
        assert_eq!(throttle.attempt("joao", "10.0.0.1", now), Err(WINDOW - secs(10)));
        assert_eq!(throttle.attempt("joao", "10.0.0.2", now), Ok(()));
        // The first failure ages out, and one more attempt is allowed; a
        // refused attempt did not count.
        assert!(throttle.attempt("maria", "10.0.0.3", start + WINDOW - secs(1)).is_err());
        assert_eq!(throttle.attempt("maria", "10.0.0.3", start + WINDOW), Ok(()));
        assert!(throttle.attempt("maria", "10.0.0.4", start + WINDOW).is_err());
    }

    #[test]
    fn a_right_password_takes_back_only_its_own_count() {
        let throttle = Throttle::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        for i in 0..4 {
            throttle.attempt("maria", "10.0.0.1", start + ms(i)).unwrap();
        }
        let at = start + ms(10);
        throttle.attempt("maria", "10.0.0.1", at).unwrap();
        throttle.succeeded("maria", "10.0.0.1", at);
        // The name starts afresh; the address keeps its four failures.
        assert!(!throttle.inner.lock().0.contains_key("maria"));
        assert_eq!(throttle.attempt("joao", "10.0.0.1", start + ms(20)), Ok(()));
        assert!(throttle.attempt("ana", "10.0.0.1", start + ms(30)).is_err());
    }

    #[test]
    fn the_counters_are_bounded() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..(MAX_KEYS + 100) {
            let at = start + Duration::from_millis(i as u64);
            throttle.attempt(&format!("user{i}"), &format!("client{i}"), at).unwrap();
        }
        let inner = throttle.inner.lock();
        assert_eq!((inner.0.len(), inner.1.len()), (MAX_KEYS, MAX_KEYS));
        assert!(!inner.0.contains_key("user0") && inner.0.contains_key(&format!("user{}", MAX_KEYS + 99)));
    }

    #[test]
    fn clients() {
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()), "2001:db8:1:2::/64");
    }
}
