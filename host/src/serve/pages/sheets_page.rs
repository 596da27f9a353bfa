//! The sheets: a table with the API's filters (`GET /v1/sheets`'s, so a
//! filtered page's URL can be shared and read by a script alike), newest
//! or oldest first, paged by cursor, with a count.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{given, url_escape, Visitor};
use crate::qa::sheet_store::PageCursor;
use crate::qa::ItemStatus;
use crate::serve::app_state::AppState;
use crate::serve::sheet_routes::{with_store, ListQuery, SheetOrder};

/// Rows per page.
const PAGE: usize = 50;
/// Matching sheets counted exactly up to this many; past it the page says
/// "more than". Each match counted costs a check that it is its session's
/// latest evaluation: at 10,000 a team's week took the page's first byte to
/// 200 ms p95 on the million-sheet store (`cargo bench --bench sheet_store`).
const COUNT_CAP: u64 = 1_000;

/// The filter form as the browser sends it: every field text, empty when
/// not set.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SheetsForm {
    since: String,
    until: String,
    queue: String,
    team: String,
    agent: String,
    rule: String,
    outcome: String,
    min_score: String,
    max_score: String,
    reviewed: String,
    disputed: String,
    mine: String,
    order: String,
    cursor: String,
    lang: String,
}

impl SheetsForm {
    fn query(&self, me: Option<&str>) -> Result<ListQuery, String> {
        let date = |name: &str, text: &str| {
            given(text)
                .map(|t| {
                    chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|_| format!("{name}: not a date: {t}"))
                })
                .transpose()
        };
        let number = |name: &str, text: &str| {
            given(text).map(|t| t.parse::<f64>().map_err(|_| format!("{name}: not a number: {t}"))).transpose()
        };
        let outcome = given(&self.outcome)
            .map(|o| serde_json::from_value::<ItemStatus>(json!(o)).map_err(|_| format!("outcome: no outcome `{o}`")))
            .transpose()?;
        Ok(ListQuery {
            since: date("since", &self.since)?,
            until: date("until", &self.until)?,
            tz: None,
            queue: given(&self.queue),
            agent: given(&self.agent),
            team: given(&self.team),
            rule: given(&self.rule),
            outcome,
            min_score: number("min_score", &self.min_score)?,
            max_score: number("max_score", &self.max_score)?,
            reviewed: given(&self.reviewed).map(|r| r == "true"),
            assigned_to: if self.mine == "true" { me.map(str::to_owned) } else { None },
            disputed: Some(self.disputed == "true"),
            order: Some(if self.order == "oldest" { SheetOrder::Oldest } else { SheetOrder::Newest }),
            limit: Some(PAGE),
            cursor: given(&self.cursor),
        })
    }

    /// This filter's URL, on the page after `cursor`.
    fn url(&self, cursor: Option<&str>) -> String {
        let fields = [
            ("since", &self.since),
            ("until", &self.until),
            ("queue", &self.queue),
            ("team", &self.team),
            ("agent", &self.agent),
            ("rule", &self.rule),
            ("outcome", &self.outcome),
            ("min_score", &self.min_score),
            ("max_score", &self.max_score),
            ("reviewed", &self.reviewed),
            ("disputed", &self.disputed),
            ("mine", &self.mine),
            ("order", &self.order),
        ];
        let mut query: Vec<String> =
            fields.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", url_escape(v))).collect();
        if let Some(cursor) = cursor {
            query.push(format!("cursor={}", url_escape(cursor)));
        }
        format!("/sheets?{}", query.join("&"))
    }
}

pub async fn show(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(form): Query<SheetsForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    let caller = match visitor.signed_in(&uri) {
        Ok(caller) => caller.clone(),
        Err(to_login) => return to_login,
    };
    let query = match form.query(caller.user.as_deref()) {
        Ok(query) => query,
        Err(why) => return visitor.error(StatusCode::BAD_REQUEST, &why, "/sheets"),
    };
    let filter = match query.filter(&caller) {
        Ok(filter) => filter,
        Err(refusal) => return visitor.error(refusal.status, &refusal.message, "/sheets"),
    };
    let found = if filter.limit == 0 {
        Ok((Vec::new(), (0, false)))
    } else {
        with_store(&app, move |store| Ok((store.list(&filter)?, store.count_matching(&filter, COUNT_CAP)?))).await
    };
    let (rows, (count, capped)) = match found {
        Ok(found) => found,
        Err(refusal) => return visitor.error(refusal.status, &refusal.message, "/sheets"),
    };
    let next = (rows.len() == PAGE).then(|| rows.last().map(|r| PageCursor::of(r).encode())).flatten();
    let rules: Vec<String> = app.rules.current().ruleset.rules.iter().map(|r| r.id.to_string()).collect();
    visitor.render(
        StatusCode::OK,
        "sheets.html",
        "sheets",
        json!({
            "q": form,
            "rows": rows,
            "count": count,
            "count_capped": capped,
            "rules": rules,
            "next_page": next.as_deref().map(|c| form.url(Some(c))),
            "first_page": given(&form.cursor).map(|_| form.url(None)),
        }),
    )
}
