//! The sheet store over HTTP (`/v1/sheets`, `/v1/disputes`): list and
//! read sheets, review and dispute them, sample them for review, calibrate.
//!
//! Which sheets a caller sees is decided here, per sheet
//! ([`Caller::may_see`]): an agent their own, a reviewer their teams'. A
//! sheet the caller may not see answers 404 exactly like one that does not
//! exist, so an agent cannot learn which sessions other agents had.
//! The store blocks (PostgreSQL's client runs its own runtime): every call
//! goes through `spawn_blocking`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::api_error::ApiError;
use super::app_state::AppState;
use super::auth::Caller;
use super::json_body::{JsonBody, QueryParams};
use super::role::Role;
use crate::qa::sheet_store::review::{ManualItem, Refusal, ReviewOutcome};
use crate::qa::sheet_store::{day_range, PageCursor, SheetFilter, SheetStore};
use crate::qa::ItemStatus;

/// The most rows one page of `GET /v1/sheets` returns.
const MAX_PAGE: usize = 500;

/// Runs `work` on the store in a blocking thread; a refusal becomes its
/// status and code, any other failure a 503 (the store is unreachable).
pub(super) async fn with_store<R: Send + 'static>(
    app: &Arc<AppState>,
    work: impl FnOnce(&SheetStore) -> anyhow::Result<R> + Send + 'static,
) -> Result<R, ApiError> {
    let Some(store) = app.sheet_store.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no-sheet-store",
            "this server keeps no sheets: start it with --sheets sqlite:PATH or --sheets postgres://…",
        ));
    };
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| ApiError::internal(format!("the store task failed: {e}")))?
        .map_err(refused)
}

fn refused(err: anyhow::Error) -> ApiError {
    match err.downcast::<Refusal>() {
        Ok(Refusal::NotFound(m)) => ApiError::not_found(m),
        Ok(Refusal::Conflict(m)) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        Ok(Refusal::Forbidden(m)) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
        Ok(Refusal::Invalid(m)) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
        Err(err) => {
            tracing::error!("sheet store: {err:#}");
            ApiError::unavailable(format!("the sheet store failed: {err:#}"))
        }
    }
}

/// The 404 a sheet the caller may not see gets: the same as no sheet.
fn no_sheet(session_id: &str) -> ApiError {
    ApiError::not_found(format!("no sheet for session {session_id}"))
}

/// Checks the caller may see the session's sheet (404 otherwise), before
/// anything about it is read or changed.
async fn visible(app: &Arc<AppState>, caller: &Caller, session_id: &str) -> Result<(), ApiError> {
    let id = session_id.to_owned();
    match with_store(app, move |store| store.owner(&id)).await? {
        Some((agent, team)) if caller.may_see(agent.as_deref(), team.as_deref()) => Ok(()),
        _ => Err(no_sheet(session_id)),
    }
}

/// `GET /v1/sheets`'s query: the filters of `callqa sheets list`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// First day (YYYY-MM-DD, in `tz`).
    pub since: Option<NaiveDate>,
    /// Last day, included.
    pub until: Option<NaiveDate>,
    pub tz: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub rule: Option<String>,
    pub outcome: Option<ItemStatus>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    pub reviewed: Option<bool>,
    pub assigned_to: Option<String>,
    /// Only sheets with an open dispute.
    pub disputed: Option<bool>,
    /// `oldest` for the contacts that began first, first; newest first otherwise.
    pub order: Option<SheetOrder>,
    /// At most this many rows (default 50, at most 500).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SheetOrder {
    Newest,
    Oldest,
}

