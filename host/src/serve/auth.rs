//! The checks in front of the routes: who is calling (a bearer token, or
//! a person's session cookie), whether their role permits the route's
//! [`Action`], and, on every write, that the request does not come from
//! another site's page (and, when a cookie authenticated it, that it
//! carries the session's CSRF token: `web_session.rs`).
//!
//! All are axum middleware: [`authorize`] on each protected route (its
//! state names the action), [`refuse_cross_site`] on the whole router.
//! `/v1/firehose` keeps its own access key (the one header Firehose can
//! send); `/healthz` and `/metrics` stay open for probes and Prometheus.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;
use super::app_state::AppState;
use super::role::{Action, Role};
use super::token_store::Lookup;
use super::user_store::UserRecord;
use super::web_session::{self, CSRF_HEADER};

/// Who made a request that passed [`authorize`], in the request's
/// extensions for handlers that need to tell callers apart and to scope
/// what they show ([`Caller::may_see`]).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's public id; `session` for a browser session.
    pub id: String,
    /// The token's name; the user's for a browser session.
    pub name: String,
    /// The role in force: a user's current role, also through their token.
    pub role: Role,
    /// The person, when the caller is one (by session, or by their token).
    pub user: Option<String>,
    /// For an agent: the agent id their sheets carry.
    pub agent_id: Option<String>,
    /// For a reviewer: the teams whose sheets they see; empty is all.
    pub teams: Vec<String>,
    /// How the request authenticated.
    pub via: Via,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer`: no browser sends it on its own, so writes
    /// need nothing more.
    Token,
    /// The session cookie, which a browser does send on its own: writes
    /// must carry this CSRF token.
    Session { csrf_token: String },
}

impl Caller {
    /// Whether the caller may see a sheet of agent `agent_id` whose team is
    /// the hierarchy path `team` (levels joined by `/`, `Site/Team B`).
    /// Admins and evaluate tokens (which judged the sessions) see all; a
    /// reviewer the sheets whose path holds one of their teams as a level
    /// (or a run of levels: `Site/Team B`), or all when they have no
    /// teams; an agent only their own; an ingest token none.
    pub fn may_see(&self, agent_id: Option<&str>, team: Option<&str>) -> bool {
        match self.role {
            Role::Admin | Role::Evaluate => true,
            Role::Ingest => false,
            Role::Agent => matches!((self.agent_id.as_deref(), agent_id), (Some(own), Some(theirs)) if own == theirs),
            Role::Reviewer => {
                self.teams.is_empty() || team.is_some_and(|path| self.teams.iter().any(|t| holds_levels(path, t)))
            }
        }
    }

    /// Who did something, for audit records: the user's name, or
    /// `token:ID` for a machine (user names cannot contain `:`).
    pub fn actor(&self) -> String {
        match &self.user {
            Some(user) => user.clone(),
            None => format!("token:{}", self.id),
        }
    }

    fn describe(&self) -> String {
        match (&self.user, &self.via) {
            (Some(user), Via::Session { .. }) => format!("user `{user}`"),
            (Some(user), Via::Token) => format!("token `{}` of user `{user}`", self.id),
            (None, _) => format!("token `{}` ({})", self.id, self.name),
        }
    }

    fn person(user: &UserRecord, id: String, name: String, via: Via) -> Caller {
        Caller {
            id,
            name,
            role: user.role,
            user: Some(user.name.clone()),
            agent_id: user.agent_id.clone(),
            teams: user.teams.clone(),
            via,
        }
    }
}

/// Whether the `/`-separated `path` holds the levels of `team`, in a row.
fn holds_levels(path: &str, team: &str) -> bool {
    let levels: Vec<&str> = path.split('/').collect();
    let wanted: Vec<&str> = team.split('/').collect();
    levels.windows(wanted.len()).any(|run| run == wanted.as_slice())
}

/// Middleware for a route that performs `action`:
/// `route_layer(from_fn_with_state((app, action), authorize))`.
pub async fn authorize(
    State((app, action)): State<(Arc<AppState>, Action)>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match identify(&app, request.headers()) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    // Before the role: a forged request learns nothing about what the
    // session may do.
    if let Via::Session { csrf_token } = &caller.via {
        let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !web_session::csrf_matches(request.headers(), csrf_token) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                format!(
                    "a write with a session cookie must send the header {CSRF_HEADER} with the csrf_token that \
                     POST /v1/login and GET /v1/me answer"
                ),
            )
            .into_response();
        }
    }
    if !caller.role.permits(action) {
        let roles: Vec<&str> = action.roles().into_iter().map(Role::as_str).collect();
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} has the role {}; {} {} needs the role {}",
                caller.describe(),
                caller.role,
                request.method(),
                request.uri().path(),
                roles.join(" or ")
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Who the request's credential names: a bearer token (a machine's, or a
/// user's), else the session cookie. A bearer token that fails is not
/// followed by the cookie: the client chose the token.
pub fn identify(app: &AppState, headers: &HeaderMap) -> Result<Caller, Unauthenticated> {
    let secret = match bearer(headers) {
        Bearer::Secret(secret) => secret,
        Bearer::Missing => return identify_session(app, headers),
        Bearer::Malformed => {
            return Err(Unauthenticated::new(
                Some("invalid_request"),
                "the Authorization header must be `Bearer <token>` (the token `callqa tokens create` printed)",
            ))
        }
    };
    let token = match app.tokens.authenticate(secret) {
        Lookup::Valid(token) => token,
        Lookup::Unknown => {
            return Err(Unauthenticated::new(
                Some("invalid_token"),
                "the bearer token is not valid here: revoked, mistyped, or made for another server's tokens file",
            ))
        }
        Lookup::NoTokens => {
            // The file's path is in the server's log, not told to strangers.
            return Err(Unauthenticated::new(
                Some("invalid_token"),
                "this server has no tokens yet; an operator creates one with `callqa tokens create` (with the \
                 server's --data-dir or --tokens)",
            ));
        }
    };
    let Some(user_name) = &token.user else {
        return Ok(Caller {
            id: token.id.clone(),
            name: token.name.clone(),
            role: token.role,
            user: None,
            agent_id: None,
            teams: Vec::new(),
            via: Via::Token,
        });
    };
    match app.users.get(user_name) {
        Some(user) if !user.disabled => Ok(Caller::person(&user, token.id.clone(), token.name.clone(), Via::Token)),
        Some(_) => Err(Unauthenticated::new(
            Some("invalid_token"),
            format!(
                "the user `{user_name}` this token acts for is disabled; an admin enables them with `callqa users \
                 enable {user_name}`"
            ),
        )),
        None => Err(Unauthenticated::new(
            Some("invalid_token"),
            format!("the user `{user_name}` this token acts for no longer exists"),
        )),
    }
}

fn identify_session(app: &AppState, headers: &HeaderMap) -> Result<Caller, Unauthenticated> {
    let mut refusal = None;
    for value in web_session::cookie_values(headers) {
        match app.sessions.verify(value, &app.users) {
            Ok(user) => {
                let csrf_token = app.sessions.csrf_token(value);
                return Ok(Caller::person(&user, "session".into(), user.name.clone(), Via::Session { csrf_token }));
            }
            Err(why) => refusal = Some(why),
        }
    }
    Err(match refusal {
        Some(why) => Unauthenticated::new(Some("invalid_token"), why.message()),
        None => Unauthenticated::new(
            None,
            "this endpoint needs a credential: a token (`Authorization: Bearer <token>`; an operator creates one with \
             `callqa tokens create --name NAME --role ROLE`) or a session (POST /v1/login)",
        ),
    })
}

enum Bearer<'a> {
    Secret(&'a str),
    Missing,
    /// Another scheme (`Basic`), or no token after `Bearer`.
    Malformed,
}

/// The secret of `Authorization: Bearer <secret>`.
fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Bearer::Missing };
    match value.to_str().ok().and_then(|text| text.split_once(' ')) {
        Some((scheme, secret)) if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() => {
            Bearer::Secret(secret.trim())
        }
        _ => Bearer::Malformed,
    }
}

/// A request whose credential did not identify anyone: a 401.
#[derive(Debug)]
pub struct Unauthenticated {
    /// RFC 6750's `error`; none when the request carried no credential.
    error: Option<&'static str>,
    message: String,
}

impl Unauthenticated {
    fn new(error: Option<&'static str>, message: impl Into<String>) -> Self {
        Unauthenticated { error, message: message.into() }
    }
}

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        unauthenticated(self.error, self.message)
    }
}

/// 401 with the challenge RFC 6750 asks for; no error code when the
/// request carried no credential at all.
fn unauthenticated(error: Option<&str>, message: impl Into<String>) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).into_response();
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"callqa\", error=\"{code}\""),
        None => "Bearer realm=\"callqa\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Refuses a write that a browser sent on behalf of another site's page.
///
/// A bearer token is not sent by a browser on its own, but the session
/// cookie is, and a cross-site HTML form can post to any address without a
/// CORS preflight; so from the start every method but GET and HEAD is
/// refused when the browser says the request is cross-site
/// (`Sec-Fetch-Site`) or its `Origin` is not this server. Clients that are
/// not browsers (Firehose, curl, SDKs) send neither header and pass.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(reason) = cross_site(request.headers(), request.uri()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-site",
                format!("{reason}: writes from another site's pages are refused"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn cross_site(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Some("Sec-Fetch-Site is cross-site".to_owned());
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin_text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .or_else(|| uri.authority().cloned());
    match (origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok()), host) {
        (Some(origin), Some(host)) if same_origin(&origin, &host) => None,
        (_, Some(host)) => Some(format!("the Origin {origin_text} is not this server ({host})")),
        (_, None) => Some(format!("the Origin {origin_text} cannot be checked: the request has no Host")),
    }
}

/// `Origin: scheme://host[:port]` against `Host: host[:port]`; either may
/// leave out the scheme's default port.
fn same_origin(origin: &Uri, host: &Authority) -> bool {
    let Some(origin_authority) = origin.authority() else { return false };
    let default = match origin.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    origin_authority.host().eq_ignore_ascii_case(host.host())
        && origin_authority.port_u16().unwrap_or(default) == host.port_u16().unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: &str, fetch_site: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        if let Some(s) = fetch_site {
            headers.insert("sec-fetch-site", HeaderValue::from_str(s).unwrap());
        }
        cross_site(&headers, &Uri::from_static("/v1/rules/reload")).is_none()
    }

    fn caller(role: Role, agent_id: Option<&str>, teams: &[&str]) -> Caller {
        Caller {
            id: "session".into(),
            name: "x".into(),
            role,
            user: Some("x".into()),
            agent_id: agent_id.map(Into::into),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            via: Via::Token,
        }
    }

    #[test]
    fn who_may_see_which_sheet() {
        let sheets = [
            (Some("maria"), Some("Lisbon/Team B")),
            (Some("joao"), Some("Lisbon/Team C/Night")),
            (Some("ana"), None),
            (None, Some("Team B")),
        ];
        let cases: [(Caller, [bool; 4]); 9] = [
            (caller(Role::Admin, None, &[]), [true, true, true, true]),
            (caller(Role::Evaluate, None, &[]), [true, true, true, true]),
            (caller(Role::Ingest, None, &[]), [false, false, false, false]),
            (caller(Role::Reviewer, None, &[]), [true, true, true, true]),
            (caller(Role::Reviewer, None, &["Team B"]), [true, false, false, true]),
            (caller(Role::Reviewer, None, &["Team C", "Team B"]), [true, true, false, true]),
            (caller(Role::Reviewer, None, &["Lisbon/Team C"]), [false, true, false, false]),
            (caller(Role::Agent, Some("maria"), &[]), [true, false, false, false]),
            // An agent without an agent id matches no sheet, not the sheets
            // without one.
            (caller(Role::Agent, None, &[]), [false, false, false, false]),
        ];
        for (who, expected) in cases {
            let got = sheets.map(|(agent, team)| who.may_see(agent, team));
            assert_eq!(got, expected, "{:?} {:?} {:?}", who.role, who.agent_id, who.teams);
        }
        // A level is matched whole: `Team` is not `Team B`.
        assert!(!caller(Role::Reviewer, None, &["Team"]).may_see(Some("maria"), Some("Lisbon/Team B")));
        assert!(!caller(Role::Reviewer, None, &["Lisbon/Team"]).may_see(Some("maria"), Some("Lisbon/Team B")));
    }

    #[test]
    fn actors() {
        assert_eq!(caller(Role::Agent, Some("maria"), &[]).actor(), "x");
        let machine = Caller { user: None, id: "0a0b0c0d".into(), ..caller(Role::Evaluate, None, &[]) };
        assert_eq!(machine.actor(), "token:0a0b0c0d");
    }

    #[test]
    fn origins() {
        assert!(check(None, "127.0.0.1:8080", None));
        assert!(check(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", Some("same-origin")));
        assert!(check(Some("https://QA.example.com"), "qa.example.com", None));
        assert!(check(Some("https://qa.example.com:443"), "qa.example.com", None));
        assert!(check(Some("http://qa.example.com"), "qa.example.com:80", None));
        assert!(!check(Some("http://evil.example"), "127.0.0.1:8080", None));
        assert!(!check(Some("http://127.0.0.1:8081"), "127.0.0.1:8080", None));
        assert!(!check(Some("null"), "127.0.0.1:8080", None));
        assert!(!check(Some("https://qa.example.com"), "qa.example.com:80", None));
        assert!(!check(None, "127.0.0.1:8080", Some("cross-site")));
    }
}
