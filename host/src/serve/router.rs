//! The routes, and what wraps every request: per-route request counts,
//! the cross-site guard on writes, and the token check on the routes that
//! store, evaluate or change state (see `auth`).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::api_error::ApiError;
use super::app_state::AppState;
use super::auth;
use super::metrics::RouteLabels;
use super::role::Action;
use super::{ctr_routes, firehose, rules_routes, session_routes, sheet_routes, user_routes};

pub fn build(state: Arc<AppState>) -> Router {
    // Route layers, so the token is checked before any body is read.
    let needs = |action: Action| middleware::from_fn_with_state((state.clone(), action), auth::authorize);
    Router::new()
        // Firehose authenticates with its access key (firehose.rs).
        .route("/v1/firehose", post(firehose::deliver))
        .route("/v1/firehose/transform", post(firehose::transform).route_layer(needs(Action::Ingest)))
        .route("/v1/ctr", post(ctr_routes::ingest).route_layer(needs(Action::Ingest)))
        .route("/v1/sessions/evaluate", post(session_routes::evaluate).route_layer(needs(Action::Evaluate)))
        .route("/v1/rules", get(rules_routes::list).route_layer(needs(Action::ReadRules)))
        .route("/v1/rules/reload", post(rules_routes::reload).route_layer(needs(Action::ManageRules)))
        .route("/v1/rules/{id}/release", post(rules_routes::release).route_layer(needs(Action::ManageRules)))
        // The sheet store: who sees which sheet is decided per sheet in sheet_routes.rs.
        .route("/v1/sheets", get(sheet_routes::list).route_layer(needs(Action::ReadSheets)))
        .route("/v1/sheets/assign", post(sheet_routes::assign).route_layer(needs(Action::AssignSheets)))
        .route("/v1/sheets/rerun", post(sheet_routes::rerun).route_layer(needs(Action::ManageRules)))
        .route("/v1/sheets/{session_id}", get(sheet_routes::show).route_layer(needs(Action::ReadSheets)))
        .route("/v1/sheets/{session_id}/items", post(sheet_routes::add_item).route_layer(needs(Action::ReviewSheets)))
        .route(
            "/v1/sheets/{session_id}/items/{rule_id}/review",
            post(sheet_routes::review).route_layer(needs(Action::ReviewSheets)),
        )
        .route(
            "/v1/sheets/{session_id}/items/{rule_id}/dispute",
            post(sheet_routes::dispute).route_layer(needs(Action::RespondToSheets)),
        )
        .route(
            "/v1/sheets/{session_id}/acknowledge",
            post(sheet_routes::acknowledge).route_layer(needs(Action::RespondToSheets)),
        )
        .route(
            "/v1/sheets/{session_id}/items/{rule_id}/calibration",
            post(sheet_routes::calibrate).route_layer(needs(Action::ReviewSheets)),
        )
        .route(
            "/v1/sheets/{session_id}/calibration",
            get(sheet_routes::calibration).route_layer(needs(Action::ReviewSheets)),
        )
        .route("/v1/disputes", get(sheet_routes::disputes).route_layer(needs(Action::ReviewSheets)))
        .route("/v1/disputes/{id}/resolve", post(sheet_routes::resolve).route_layer(needs(Action::ReviewSheets)))
        .route("/v1/users", get(user_routes::list).post(user_routes::add).route_layer(needs(Action::ManageUsers)))
        .route("/v1/users/{name}/disable", post(user_routes::disable).route_layer(needs(Action::ManageUsers)))
        // People log in here; these check their own credentials.
        .route("/v1/login", post(super::login_routes::login))
        .route("/v1/logout", post(super::login_routes::logout))
        .route("/v1/me", get(super::login_routes::me))
        .merge(super::pages::routes())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(middleware::from_fn(auth::refuse_cross_site))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// What a connection past `--max-connections` gets: health checks answer
/// as usual, everything else is told to come back.
pub fn overflow(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(|| async {
            let mut response =
                ApiError::overloaded("the server is at its connection limit (--max-connections)").into_response();
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        })
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

async fn count_requests(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    app.metrics
        .http_requests
        .get_or_create(&RouteLabels { route, status: response.status().as_u16().to_string() })
        .inc();
    response
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let active = app.rules.current();
    app.metrics.observe_quarantines(&active.ruleset, active.generation);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
        .into_response()
}

async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let active = app.rules.current();
    Json(json!({
        "status": "ok",
        "uptime_seconds": app.started.elapsed().as_secs(),
        "rules_generation": active.generation,
        "rules": active.ruleset.rules.len(),
    }))
    .into_response()
}