impl ListQuery {
    pub fn filter(&self, caller: &Caller) -> Result<SheetFilter, ApiError> {
        let (since, until) = day_range(self.since, self.until, self.tz.as_deref().unwrap_or("UTC"))
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        let after = self
            .cursor
            .as_deref()
            .map(PageCursor::decode)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("cursor: {e:#}")))?;
        let mut filter = SheetFilter {
            since,
            until,
            queue: self.queue.clone(),
            agent: self.agent.clone(),
            team: self.team.clone(),
            rule: self.rule.clone(),
            outcome: self.outcome,
            min_score: self.min_score,
            max_score: self.max_score,
            reviewed: self.reviewed,
            assigned_to: self.assigned_to.clone(),
            visible_teams: None,
            disputed: self.disputed.unwrap_or(false),
            oldest_first: self.order == Some(SheetOrder::Oldest),
            all_evaluations: false,
            after,
            limit: self.limit.unwrap_or(50).clamp(1, MAX_PAGE),
        };
        // What the caller may see narrows what they asked for.
        match caller.role {
            Role::Agent => match (&caller.agent_id, &filter.agent) {
                (Some(own), None) => filter.agent = Some(own.clone()),
                (Some(own), Some(asked)) if asked == own => {}
                // Another agent's sheets, or an agent with no agent id: none.
                _ => filter.limit = 0,
            },
            Role::Reviewer if !caller.teams.is_empty() => filter.visible_teams = Some(caller.teams.clone()),
            _ => {}
        }
        Ok(filter)
    }
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter(&caller)?;
    if filter.limit == 0 {
        return Ok(Json(json!({"sheets": [], "next_cursor": null})).into_response());
    }
    let limit = filter.limit;
    let rows = with_store(&app, move |store| store.list(&filter)).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| PageCursor::of(r).encode())).flatten();
    Ok(Json(json!({"sheets": rows, "next_cursor": next})).into_response())
}

