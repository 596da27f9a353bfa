//! The dashboard: the charts of `workbench::dashboard` over the sheets the
//! caller may see, the last two weeks unless asked otherwise.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{given, Visitor};
use crate::qa::sheet_store::dashboard::GROUPS_CHARTED;
use crate::serve::app_state::AppState;
use crate::serve::sheet_routes::{with_store, ListQuery};
use crate::workbench::dashboard;

/// Days shown when the form names none.
const DEFAULT_DAYS: i64 = 14;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DashboardForm {
    since: String,
    until: String,
    team: String,
    queue: String,
    lang: String,
}

pub async fn show(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(mut form): Query<DashboardForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.signed_in(&uri) {
        Ok(caller) => caller.clone(),
        Err(to_login) => return to_login,
    };
    // Without dates: the two weeks up to the last stored contact (today at the latest).
    let today = Utc::now().date_naive();
    let latest = with_store(&app, |store| store.latest_start()).await.ok().flatten();
    let today =
        latest.and_then(|t| NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()).map_or(today, |d| d.min(today));
    let parse = |text: &str| given(text).map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|_| t)).transpose();
    let (until, since) = match (parse(&form.until), parse(&form.since)) {
        (Ok(until), Ok(since)) => {
            let until = until.unwrap_or(today);
            (until, since.unwrap_or(until - Duration::days(DEFAULT_DAYS - 1)))
        }
        (Err(bad), _) | (_, Err(bad)) => {
            return visitor.error(StatusCode::BAD_REQUEST, &format!("not a date (YYYY-MM-DD): {bad}"), "/dashboard")
        }
    };
    form.since = since.to_string();
    form.until = until.to_string();
    let query = ListQuery {
        since: Some(since),
        until: Some(until),
        team: given(&form.team),
        queue: given(&form.queue),
        limit: Some(1),
        ..ListQuery::default()
    };
    let filter = match query.filter(&caller) {
        Ok(filter) => filter,
        Err(refusal) => return visitor.error(refusal.status, &refusal.message, "/sheets"),
    };
    // An agent's filter with no agent id matches nothing (limit 0).
    let figures = if filter.limit == 0 {
        Ok(Default::default())
    } else {
        with_store(&app, move |store| store.figures(&filter, GROUPS_CHARTED)).await
    };
    let figures = match figures {
        Ok(figures) => figures,
        Err(refusal) => return visitor.error(refusal.status, &refusal.message, "/sheets"),
    };
    visitor.render(
        StatusCode::OK,
        "dashboard.html",
        "dashboard",
        json!({
            "q": form,
            "summary": dashboard::summary(&figures),
            "charts_set": dashboard::charts(&figures, visitor.locale, Utc::now()),
        }),
    )
}
