//! The workbench: server-rendered pages at `/` for people in a browser
//! (sign in, sheets, one sheet, dashboard, rules), plain HTML forms for
//! every action, no JavaScript needed but to draw charts.
//!
//! Each action a form posts goes through the same handler as its JSON
//! endpoint in `sheet_routes.rs` or `rules_routes.rs`, so who may do what is
//! decided once. Pages authenticate by the session cookie only; a form
//! echoes the session's CSRF token in a hidden field (a form cannot set the
//! header the JSON API wants). Every response carries a Content-Security-
//! Policy that allows scripts and styles from this origin only: no inline
//! script runs, even one a transcript managed to smuggle past escaping.

mod dashboard_page;
mod login_page;
mod rules_page;
mod sheet_page;
mod sheets_page;

use std::sync::Arc;

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::api_error::ApiError;
use super::app_state::AppState;
use super::auth::{self, Caller, Via};
use super::role::Action;
use super::web_session;
use crate::workbench::assets;
use crate::workbench::locale::{self, Locale};
use crate::workbench::templates::Templates;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/sheets") }))
        .route("/login", get(login_page::show).post(login_page::sign_in))
        .route("/logout", post(login_page::sign_out))
        .route("/sheets", get(sheets_page::show))
        .route("/sheets/{session_id}", get(sheet_page::show))
        .route("/sheets/{session_id}/items", post(sheet_page::add_item))
        .route("/sheets/{session_id}/acknowledge", post(sheet_page::acknowledge))
        .route("/sheets/{session_id}/items/{rule_id}/review", post(sheet_page::review))
        .route("/sheets/{session_id}/items/{rule_id}/dispute", post(sheet_page::dispute))
        .route("/disputes/{id}/resolve", post(sheet_page::resolve))
        .route("/dashboard", get(dashboard_page::show))
        .route("/rules", get(rules_page::show))
        .route("/rules/validate", post(rules_page::validate))
        .route("/rules/{id}/release", post(rules_page::release))
        .route("/assets/{name}", get(asset))
        .layer(middleware::from_fn(secure_headers))
}

async fn secure_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        // Pages hold a person's sheets: not to be kept by a shared browser cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::get(&name) {
        Some(asset) => {
            ([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, "public, max-age=3600")], asset.body)
                .into_response()
        }
        None => ApiError::not_found(format!("no asset {name}")).into_response(),
    }
}

/// Who is looking, in which language.
pub(super) struct Visitor {
    pub caller: Option<Caller>,
    pub locale: Locale,
    /// Set when `?lang=` chose the language: the switch remembers it.
    remember: Option<Locale>,
}

impl Visitor {
    pub fn of(app: &AppState, headers: &HeaderMap, uri: &Uri) -> Visitor {
        let asked =
            uri.query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("lang=")).and_then(Locale::parse));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(locale::COOKIE).and_then(|rest| rest.strip_prefix('=')))
            .and_then(Locale::parse);
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let locale = asked.or(cookie).unwrap_or_else(|| Locale::from_accept_language(accept));
        // Only the session cookie: a page is what a browser asks for.
        let caller = auth::identify(app, headers).ok().filter(|c| matches!(c.via, Via::Session { .. }));
        Visitor { caller, locale, remember: asked }
    }

    pub fn csrf(&self) -> &str {
        match self.caller.as_ref().map(|c| &c.via) {
            Some(Via::Session { csrf_token }) => csrf_token,
            _ => "",
        }
    }

    /// The context every page template gets.
    pub fn context(&self, nav: &str) -> Value {
        json!({
            "lang": self.locale.code(),
            "t": self.locale.labels(),
            "me": self.caller.as_ref().map(|c| json!({"user": c.user, "role": c.role})),
            "csrf": self.csrf(),
            "nav": nav,
            "flash": null,
        })
    }

    /// Renders `template` with the page context and `extra` merged in.
    pub fn render(&self, status: StatusCode, template: &str, nav: &str, extra: Value) -> Response {
        let mut context = self.context(nav);
        if let (Some(base), Value::Object(extra)) = (context.as_object_mut(), extra) {
            base.extend(extra);
        }
        let mut response = match Templates::get().render(template, &context) {
            Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                tracing::error!("page {template}: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render; the server log has why").into_response()
            }
        };
        if let Some(locale) = self.remember {
            let cookie = format!("{}={}; Path=/; Max-Age=31536000; SameSite=Strict", locale::COOKIE, locale.code());
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }

    pub fn error(&self, status: StatusCode, message: &str, back: &str) -> Response {
        self.render(status, "error.html", "", json!({"status": status.as_u16(), "message": message, "back": back}))
    }

    /// The signed-in caller, or the sign-in page (coming back here after).
    // The refusal is the response itself, made once per request: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn signed_in(&self, uri: &Uri) -> Result<&Caller, Response> {
        match &self.caller {
            Some(caller) => Ok(caller),
            None => {
                let next = uri.path_and_query().map_or("/sheets", |p| p.as_str());
                let query: String = url_escape(next);
                Err(Redirect::to(&format!("/login?next={query}")).into_response())
            }
        }
    }

    /// The caller, when signed in, the form's CSRF token is theirs and
    /// their role permits `action`; otherwise the page that says why.
    #[allow(clippy::result_large_err)]
    pub fn may(&self, uri: &Uri, csrf: &str, action: Action) -> Result<Caller, Response> {
        let caller = self.signed_in(uri)?;
        if !web_session::csrf_equal(csrf.as_bytes(), self.csrf()) {
            return Err(self.error(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is not this session's: reload the page",
                "/sheets",
            ));
        }
        if !caller.role.permits(action) {
            return Err(self.error(StatusCode::FORBIDDEN, self.locale.labels()["forbidden"].as_str(), "/sheets"));
        }
        Ok(caller.clone())
    }

    /// What a form's action answered: back to `back` when it worked, the
    /// API's refusal shown when not.
    pub fn finish(&self, outcome: Result<Response, ApiError>, back: &str) -> Response {
        match outcome {
            Ok(response) if response.status().is_success() => Redirect::to(back).into_response(),
            Ok(response) => self.error(response.status(), "the action was refused", back),
            Err(refusal) => self.error(refusal.status, &refusal.message, back),
        }
    }
}

/// A form field's text, `None` when left empty (a form sends every field).
pub(super) fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(super) fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
