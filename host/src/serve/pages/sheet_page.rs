//! One sheet: the transcript with the evidence marked, the items by
//! section with their findings and script traces, the events, the reviews,
//! disputes and audit trail; and the forms to review, acknowledge, dispute
//! and resolve, each posted through the JSON API's own handler.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Form};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{url_escape, Visitor};
use crate::qa::sheet_store::review::{ManualItem, ReviewOutcome, SheetView};
use crate::serve::app_state::AppState;
use crate::serve::json_body::JsonBody;
use crate::serve::role::{Action, Role};
use crate::serve::sheet_routes::{self, with_store, DisputeBody, ResolveBody, ReviewBody};
use crate::session::Session;
use crate::workbench::evidence;

#[derive(Serialize)]
struct FindingView {
    anchor: String,
    message: String,
    segment_id: Option<String>,
    at: Option<String>,
}

#[derive(Serialize)]
struct ItemView {
    rule_id: String,
    rule_version: String,
    module_sha256: Option<String>,
    outcome: String,
    machine_outcome: String,
    reviewed_outcome: Option<String>,
    question: Option<String>,
    weight: f64,
    score: Option<f32>,
    critical: bool,
    shadow: bool,
    reason: Option<String>,
    error: Option<String>,
    findings: Vec<FindingView>,
    trace: Option<String>,
    disputes: Vec<crate::qa::sheet_store::review::Dispute>,
}

#[derive(Serialize)]
struct SectionView {
    name: Option<String>,
    items: Vec<ItemView>,
}

