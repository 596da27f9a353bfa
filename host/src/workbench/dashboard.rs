//! The dashboard's charts from a [`SheetFigures`]: score and failure-rate
//! trends per day (overall, by rule, team and agent), the rules that fail
//! most, reviewer agreement with the machine, open disputes by age.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chart::{Chart, Series};
use super::locale::Locale;
use crate::qa::sheet_figures::{GroupDayFigures, SheetFigures};

/// Rules charted day by day: the ones that fail most.
const RULES_TRENDED: usize = 5;
/// Rules in the "fail most" bars.
const RULES_RANKED: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub sheets: u64,
    pub mean_score: Option<f64>,
    pub failing: u64,
    pub open_disputes: usize,
}

pub fn summary(figures: &SheetFigures) -> Summary {
    Summary {
        sheets: figures.sheets(),
        mean_score: figures.mean_score(),
        failing: figures.failing(),
        open_disputes: figures.open_disputes.len(),
    }
}

pub fn charts(figures: &SheetFigures, locale: Locale, now: DateTime<Utc>) -> Vec<Chart> {
    let t = locale.labels();
    let label = |key: &str| t.get(key).cloned().unwrap_or_else(|| key.to_owned());
    let days: Vec<String> = figures.days.iter().map(|d| d.day.clone()).collect();
    let percent = |failed: u64, of: u64| (of > 0).then(|| 100.0 * failed as f64 / of as f64);
    let mut charts = vec![
        Chart::line(
            "chart-score-trend",
            &label("chart_score_trend"),
            days.clone(),
            vec![Series { name: label("mean_score"), values: figures.days.iter().map(|d| d.mean_score).collect() }],
        ),
        Chart::line(
            "chart-failing-rate",
            &label("chart_failing_rate"),
            days.clone(),
            vec![Series {
                name: label("failing_sheets"),
                values: figures.days.iter().map(|d| percent(d.failing, d.sheets)).collect(),
            }],
        )
        .range(0.0, 100.0),
    ];
    let totals = figures.rule_totals();
    let ranked: Vec<_> = totals.iter().filter(|r| r.failed > 0).take(RULES_RANKED).collect();
    charts.push(
        Chart::bars(
            "chart-rules-failing",
            &label("chart_rules_failing"),
            ranked.iter().map(|r| r.rule_id.clone()).collect(),
            ranked.iter().map(|r| r.failed as f64).collect(),
        )
        .horizontal(),
    );
    let trended: Vec<&str> = ranked.iter().take(RULES_TRENDED).map(|r| r.rule_id.as_str()).collect();
    let mut by_rule: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for r in &figures.rules {
        by_rule.insert((r.rule_id.as_str(), r.day.as_str()), (r.items, r.failed));
    }
    charts.push(
        Chart::line(
            "chart-rule-trend",
            &label("chart_rule_trend"),
            if trended.is_empty() { Vec::new() } else { days.clone() },
            trended
                .iter()
                .map(|rule| Series {
                    name: (*rule).to_owned(),
                    values: days
                        .iter()
                        .map(|day| by_rule.get(&(*rule, day.as_str())).and_then(|(n, f)| percent(*f, *n)))
                        .collect(),
                })
                .collect(),
        )
        .range(0.0, 100.0),
    );
    charts.push(group_trend("chart-team-trend", &label("chart_team_trend"), &days, &figures.teams));
    charts.push(group_trend("chart-agent-trend", &label("chart_agent_trend"), &days, &figures.agents));
    charts.push(
        Chart::bars(
            "chart-agreement",
            &label("chart_agreement"),
            figures.reviewers.iter().map(|r| r.reviewer.clone()).collect(),
            figures.reviewers.iter().map(|r| percent(r.agreed, r.reviews).unwrap_or(0.0)).collect(),
        )
        .range(0.0, 100.0),
    );
    let ages = figures.dispute_ages(now);
    charts.push(Chart::bars(
        "chart-dispute-age",
        &label("chart_dispute_age"),
        if figures.open_disputes.is_empty() {
            Vec::new()
        } else {
            ["age_day", "age_3days", "age_week", "age_older"].iter().map(|k| label(k)).collect()
        },
        ages.iter().map(|n| *n as f64).collect(),
    ));
    charts
}

fn group_trend(id: &str, title: &str, days: &[String], groups: &[GroupDayFigures]) -> Chart {
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    names.dedup();
    let series = names
        .iter()
        .map(|name| Series {
            name: (*name).to_owned(),
            values: days
                .iter()
                .map(|day| groups.iter().find(|g| g.name == *name && g.day == *day).and_then(|g| g.mean_score))
                .collect(),
        })
        .collect();
    Chart::line(id, title, if names.is_empty() { Vec::new() } else { days.to_vec() }, series)
}
