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
use super::request_body::{is_json, media_type, read_limited};
use crate::qa::Inspector;
use crate::session::Session;

pub async fn evaluate(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let media = media_type(&headers);
    if !is_json(media.as_deref()) {
        return Err(ApiError::unsupported_type("application/json", media.as_deref()));
    }
    let bytes = read_limited(&headers, body, app.config.max_body_bytes).await?;
    let mut session: Session =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("not a session document: {e}")))?;
    session
        .normalise()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-session", format!("{e:#}")))?;
    // The version in service now; a reload during the evaluation does not touch it.
    let active = app.rules.current();
    let permit = app.evaluations.clone().acquire_owned().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    let engine = app.rules.engine().clone();
    let sheet = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        Inspector::new(engine, active.ruleset.clone()).inspect(Arc::new(session))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the evaluation failed: {e}")))?;
    app.metrics.record_sheet(&sheet, "http");
    Ok(Json(sheet).into_response())
}