/// The items grouped by section in the form's order, each with what
/// people did to it.
fn sections(view: &SheetView) -> Vec<SectionView> {
    let mut order: Vec<Option<String>> = view.machine.sections.iter().map(|s| Some(s.id.clone())).collect();
    let mut grouped: BTreeMap<Option<String>, Vec<ItemView>> = BTreeMap::new();
    for state in &view.items {
        let index = view.sheet.items.iter().position(|i| i.rule_id == state.rule_id);
        let item = index.map(|i| &view.sheet.items[i]);
        let section = item.and_then(|i| i.section.clone());
        if !order.contains(&section) {
            order.push(section.clone());
        }
        grouped.entry(section).or_default().push(ItemView {
            rule_id: state.rule_id.clone(),
            rule_version: item.map_or_else(String::new, |i| i.rule_version.clone()),
            module_sha256: item.map(|i| i.module_sha256.clone()).filter(|s| !s.is_empty()),
            outcome: state.outcome.clone(),
            machine_outcome: state.machine_outcome.clone(),
            reviewed_outcome: state.reviewed_outcome.clone(),
            question: state.question.clone(),
            weight: item.map_or(0.0, |i| i.weight),
            score: item.and_then(|i| i.score),
            critical: item.is_some_and(|i| i.critical),
            shadow: state.shadow,
            reason: item.and_then(|i| i.reason.clone()),
            error: item.and_then(|i| i.error.as_ref()).map(|e| format!("{}: {}", e.code, e.message)),
            findings: item
                .map(|it| {
                    it.findings
                        .iter()
                        .enumerate()
                        .map(|(j, f)| FindingView {
                            anchor: evidence::anchor(index.unwrap_or(0), j),
                            message: f.message.clone(),
                            segment_id: f.segment_id.clone(),
                            at: f.begin_ms.map(evidence::clock),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            trace: item.and_then(|i| i.trace.as_ref()).and_then(|t| serde_json::to_string_pretty(t).ok()),
            disputes: view.disputes.iter().filter(|d| d.rule_id == state.rule_id).cloned().collect(),
        });
    }
    let title = |id: &Option<String>| {
        let section = view.machine.sections.iter().find(|s| Some(&s.id) == id.as_ref());
        section.and_then(|s| s.title.clone()).or_else(|| id.clone())
    };
    order
        .into_iter()
        .filter_map(|id| grouped.remove(&id).map(|items| SectionView { name: title(&id), items }))
        .collect()
}

pub async fn show(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(session_id): Path<String>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.signed_in(&uri) {
        Ok(caller) => caller.clone(),
        Err(to_login) => return to_login,
    };
    let id = session_id.clone();
    let found = with_store(&app, move |store| {
        let view = store.sheet_view(&id)?;
        let session = store.evaluation(&id)?.map(|e| e.session);
        Ok((view, session))
    })
    .await;
    let (view, session): (SheetView, Option<Session>) = match found {
        Ok((Some(view), session)) if caller.may_see(view.agent_id.as_deref(), view.team.as_deref()) => (view, session),
        Ok(_) => return visitor.error(StatusCode::NOT_FOUND, &format!("no sheet for session {session_id}"), "/sheets"),
        Err(refusal) => return visitor.error(refusal.status, &refusal.message, "/sheets"),
    };
    let turns = session.as_ref().map(|s| evidence::transcript(s, &view.sheet)).unwrap_or_default();
    let events: Vec<_> = session
        .as_ref()
        .map(|s| {
            s.events
                .iter()
                .map(|e| {
                    json!({
                        "kind": e.kind,
                        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "attributes": if e.attributes.is_empty() { String::new() } else { serde_json::to_string(&e.attributes).unwrap_or_default() },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let section_names: Vec<&str> = view.machine.sections.iter().map(|s| s.id.as_str()).collect();
    visitor.render(
        StatusCode::OK,
        "sheet.html",
        "sheets",
        json!({
            "sections": sections(&view),
            "section_names": section_names,
            "turns": turns,
            "events": events,
            "can_review": caller.role.permits(Action::ReviewSheets),
            "can_respond": matches!(caller.role, Role::Agent | Role::Admin),
            "view": view,
        }),
    )
}

fn back_to(session_id: &str) -> String {
    format!("/sheets/{}", url_escape(session_id))
}

#[derive(Deserialize)]
pub struct ReviewForm {
    csrf: String,
    outcome: ReviewOutcome,
    #[serde(default)]
    comment: String,
}

pub async fn review(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path((session_id, rule_id)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.may(&uri, &form.csrf, Action::ReviewSheets) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let back = format!("{}#item-{}", back_to(&session_id), rule_id);
    let body = ReviewBody { outcome: form.outcome, comment: Some(form.comment).filter(|c| !c.trim().is_empty()) };
    let outcome =
        sheet_routes::review(State(app.clone()), Extension(caller), Path((session_id, rule_id)), JsonBody(body)).await;
    visitor.finish(outcome, &back)
}

#[derive(Deserialize)]
pub struct ManualItemForm {
    csrf: String,
    question: String,
    outcome: ReviewOutcome,
    weight: Option<f64>,
    section: Option<String>,
    #[serde(default)]
    comment: String,
}

pub async fn add_item(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(session_id): Path<String>,
    Form(form): Form<ManualItemForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.may(&uri, &form.csrf, Action::ReviewSheets) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let back = back_to(&session_id);
    let item = ManualItem {
        question: form.question,
        outcome: form.outcome,
        weight: form.weight.unwrap_or(1.0),
        section: form.section.filter(|s| !s.is_empty()),
        comment: Some(form.comment).filter(|c| !c.trim().is_empty()),
    };
    let outcome = sheet_routes::add_item(State(app.clone()), Extension(caller), Path(session_id), JsonBody(item)).await;
    visitor.finish(outcome, &back)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn acknowledge(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(session_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.may(&uri, &form.csrf, Action::RespondToSheets) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let back = back_to(&session_id);
    let outcome = sheet_routes::acknowledge(State(app.clone()), Extension(caller), Path(session_id)).await;
    visitor.finish(outcome, &back)
}

#[derive(Deserialize)]
pub struct DisputeForm {
    csrf: String,
    comment: String,
}

pub async fn dispute(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path((session_id, rule_id)): Path<(String, String)>,
    Form(form): Form<DisputeForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.may(&uri, &form.csrf, Action::RespondToSheets) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let back = format!("{}#item-{}", back_to(&session_id), rule_id);
    let body = DisputeBody { comment: form.comment };
    let outcome =
        sheet_routes::dispute(State(app.clone()), Extension(caller), Path((session_id, rule_id)), JsonBody(body)).await;
    visitor.finish(outcome, &back)
}

#[derive(Deserialize)]
pub struct ResolveForm {
    csrf: String,
    session: String,
    accept: bool,
    comment: String,
}

pub async fn resolve(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.may(&uri, &form.csrf, Action::ReviewSheets) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let back = back_to(&form.session);
    let body = ResolveBody { accept: form.accept, comment: form.comment };
    let outcome = sheet_routes::resolve(State(app.clone()), Extension(caller), Path(id), JsonBody(body)).await;
    visitor.finish(outcome, &back)
}
