//! The checks in front of the routes: a bearer token whose role permits
//! the route's [`Action`], and, on every write, that the request does not
//! come from another site's page.
//!
//! Both are axum middleware: [`authorize`] on each protected route (its
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

/// Who made a request that passed [`authorize`], in the request's
/// extensions for handlers that need to tell callers apart.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's public id.
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Middleware for a route that performs `action`:
/// `route_layer(from_fn_with_state((app, action), authorize))`.
pub async fn authorize(
    State((app, action)): State<(Arc<AppState>, Action)>,
    mut request: Request,
    next: Next,
) -> Response {
    let secret = match bearer(request.headers()) {
        Bearer::Secret(secret) => secret,
        Bearer::Missing => {
            return unauthenticated(
                None,
                "this endpoint needs a token: send `Authorization: Bearer <token>`; an operator creates one with \
                 `callqa tokens create --name NAME --role ROLE`",
            )
        }
        Bearer::Malformed => {
            return unauthenticated(
                Some("invalid_request"),
                "the Authorization header must be `Bearer <token>` (the token `callqa tokens create` printed)",
            )
        }
    };
    let token = match app.tokens.authenticate(secret) {
        Lookup::Valid(token) => token,
        Lookup::Unknown => {
            return unauthenticated(
                Some("invalid_token"),
                "the bearer token is not valid here: revoked, mistyped, or made for another server's tokens file",
            )
        }
        Lookup::NoTokens => {
            // The file's path is in the server's log, not told to strangers.
            return unauthenticated(
                Some("invalid_token"),
                "this server has no tokens yet; an operator creates one with `callqa tokens create` (with the \
                 server's --data-dir or --tokens)",
            );
        }
    };
    if !token.role.permits(action) {
        let roles: Vec<&str> = action.roles().into_iter().map(Role::as_str).collect();
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token `{}` ({}) has the role {}; {} {} needs a token with the role {}",
                token.id,
                token.name,
                token.role,
                request.method(),
                request.uri().path(),
                roles.join(" or ")
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller { id: token.id.clone(), name: token.name.clone(), role: token.role });
    next.run(request).await
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
/// A bearer token is not sent by a browser on its own, but a cookie (issue
/// #21) is, and a cross-site HTML form can post to any address without a
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
