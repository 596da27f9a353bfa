//! The routes, and what wraps every request: per-route request counts.

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
use super::metrics::RouteLabels;
use super::{ctr_routes, firehose, rules_routes, session_routes};

pub fn build(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/firehose", post(firehose::deliver))
        .route("/v1/firehose/transform", post(firehose::transform))
        .route("/v1/ctr", post(ctr_routes::ingest))
        .route("/v1/sessions/evaluate", post(session_routes::evaluate))
        .route("/v1/rules", get(rules_routes::list))
        .route("/v1/rules/reload", post(rules_routes::reload))
        .route("/v1/rules/{id}/release", post(rules_routes::release))
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
        "store": app.ingestor.describe_store(),
        "sheets": app.realtime.describe_sink(),
    }))
    .into_response()
}
