//! The rules endpoints: status, reload on demand, end a quarantine.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api_error::ApiError;
use super::app_state::AppState;
use super::live_rules::{reload_in_background, ReloadOutcome};

/// The rules' status; a shadow rule also shows the rule it shadows and how
/// their outcomes agreed since the start (`serve/shadow_report.rs`).
pub async fn list(State(app): State<Arc<AppState>>) -> Response {
    Json(status(&app)).into_response()
}

/// What `GET /v1/rules` answers: every rule's state, and for a shadow rule
/// (`shadow` is on every rule) its target and their agreement.
pub fn status(app: &AppState) -> Value {
    let mut status = app.rules.status();
    let active = app.rules.current();
    if let Some(shown) = status.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in shown {
            // By id: a reload between the two reads leaves a rule unmatched, not mismatched.
            rule["shadow"] = false.into();
            let Some(entry) = rule["id"].as_str().and_then(|id| active.ruleset.rules.iter().find(|r| *r.id == *id))
            else {
                continue;
            };
            rule["shadow"] = entry.shadow.into();
            if entry.shadow {
                rule["shadows"] = json!(entry.shadows.as_deref());
                if let Some(target) = entry.shadows.as_deref() {
                    rule["agreement"] = json!(app.metrics.shadow.agreement(&entry.id, target));
                }
            }
        }
    }
    status
}

/// Reloads even when nothing changed on disk (a module cache cleared, a
/// golden case's session file edited elsewhere). 200 applied, 422 refused.
pub async fn reload(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let outcome =
        reload_in_background(app.rules.clone(), true).await.map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(match outcome {
        ReloadOutcome::Applied { generation } => {
            (StatusCode::OK, Json(json!({"result": "applied", "generation": generation})))
        }
        ReloadOutcome::Unchanged => (StatusCode::OK, Json(json!({"result": "unchanged"}))),
        ReloadOutcome::Refused { reason } => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"result": "refused", "reason": reason})))
        }
    }
    .into_response())
}

pub async fn release(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    match app.rules.release(&id) {
        Some(released) => {
            if released {
                tracing::info!(rule = %id, "quarantine released by an operator");
            }
            Ok(Json(json!({"rule": id, "released": released})).into_response())
        }
        None => Err(ApiError::not_found(format!("no rule `{id}` in the active ruleset"))),
    }
}
