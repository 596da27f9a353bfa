//! `POST /v1/sessions/evaluate`: a session document (the format `callqa
//! check` reads) in, its QA sheet out, evaluated by the ruleset active when
//! the request started.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api_error::ApiError;
use super::app_state::AppState;
use super::request_body::{is_json, media_type};
use crate::qa::Inspector;
use crate::session::{DocumentError, Session};

pub async fn evaluate(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let media = media_type(&headers);
    if !is_json(media.as_deref()) {
        return Err(ApiError::unsupported_type("application/json", media.as_deref()));
    }
    let body = app.bodies.read(&headers, body, app.config.max_session_bytes).await?;
    // The parser `callqa check` uses too, so a document gets one verdict.
    let session = Session::from_json(&body.bytes).map_err(|e| match e {
        DocumentError::Malformed { .. } => ApiError::bad_request(e.to_string()),
        DocumentError::Invalid(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-session", e.to_string()),
    })?;
    // The version in service now; a reload during the evaluation does not touch it.
    let active = app.rules.current();
    let permit = app.evaluations.clone().acquire_owned().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    let engine = app.rules.engine().clone();
    let ruleset = active.ruleset.clone();
    let sheet = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // One caller's document must not switch a rule off for everyone.
        Inspector::new(engine, active.ruleset.clone()).isolated().inspect(Arc::new(session))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the evaluation failed: {e}")))?;
    app.metrics.record_sheet(&sheet, "http");
    app.metrics.shadow.record(&sheet, &ruleset);
    Ok(Json(sheet).into_response())
}
