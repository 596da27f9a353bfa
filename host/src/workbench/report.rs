//! The HTML report: one self-contained file (stylesheet, chart library and
//! data inlined; nothing fetched when it is opened) with the summary, the
//! dashboard's charts for the batch, the items that fail most and each
//! failing sheet with its evidence.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::locale::Locale;
use super::templates::Templates;
use super::{assets, dashboard, evidence};
use crate::qa::sheet_figures::SheetFigures;
use crate::qa::{ItemStatus, QaSheet};
use crate::session::Session;

/// Failing sheets written out in full; past it the report counts the rest.
pub const MAX_FAILING_SHOWN: usize = 500;

#[derive(Clone, Debug, Serialize)]
pub struct FailingFinding {
    pub segment_id: Option<String>,
    pub message: String,
    /// The words said, when the finding quotes them and its segment holds them.
    pub quote: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailingItem {
    pub rule_id: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub findings: Vec<FailingFinding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailingSheet {
    pub session_id: String,
    pub score: Option<f64>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub items: Vec<FailingItem>,
}

impl FailingSheet {
    /// The sheet's failed items, with their evidence; `None` when none failed.
    pub fn of(sheet: &QaSheet, session: Option<&Session>) -> Option<FailingSheet> {
        let items: Vec<FailingItem> = sheet
            .items
            .iter()
            .filter(|i| !i.shadow && i.outcome == ItemStatus::Fail)
            .map(|item| FailingItem {
                rule_id: item.rule_id.clone(),
                outcome: item.outcome.as_str().to_owned(),
                reason: item.reason.clone(),
                findings: item
                    .findings
                    .iter()
                    .map(|f| {
                        let text = session
                            .and_then(|s| s.segments.as_ref())
                            .and_then(|segs| segs.iter().find(|s| Some(&s.id) == f.segment_id.as_ref()))
                            .map(|s| s.text.as_str());
                        FailingFinding {
                            segment_id: f.segment_id.clone(),
                            message: f.message.clone(),
                            quote: text.and_then(|text| {
                                evidence::quotes(&f.message).into_iter().find(|q| text.contains(q.as_str()))
                            }),
                        }
                    })
                    .collect(),
            })
            .collect();
        if items.is_empty() {
            return None;
        }
        let agent = session.and_then(|s| s.contact.agent.as_ref());
        Some(FailingSheet {
            session_id: sheet.session_id.clone(),
            score: sheet.score,
            agent: agent.map(|a| a.id.clone()),
            team: agent.filter(|a| !a.hierarchy.is_empty()).map(|a| a.hierarchy.join("/")),
            items,
        })
    }
}

/// What a report's table of groups shows (`--by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Team,
    Agent,
}

/// Renders the report. `failing` is every failing sheet; the first
/// [`MAX_FAILING_SHOWN`] are written out, the rest counted.
pub fn render(
    title: &str,
    figures: &SheetFigures,
    mut failing: Vec<FailingSheet>,
    by: Option<GroupBy>,
    locale: Locale,
) -> anyhow::Result<String> {
    let now = Utc::now();
    let more = failing.len().saturating_sub(MAX_FAILING_SHOWN);
    failing.truncate(MAX_FAILING_SHOWN);
    let worst: Vec<_> = figures.rule_totals().into_iter().filter(|r| r.failed > 0).take(20).collect();
    let groups = by.map(|by| match by {
        GroupBy::Team => json!({"label": locale.labels()["team"], "rows": SheetFigures::group_totals(&figures.teams)}),
        GroupBy::Agent => {
            json!({"label": locale.labels()["agent"], "rows": SheetFigures::group_totals(&figures.agents)})
        }
    });
    Templates::get().render(
        "report.html",
        json!({
            "lang": locale.code(),
            "t": locale.labels(),
            "title": title,
            "generated": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "summary": dashboard::summary(figures),
            "charts_set": dashboard::charts(figures, locale, now),
            "worst": worst,
            "groups": groups,
            "failing": failing,
            "failing_more": more,
            "css": format!("{}\n{}", assets::CHARTIST_CSS, assets::CSS).replace("</", "<\\/"),
            "chartist": assets::inline_script(assets::CHARTIST_JS),
            "workbench_js": assets::inline_script(assets::WORKBENCH_JS),
        }),
    )
}
