//! `/v1/users`: the people who use the service, managed by an admin over
//! HTTP as `callqa users` does on the host (the same file, the same checks).
//! Password hashes never leave the server.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_error::ApiError;
use super::app_state::AppState;
use super::json_body::JsonBody;
use super::role::Role;
use super::user_store::{self, NewUser, UserRecord};

fn public(user: &UserRecord) -> Value {
    json!({
        "name": user.name,
        "role": user.role,
        "agent_id": user.agent_id,
        "teams": user.teams,
        "disabled": user.disabled,
        "created": user.created,
    })
}

/// Runs a users-file change off the async workers (argon2 and file I/O).
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<R> + Send + 'static,
    status: StatusCode,
    code: &'static str,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the users task failed: {e}")))?
        .map_err(|e| ApiError::new(status, code, format!("{e:#}")))
}

pub async fn list(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let path = app.users.path().to_path_buf();
    let users = blocking(move || user_store::load(&path), StatusCode::SERVICE_UNAVAILABLE, "unavailable").await?;
    Ok(Json(json!({"users": users.iter().map(public).collect::<Vec<_>>()})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub name: String,
    pub role: Role,
    pub password: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
}

pub async fn add(
    State(app): State<Arc<AppState>>,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<Response, ApiError> {
    let path = app.users.path().to_path_buf();
    let new = NewUser { name: body.name, role: body.role, agent_id: body.agent_id, teams: body.teams };
    // A name taken, a weak password, a machine role: the checks `callqa users add` makes.
    let user =
        blocking(move || user_store::add(&path, new, &body.password), StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            .await?;
    Ok((StatusCode::CREATED, Json(public(&user))).into_response())
}

pub async fn disable(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let path = app.users.path().to_path_buf();
    let user =
        blocking(move || user_store::set_disabled(&path, &name, true), StatusCode::NOT_FOUND, "not-found").await?;
    Ok(Json(public(&user)).into_response())
}
