//! The dashboard's figures counted in the store, over the latest
//! evaluations a [`SheetFilter`] matches (the same rows the sheets page
//! lists, so a chart and its list agree).

use super::database::SqlValue;
use super::{matching_ids, SheetFilter, SheetStore};
use crate::qa::sheet_figures::{DayFigures, GroupDayFigures, ReviewerFigures, RuleDayFigures, SheetFigures};

/// Teams and agents a dashboard charts: the ones with the most sheets.
pub const GROUPS_CHARTED: usize = 6;

/// Whether an item failed, after review; shadow items are not scored.
const FAILED: &str = "COALESCE(i.reviewed_outcome, i.outcome) = 'fail'";

impl SheetStore {
    /// The figures over `filter`'s sheets, with the `groups` teams and
    /// agents that have the most sheets.
    pub fn figures(&self, filter: &SheetFilter, groups: usize) -> anyhow::Result<SheetFigures> {
        let dialect = self.db.dialect();
        let filter = SheetFilter { after: None, limit: usize::MAX, ..filter.clone() };
        let groups = groups.min(i64::MAX as usize);
        self.db.transaction(|tx| {
            let mut args: Vec<SqlValue> = Vec::new();
            let Some(ids) = matching_ids(tx, dialect, &filter, &mut args)? else { return Ok(SheetFigures::default()) };
            let day = "substr(e.started_at, 1, 10)";
            let days = tx
                .query(
                    &format!(
                        "SELECT {day}, COUNT(*), AVG(COALESCE(e.reviewed_score, e.score)), \
                         SUM(CASE WHEN EXISTS (SELECT 1 FROM items i WHERE i.evaluation_id = e.id AND i.shadow = 0 \
                         AND {FAILED}) THEN 1 ELSE 0 END) \
                         FROM evaluations e WHERE e.id IN ({ids}) GROUP BY {day} ORDER BY {day}"
                    ),
                    &args,
                )?
                .iter()
                .map(|r| {
                    Ok(DayFigures {
                        day: r.opt_text(0)?.unwrap_or_else(|| "—".into()),
                        sheets: r.int(1)? as u64,
                        mean_score: r.opt_real(2)?,
                        failing: r.opt_int(3)?.unwrap_or(0) as u64,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rules = tx
                .query(
                    &format!(
                        "SELECT {day}, i.rule_id, COUNT(*), SUM(CASE WHEN {FAILED} THEN 1 ELSE 0 END) \
                         FROM items i JOIN evaluations e ON e.id = i.evaluation_id \
                         WHERE e.id IN ({ids}) AND i.shadow = 0 GROUP BY {day}, i.rule_id ORDER BY {day}, i.rule_id"
                    ),
                    &args,
                )?
                .iter()
                .map(|r| {
                    Ok(RuleDayFigures {
                        day: r.opt_text(0)?.unwrap_or_else(|| "—".into()),
                        rule_id: r.text(1)?,
                        items: r.int(2)? as u64,
                        failed: r.opt_int(3)?.unwrap_or(0) as u64,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut grouped = |column: &str| -> anyhow::Result<Vec<GroupDayFigures>> {
                let top: Vec<String> = tx
                    .query(
                        &format!(
                            "SELECT e.{column}, COUNT(*) FROM evaluations e WHERE e.id IN ({ids}) AND e.{column} IS NOT NULL \
                             GROUP BY e.{column} ORDER BY COUNT(*) DESC, e.{column} LIMIT {groups}"
                        ),
                        &args,
                    )?
                    .iter()
                    .map(|r| r.text(0))
                    .collect::<anyhow::Result<_>>()?;
                let rows = tx.query(
                    &format!(
                        "SELECT {day}, e.{column}, COUNT(*), AVG(COALESCE(e.reviewed_score, e.score)) \
                         FROM evaluations e WHERE e.id IN ({ids}) AND e.{column} IS NOT NULL \
                         GROUP BY {day}, e.{column} ORDER BY {day}"
                    ),
                    &args,
                )?;
                rows.iter()
                    .filter(|r| r.text(1).is_ok_and(|name| top.contains(&name)))
                    .map(|r| {
                        Ok(GroupDayFigures {
                            day: r.opt_text(0)?.unwrap_or_else(|| "—".into()),
                            name: r.text(1)?,
                            sheets: r.int(2)? as u64,
                            mean_score: r.opt_real(3)?,
                        })
                    })
                    .collect()
            };
            let teams = grouped("team")?;
            let agents = grouped("agent_id")?;
            let reviewers = tx
                .query(
                    &format!(
                        "SELECT r.reviewer, COUNT(*), SUM(CASE WHEN r.outcome = i.outcome THEN 1 ELSE 0 END) \
                         FROM reviews r JOIN items i ON i.evaluation_id = r.evaluation_id AND i.rule_id = r.rule_id \
                         WHERE r.evaluation_id IN ({ids}) AND i.outcome <> 'manual' GROUP BY r.reviewer ORDER BY r.reviewer"
                    ),
                    &args,
                )?
                .iter()
                .map(|r| {
                    Ok(ReviewerFigures {
                        reviewer: r.text(0)?,
                        reviews: r.int(1)? as u64,
                        agreed: r.opt_int(2)?.unwrap_or(0) as u64,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let open_disputes = tx
                .query(
                    &format!(
                        "SELECT d.opened_at FROM disputes d WHERE d.state = 'open' AND d.evaluation_id IN ({ids}) \
                         ORDER BY d.opened_at"
                    ),
                    &args,
                )?
                .iter()
                .map(|r| r.text(0))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut figures = SheetFigures { days, rules, teams, agents, reviewers, open_disputes };
            // In Rust's order, not the database's collation: a day-less
            // contact's "—" sorts the same on every backend and in memory.
            figures.days.sort_by(|a, b| a.day.cmp(&b.day));
            figures.rules.sort_by(|a, b| (&a.day, &a.rule_id).cmp(&(&b.day, &b.rule_id)));
            for groups in [&mut figures.teams, &mut figures.agents] {
                groups.sort_by(|a, b| (&a.day, &a.name).cmp(&(&b.day, &b.name)));
            }
            Ok(figures)
        })
    }

    /// When the last stored contact began (RFC 3339), if any: where a
    /// dashboard opened without dates ends, so history imported by
    /// `check --sheets` shows without picking days.
    pub fn latest_start(&self) -> anyhow::Result<Option<String>> {
        self.db.transaction(|tx| {
            tx.query_one("SELECT MAX(started_at) FROM evaluations", &[])?.map_or(Ok(None), |r| r.opt_text(0))
        })
    }

    /// How many sheets `filter` matches, counted up to `cap` (a count over a
    /// million rows is a scan; past the cap a page says "more than").
    pub fn count_matching(&self, filter: &SheetFilter, cap: u64) -> anyhow::Result<(u64, bool)> {
        let dialect = self.db.dialect();
        let filter = SheetFilter { after: None, ..filter.clone() };
        self.db.transaction(|tx| {
            let mut args: Vec<SqlValue> = Vec::new();
            let Some(ids) = matching_ids(tx, dialect, &filter, &mut args)? else { return Ok((0, false)) };
            let n = tx
                .query_one(&format!("SELECT COUNT(*) FROM ({ids} LIMIT {}) counted", cap + 1), &args)?
                .map_or(Ok(0), |r| r.int(0))? as u64;
            Ok((n.min(cap), n > cap))
        })
    }
}
