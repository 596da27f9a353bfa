//! The figures a dashboard or a report charts, over a set of sheets: per
//! day, per rule, per team and agent, reviewer agreement, open disputes.
//! Counted by the sheet store in SQL (`sheet_store/dashboard.rs`) or here
//! from sheets in memory (a `check` run's report); the charts are drawn
//! from this one shape either way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ItemStatus, QaSheet};
use crate::session::Session;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DayFigures {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub sheets: u64,
    pub mean_score: Option<f64>,
    /// Sheets with at least one failed (scored) item.
    pub failing: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RuleDayFigures {
    pub day: String,
    pub rule_id: String,
    pub items: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GroupDayFigures {
    pub day: String,
    pub name: String,
    pub sheets: u64,
    pub mean_score: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReviewerFigures {
    pub reviewer: String,
    pub reviews: u64,
    /// Reviews that kept the machine's outcome.
    pub agreed: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SheetFigures {
    pub days: Vec<DayFigures>,
    pub rules: Vec<RuleDayFigures>,
    pub teams: Vec<GroupDayFigures>,
    pub agents: Vec<GroupDayFigures>,
    pub reviewers: Vec<ReviewerFigures>,
    /// When each open dispute was opened (RFC 3339).
    pub open_disputes: Vec<String>,
}

/// A team's or agent's totals over the days.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupTotal {
    pub name: String,
    pub sheets: u64,
    pub mean_score: Option<f64>,
}

/// The totals over a rule's days.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuleTotal {
    pub rule_id: String,
    pub items: u64,
    pub failed: u64,
    pub rate: f64,
}

impl SheetFigures {
    /// From sheets in memory, each with the session it judged (for its day,
    /// team and agent). Shadow items are left out, as the store leaves them.
    pub fn from_sheets<'a>(sheets: impl IntoIterator<Item = (&'a QaSheet, &'a Session)>) -> SheetFigures {
        #[derive(Default)]
        struct Acc {
            sheets: u64,
            scored: u64,
            score_sum: f64,
            failing: u64,
        }
        let mut days: BTreeMap<String, Acc> = BTreeMap::new();
        let mut rules: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        let mut teams: BTreeMap<(String, String), Acc> = BTreeMap::new();
        let mut agents: BTreeMap<(String, String), Acc> = BTreeMap::new();
        for (sheet, session) in sheets {
            let c = &session.contact;
            let day = c.initiated_at.or(c.connected_to_agent_at).map_or_else(|| "—".to_owned(), day_of);
            let failing = sheet.items.iter().any(|i| !i.shadow && i.outcome == ItemStatus::Fail);
            let add = |acc: &mut Acc| {
                acc.sheets += 1;
                if let Some(score) = sheet.score {
                    acc.scored += 1;
                    acc.score_sum += score;
                }
                acc.failing += u64::from(failing);
            };
            add(days.entry(day.clone()).or_default());
            if let Some(agent) = &c.agent {
                add(agents.entry((day.clone(), agent.id.clone())).or_default());
                if !agent.hierarchy.is_empty() {
                    add(teams.entry((day.clone(), agent.hierarchy.join("/"))).or_default());
                }
            }
            for item in sheet.items.iter().filter(|i| !i.shadow) {
                let entry = rules.entry((day.clone(), item.rule_id.clone())).or_default();
                entry.0 += 1;
                entry.1 += u64::from(item.outcome == ItemStatus::Fail);
            }
        }
        let mean = |acc: &Acc| (acc.scored > 0).then(|| acc.score_sum / acc.scored as f64);
        let groups = |map: BTreeMap<(String, String), Acc>| {
            map.into_iter()
                .map(|((day, name), acc)| GroupDayFigures { mean_score: mean(&acc), day, name, sheets: acc.sheets })
                .collect()
        };
        SheetFigures {
            days: days
                .iter()
                .map(|(day, acc)| DayFigures {
                    day: day.clone(),
                    sheets: acc.sheets,
                    mean_score: mean(acc),
                    failing: acc.failing,
                })
                .collect(),
            rules: rules
                .into_iter()
                .map(|((day, rule_id), (items, failed))| RuleDayFigures { day, rule_id, items, failed })
                .collect(),
            teams: groups(teams),
            agents: groups(agents),
            reviewers: Vec::new(),
            open_disputes: Vec::new(),
        }
    }

    pub fn sheets(&self) -> u64 {
        self.days.iter().map(|d| d.sheets).sum()
    }

    pub fn failing(&self) -> u64 {
        self.days.iter().map(|d| d.failing).sum()
    }

    /// The mean score over every day, weighted by each day's sheets.
    pub fn mean_score(&self) -> Option<f64> {
        let (sum, n) = self
            .days
            .iter()
            .filter_map(|d| d.mean_score.map(|m| (m * d.sheets as f64, d.sheets)))
            .fold((0.0, 0u64), |(s, n), (m, k)| (s + m, n + k));
        (n > 0).then(|| sum / n as f64)
    }

    /// Each rule's totals, the most failed items first.
    pub fn rule_totals(&self) -> Vec<RuleTotal> {
        let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for r in &self.rules {
            let t = totals.entry(&r.rule_id).or_default();
            t.0 += r.items;
            t.1 += r.failed;
        }
        let mut out: Vec<RuleTotal> = totals
            .into_iter()
            .map(|(rule_id, (items, failed))| RuleTotal {
                rule_id: rule_id.to_owned(),
                items,
                failed,
                rate: if items == 0 { 0.0 } else { failed as f64 / items as f64 },
            })
            .collect();
        out.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.rule_id.cmp(&b.rule_id)));
        out
    }

    /// Each group's totals (of `teams` or `agents`), the most sheets first.
    pub fn group_totals(groups: &[GroupDayFigures]) -> Vec<GroupTotal> {
        let mut totals: BTreeMap<&str, (u64, u64, f64)> = BTreeMap::new();
        for g in groups {
            let t = totals.entry(&g.name).or_default();
            t.0 += g.sheets;
            if let Some(mean) = g.mean_score {
                t.1 += g.sheets;
                t.2 += mean * g.sheets as f64;
            }
        }
        let mut out: Vec<GroupTotal> = totals
            .into_iter()
            .map(|(name, (sheets, scored, sum))| GroupTotal {
                name: name.to_owned(),
                sheets,
                mean_score: (scored > 0).then(|| sum / scored as f64),
            })
            .collect();
        out.sort_by(|a, b| b.sheets.cmp(&a.sheets).then(a.name.cmp(&b.name)));
        out
    }

    /// Open disputes in age buckets (under a day, 1–3, 3–7, over 7 days) at `now`.
    pub fn dispute_ages(&self, now: DateTime<Utc>) -> [u64; 4] {
        let mut buckets = [0u64; 4];
        for opened in &self.open_disputes {
            let Ok(at) = DateTime::parse_from_rfc3339(opened) else { continue };
            let hours = (now - at.with_timezone(&Utc)).num_hours();
            let i = match hours {
                h if h < 24 => 0,
                h if h < 72 => 1,
                h if h < 168 => 2,
                _ => 3,
            };
            buckets[i] += 1;
        }
        buckets
    }
}

fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}
