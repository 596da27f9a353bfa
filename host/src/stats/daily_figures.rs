use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

use super::ContactVersion;

/// An extra dimension to break the daily figures down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Channel,
    Queue,
    Method,
}

impl FromStr for GroupBy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "channel" => Ok(GroupBy::Channel),
            "queue" => Ok(GroupBy::Queue),
            "method" | "initiation-method" => Ok(GroupBy::Method),
            other => Err(format!("cannot group by `{other}`: use channel, queue or method")),
        }
    }
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Queue => "queue",
            GroupBy::Method => "method",
        }
    }

    fn value(self, contact: &ContactVersion) -> String {
        let value = match self {
            GroupBy::Channel => contact.channel.as_deref(),
            GroupBy::Queue => contact.queue.as_deref(),
            GroupBy::Method => contact.initiation_method.as_deref(),
        };
        value.unwrap_or("-").to_string()
    }
}

/// The figures of one day (and group). Durations are in seconds; an average
/// over no contacts is `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyRow {
    pub date: String,
    #[serde(flatten)]
    pub group: BTreeMap<&'static str, String>,
    pub contacts: u64,
    pub inbound: u64,
    pub outbound: u64,
    pub transfer: u64,
    pub callback: u64,
    pub api: u64,
    pub other: u64,
    /// Queued but never connected to an agent.
    pub abandoned: u64,
    pub avg_queue_wait: Option<f64>,
    /// Nearest-rank 90th percentile of `Queue.Duration`.
    pub p90_queue_wait: Option<f64>,
    /// AgentInteractionDuration + CustomerHoldDuration + AfterContactWorkDuration,
    /// over contacts connected to an agent.
    pub avg_handle_time: Option<f64>,
    pub avg_hold: Option<f64>,
    pub avg_after_contact_work: Option<f64>,
}

#[derive(Default)]
struct Accumulator {
    contacts: u64,
    methods: [u64; 6],
    abandoned: u64,
    queue_waits: Vec<f64>,
    handled: u64,
    handle_total: f64,
    hold_total: f64,
    acw_total: f64,
}

/// Aggregates contact versions into per-day rows.
pub struct DailyFigures {
    tz: Tz,
    by: Vec<GroupBy>,
    days: BTreeMap<(NaiveDate, Vec<String>), Accumulator>,
    /// Contacts without a readable InitiationTimestamp (left out of the days).
    pub undated: u64,
}

impl DailyFigures {
    pub fn new(tz: Tz, by: Vec<GroupBy>) -> Self {
        DailyFigures { tz, by, days: BTreeMap::new(), undated: 0 }
    }

    pub fn add(&mut self, contact: &ContactVersion) {
        let Some(initiated) = contact.initiated else {
            self.undated += 1;
            return;
        };
        let date = initiated.with_timezone(&self.tz).date_naive();
        let group = self.by.iter().map(|g| g.value(contact)).collect();
        let acc = self.days.entry((date, group)).or_default();
        acc.contacts += 1;
        let method = match contact.initiation_method.as_deref() {
            Some("INBOUND") => 0,
            Some("OUTBOUND") => 1,
            Some("TRANSFER") | Some("QUEUE_TRANSFER") => 2,
            Some("CALLBACK") => 3,
            Some("API") => 4,
            _ => 5,
        };
        acc.methods[method] += 1;
        if contact.queued && !contact.connected {
            acc.abandoned += 1;
        }
        if let Some(wait) = contact.queue_seconds {
            acc.queue_waits.push(wait);
        }
        if contact.connected {
            acc.handled += 1;
            acc.handle_total += contact.interaction_seconds + contact.hold_seconds + contact.after_contact_work_seconds;
            acc.hold_total += contact.hold_seconds;
            acc.acw_total += contact.after_contact_work_seconds;
        }
    }

    pub fn group_names(&self) -> Vec<&'static str> {
        self.by.iter().map(|g| g.name()).collect()
    }

    pub fn rows(self) -> Vec<DailyRow> {
        let names: Vec<&'static str> = self.by.iter().map(|g| g.name()).collect();
        self.days
            .into_iter()
            .map(|((date, group), mut acc)| {
                let average = |total: f64, n: u64| (n > 0).then(|| round2(total / n as f64));
                acc.queue_waits.sort_by(f64::total_cmp);
                let waits = &acc.queue_waits;
                let p90 = (!waits.is_empty()).then(|| {
                    let rank = ((0.9 * waits.len() as f64).ceil() as usize).clamp(1, waits.len());
                    round2(waits[rank - 1])
                });
                DailyRow {
                    date: date.format("%Y-%m-%d").to_string(),
                    group: names.iter().copied().zip(group).collect(),
                    contacts: acc.contacts,
                    inbound: acc.methods[0],
                    outbound: acc.methods[1],
                    transfer: acc.methods[2],
                    callback: acc.methods[3],
                    api: acc.methods[4],
                    other: acc.methods[5],
                    abandoned: acc.abandoned,
                    avg_queue_wait: average(waits.iter().sum(), waits.len() as u64),
                    p90_queue_wait: p90,
                    avg_handle_time: average(acc.handle_total, acc.handled),
                    avg_hold: average(acc.hold_total, acc.handled),
                    avg_after_contact_work: average(acc.acw_total, acc.handled),
                }
            })
            .collect()
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, initiated: &str, method: &str, queue: Option<f64>, connected: bool) -> ContactVersion {
        ContactVersion {
            contact_id: id.into(),
            last_update: None,
            initiated: Some(initiated.parse().unwrap()),
            initiation_method: Some(method.into()),
            channel: Some("VOICE".into()),
            queue: Some("Q".into()),
            queued: queue.is_some(),
            queue_seconds: queue,
            connected,
            interaction_seconds: if connected { 100.0 } else { 0.0 },
            hold_seconds: if connected { 20.0 } else { 0.0 },
            after_contact_work_seconds: if connected { 10.0 } else { 0.0 },
        }
    }

    #[test]
    fn figures_per_day_in_the_time_zone() {
        let mut figures = DailyFigures::new(chrono_tz::Asia::Seoul, vec![]);
        figures.add(&contact("a", "2022-01-05T17:12:59Z", "INBOUND", Some(10.0), true));
        figures.add(&contact("b", "2022-01-05T10:00:00Z", "OUTBOUND", None, true));
        figures.add(&contact("c", "2022-01-05T11:00:00Z", "INBOUND", Some(30.0), false));
        let rows = figures.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].date, "2022-01-05");
        assert_eq!((rows[0].contacts, rows[0].inbound, rows[0].outbound, rows[0].abandoned), (2, 1, 1, 1));
        assert_eq!(rows[0].avg_queue_wait, Some(30.0));
        assert_eq!(rows[0].avg_handle_time, Some(130.0));
        assert_eq!(rows[1].date, "2022-01-06");
        assert_eq!(rows[1].p90_queue_wait, Some(10.0));
    }

    #[test]
    fn p90_is_nearest_rank() {
        let mut figures = DailyFigures::new(chrono_tz::UTC, vec![GroupBy::Channel]);
        for wait in 1..=10 {
            figures.add(&contact(&wait.to_string(), "2022-01-05T10:00:00Z", "INBOUND", Some(wait as f64), true));
        }
        let rows = figures.rows();
        assert_eq!(rows[0].p90_queue_wait, Some(9.0));
        assert_eq!(rows[0].avg_queue_wait, Some(5.5));
        assert_eq!(rows[0].group.get("channel").map(String::as_str), Some("VOICE"));
    }
}