pub async fn show(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = session_id.clone();
    let view = with_store(&app, move |store| store.sheet_view(&id)).await?;
    match view {
        Some(view) if caller.may_see(view.agent_id.as_deref(), view.team.as_deref()) => Ok(Json(view).into_response()),
        _ => Err(no_sheet(&session_id)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub outcome: ReviewOutcome,
    #[serde(default)]
    pub comment: Option<String>,
}

pub async fn review(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((session_id, rule_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Response, ApiError> {
    visible(&app, &caller, &session_id).await?;
    let actor = caller.actor();
    with_store(&app, move |store| {
        store.review_item(&session_id, &rule_id, &actor, body.outcome, body.comment.as_deref(), Utc::now())?;
        store.sheet_view(&session_id)
    })
    .await
    .map(|view| Json(view).into_response())
}

pub async fn add_item(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
    JsonBody(body): JsonBody<ManualItem>,
) -> Result<Response, ApiError> {
    visible(&app, &caller, &session_id).await?;
    let actor = caller.actor();
    let (id, view) = with_store(&app, move |store| {
        let id = store.add_manual_item(&session_id, &actor, &body, Utc::now())?;
        Ok((id, store.sheet_view(&session_id)?))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"rule_id": id, "sheet": view}))).into_response())
}

/// Only the sheet's own agent acknowledges or disputes it (an admin may act
/// for them); to anyone else who may not see it, it does not exist.
async fn own_sheet(app: &Arc<AppState>, caller: &Caller, session_id: &str) -> Result<(), ApiError> {
    visible(app, caller, session_id).await?;
    if caller.role == Role::Agent || caller.role == Role::Admin {
        return Ok(());
    }
    Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only the sheet's agent acknowledges or disputes it"))
}

pub async fn acknowledge(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    own_sheet(&app, &caller, &session_id).await?;
    let actor = caller.actor();
    with_store(&app, move |store| store.acknowledge(&session_id, &actor, Utc::now())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeBody {
    pub comment: String,
}

pub async fn dispute(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((session_id, rule_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<DisputeBody>,
) -> Result<Response, ApiError> {
    own_sheet(&app, &caller, &session_id).await?;
    let actor = caller.actor();
    let window = app.config.dispute_window;
    let id =
        with_store(&app, move |store| store.dispute(&session_id, &rule_id, &actor, &body.comment, window, Utc::now()))
            .await?;
    Ok((StatusCode::CREATED, Json(json!({"dispute": id}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputesQuery {
    /// `open`, `accepted` or `rejected`; all when absent.
    pub state: Option<String>,
}

pub async fn disputes(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<DisputesQuery>,
) -> Result<Response, ApiError> {
    let disputes = with_store(&app, move |store| {
        let all = store.disputes(query.state.as_deref())?;
        // The agent and team of each, to keep those the caller may see.
        let mut visible = Vec::with_capacity(all.len());
        for d in all {
            if let Some((agent, team)) = store.owner(&d.session_id)? {
                if caller.may_see(agent.as_deref(), team.as_deref()) {
                    visible.push(d);
                }
            }
        }
        Ok(visible)
    })
    .await?;
    Ok(Json(json!({ "disputes": disputes })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    pub accept: bool,
    pub comment: String,
}

pub async fn resolve(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(dispute_id): Path<i64>,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Response, ApiError> {
    let session = with_store(&app, move |store| store.dispute_session(dispute_id)).await?;
    match session {
        Some(session) => visible(&app, &caller, &session).await?,
        None => return Err(ApiError::not_found(format!("no dispute {dispute_id}"))),
    }
    let actor = caller.actor();
    let others_exist = app.users.others_may_resolve(&actor);
    let dispute = with_store(&app, move |store| {
        store.resolve_dispute(dispute_id, &actor, body.accept, &body.comment, others_exist, Utc::now())
    })
    .await?;
    Ok(Json(dispute).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The share of each agent's unassigned sheets, 0 < share ≤ 1.
    pub sample: f64,
    pub seed: u64,
    pub reviewers: Vec<String>,
    #[serde(default)]
    pub filter: ListQuery,
}

pub async fn assign(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Response, ApiError> {
    let filter = SheetFilter { limit: usize::MAX, ..body.filter.filter(&caller)? };
    let actor = caller.actor();
    let report = with_store(&app, move |store| {
        store.assign(&filter, body.sample, body.seed, &body.reviewers, &actor, Utc::now())
    })
    .await?;
    Ok(Json(json!({"seed": body.seed, "candidates": report.candidates, "assigned": report.assigned})).into_response())
}

pub async fn calibrate(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((session_id, rule_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<Response, ApiError> {
    visible(&app, &caller, &session_id).await?;
    let actor = caller.actor();
    with_store(&app, move |store| {
        store.calibrate(&session_id, &rule_id, &actor, body.outcome, body.comment.as_deref(), Utc::now())?;
        store.calibration(&session_id)
    })
    .await
    .map(|report| Json(report).into_response())
}

pub async fn calibration(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Result<Response, ApiError> {
    visible(&app, &caller, &session_id).await?;
    with_store(&app, move |store| store.calibration(&session_id)).await.map(|r| Json(r).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// A ruleset file beside the live one (in the rules directory).
    pub ruleset: String,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub tz: Option<String>,
    /// Report only (the default); `false` records the new evaluations.
    #[serde(default = "yes")]
    pub dry_run: bool,
}

fn yes() -> bool {
    true
}

/// What a candidate ruleset would change over the stored sessions. The
/// file must sit in the rules directory: the API never reads elsewhere.
pub async fn rerun(
    State(app): State<Arc<AppState>>,
    JsonBody(body): JsonBody<RerunBody>,
) -> Result<Response, ApiError> {
    let name = std::path::Path::new(&body.ruleset);
    let plain = name.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain || body.ruleset.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "`ruleset` names a file in the rules directory (no `..`, no absolute path)",
        ));
    }
    let dir = app.config.ruleset.parent().unwrap_or(std::path::Path::new("."));
    let path = dir.join(name);
    let (since, until) = day_range(body.since, body.until, body.tz.as_deref().unwrap_or("UTC"))
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let engine = app.rules.engine().clone();
    let dry_run = body.dry_run;
    let report = with_store(&app, move |store| {
        let ruleset = crate::rules::Ruleset::load(&engine, &path)
            .map_err(|e| Refusal::Invalid(format!("the ruleset {} is refused: {e:#}", path.display())))?;
        let inspector = crate::qa::Inspector::new(engine, Arc::new(ruleset));
        let filter = SheetFilter { since, until, limit: usize::MAX, ..SheetFilter::default() };
        crate::qa::rerun::rerun(store, &inspector, &filter, dry_run)
    })
    .await?;
    Ok(Json(report).into_response())
}
