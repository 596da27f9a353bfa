//! Sign in and out with a form; the session is the one `POST /v1/login`
//! begins (`login_routes::sign_in`: same throttle, same cookie).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::json;

use super::Visitor;
use crate::serve::app_state::AppState;
use crate::serve::{login_routes, web_session};

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path on this server only (an open
/// redirect would let a link send people elsewhere from a trusted host).
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/sheets",
    }
}

pub async fn show(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<NextQuery>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    if visitor.caller.is_some() {
        return Redirect::to(local_path(query.next.as_deref())).into_response();
    }
    let next = local_path(query.next.as_deref()).to_owned();
    visitor.render(StatusCode::OK, "login.html", "login", json!({"next": next, "failed": null}))
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn sign_in(
    State(app): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<SignInForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let next = local_path(form.next.as_deref()).to_owned();
    match login_routes::sign_in(&app, peer.map(|Extension(ConnectInfo(a))| a), form.username, form.password).await {
        Ok((_, issued)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, app.sessions.set_cookie(&issued));
            response
        }
        Err(refusal) => {
            let message = if refusal.status == StatusCode::UNAUTHORIZED {
                visitor.locale.labels()["sign_in_failed"].clone()
            } else {
                refusal.message.clone()
            };
            visitor.render(refusal.status, "login.html", "login", json!({"next": next, "failed": message}))
        }
    }
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: String,
}

pub async fn sign_out(State(app): State<Arc<AppState>>, headers: HeaderMap, Form(form): Form<SignOutForm>) -> Response {
    for value in web_session::cookie_values(&headers) {
        // Only the session whose token the form carries: a forged sign-out ends nothing.
        if web_session::csrf_equal(form.csrf.as_bytes(), &app.sessions.csrf_token(value)) {
            app.sessions.end(value);
        }
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.sessions.clear_cookie());
    response
}
