//! Real-time QA: every stored contact record joins its session; a session
//! is evaluated as soon as it is complete and its sheet appended to the
//! sheet sink.
//!
//! # When a session is complete
//!
//! The legs of one customer conversation share a session key: the
//! `InitialContactId` of a transferred leg, else the leg's own `ContactId`
//! (Amazon Connect sets `InitialContactId` on every leg after the first).
//! The session is **complete** when
//!
//! 1. every leg read so far has a `DisconnectTimestamp`, and
//! 2. every contact a leg names (`InitialContactId`, `PreviousContactId`,
//!    `NextContactId`) has had its record read: a transfer whose next leg
//!    has not arrived yet is still going on, and
//! 3. with `--analysis DIR`: each voice or chat leg that reached an agent has
//!    a Contact Lens output file there (`<ContactId>_analysis_*.json`), or
//!    `--analysis-wait` has passed since (1) and (2) held; the sheet then
//!    notes the missing analysis.
//!
//! It is then evaluated once no new record of it arrived for `--settle`
//! (events written at hang-up get their chance; with `--events FILE` the
//! events file is read at evaluation time). A session that stays incomplete
//! (a leg never arrives) is evaluated `--incomplete-after` its last record
//! anyway, the missing legs noted on the sheet. A later version of one of
//! its records (Connect re-delivers a contact when its data changes)
//! re-evaluates the session whole and appends a new sheet, as long as the
//! session is still held (`--session-retention` after its last record).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use super::live_rules::LiveRules;
use super::metrics::Metrics;
use super::sheet_sink::SheetSink;
use crate::qa::{Inspector, QaSheet};
use crate::session::adapters::{find_analysis_files, read_events, ContactRecord, EventTarget};
use crate::session::assembler::{self, LegAnalysis};
use crate::session::{Channel, Event};

#[derive(Clone, Debug)]
pub struct RealtimeSettings {
    pub analysis: Option<PathBuf>,
    pub analysis_wait: Duration,
    pub events: Option<PathBuf>,
    pub settle: Duration,
    pub incomplete_after: Duration,
    pub retention: Duration,
}

struct PendingSession {
    legs: BTreeMap<String, ContactRecord>,
    /// Bumped by every new record; an evaluation that started at an older
    /// version leaves the session due.
    version: u64,
    evaluated_version: u64,
    last_change: Instant,
    /// When (1) and (2) of the completeness rule first held for this version.
    complete_since: Option<Instant>,
}

impl PendingSession {
    fn due(&self) -> bool {
        self.version != self.evaluated_version
    }

    /// Conditions (1) and (2): every leg ended, no named leg missing.
    fn legs_complete(&self) -> bool {
        self.legs.values().all(|l| l.disconnected_at.is_some())
            && self.legs.values().all(|l| {
                [&l.initial_contact_id, &l.previous_contact_id, &l.next_contact_id]
                    .into_iter()
                    .flatten()
                    .all(|id| self.legs.contains_key(id))
            })
    }

    /// The legs whose Contact Lens analysis the session waits for.
    fn analysed_legs(&self) -> impl Iterator<Item = &ContactRecord> {
        self.legs.values().filter(|l| matches!(l.channel, Channel::Voice | Channel::Chat) && l.reached_agent())
    }
}

pub struct RealtimeQa {
    sessions: Mutex<HashMap<String, PendingSession>>,
    wake: Notify,
    settings: RealtimeSettings,
    sheets: SheetSink,
    rules: Arc<LiveRules>,
    evaluations: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// How often sessions are looked at when nothing arrives (for the
/// settle, analysis and incomplete timers).
const TICK: Duration = Duration::from_millis(200);

impl RealtimeQa {
    pub fn new(
        settings: RealtimeSettings,
        sheets: SheetSink,
        rules: Arc<LiveRules>,
        evaluations: Arc<Semaphore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        RealtimeQa {
            sessions: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            settings,
            sheets,
            rules,
            evaluations,
            metrics,
        }
    }

    pub fn describe_sink(&self) -> String {
        self.sheets.describe()
    }

    /// Stored contact records (as written to the sink) join their sessions.
    pub fn offer(&self, stored: &[Vec<u8>]) {
        if stored.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        for line in stored {
            let record =
                match serde_json::from_slice(line).map_err(anyhow::Error::from).and_then(ContactRecord::from_value) {
                    Ok(r) => r,
                    Err(err) => {
                        tracing::warn!("stored contact record left out of real-time QA: {err:#}");
                        continue;
                    }
                };
            let key = record.initial_contact_id.clone().unwrap_or_else(|| record.contact_id.clone());
            let session = sessions.entry(key).or_insert_with(|| PendingSession {
                legs: BTreeMap::new(),
                version: 0,
                evaluated_version: 0,
                last_change: now,
                complete_since: None,
            });
            // An older version arriving late changes nothing.
            if session.legs.get(&record.contact_id).is_some_and(|known| known.last_update > record.last_update) {
                continue;
            }
            session.legs.insert(record.contact_id.clone(), record);
            session.version += 1;
            session.last_change = now;
            session.complete_since = None;
        }
        self.metrics.sessions_pending.set(sessions.values().filter(|s| s.due()).count() as i64);
        drop(sessions);
        self.wake.notify_one();
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            for (key, version, legs) in self.take_due() {
                let Ok(permit) = self.evaluations.clone().acquire_owned().await else { return };
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    match this.evaluate(&legs) {
                        Ok(sheet) => {
                            tracing::info!(session = %sheet.session_id, score = ?sheet.score, complete = sheet.complete, "QA sheet written");
                        }
                        // A session that cannot be assembled does not get better by
                        // retrying; its next record makes it due again.
                        Err(err) => tracing::error!(session = %key, version, "real-time QA failed: {err:#}"),
                    }
                });
            }
        }
    }

    /// Sessions to evaluate now, marked as in evaluation; evicts the old.
    fn take_due(&self) -> Vec<(String, u64, Vec<ContactRecord>)> {
        let now = Instant::now();
        let s = &self.settings;
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, session| session.due() || now.duration_since(session.last_change) < s.retention);
        let mut waiting_for_analysis = Vec::new();
        let mut due = Vec::new();
        for (key, session) in sessions.iter_mut() {
            if !session.due() {
                continue;
            }
            let quiet = now.duration_since(session.last_change);
            if quiet >= s.incomplete_after {
                due.push(key.clone());
                continue;
            }
            if !session.legs_complete() || quiet < s.settle {
                continue;
            }
            let since = *session.complete_since.get_or_insert(now);
            if s.analysis.is_some()
                && now.duration_since(since) < s.analysis_wait
                && session.analysed_legs().next().is_some()
            {
                waiting_for_analysis.push(key.clone());
            } else {
                due.push(key.clone());
            }
        }
        if let (Some(dir), false) = (&s.analysis, waiting_for_analysis.is_empty()) {
            match find_analysis_files(dir) {
                Ok(found) => {
                    for key in waiting_for_analysis {
                        let ready =
                            sessions[&key].analysed_legs().all(|l| found.by_contact.contains_key(&l.contact_id));
                        if ready {
                            due.push(key);
                        }
                    }
                }
                Err(err) => tracing::warn!(dir = %dir.display(), "cannot look for Contact Lens files: {err:#}"),
            }
        }
        let out = due
            .into_iter()
            .filter_map(|key| {
                let session = sessions.get_mut(&key)?;
                let legs = session.legs.values().cloned().collect();
                let version = session.version;
                // Not due again until a new record arrives.
                session.evaluated_version = version;
                Some((key, version, legs))
            })
            .collect();
        self.metrics.sessions_pending.set(sessions.values().filter(|s| s.due()).count() as i64);
        out
    }

    /// Assembles, evaluates and appends one session's sheet. Blocking.
    fn evaluate(&self, legs: &[ContactRecord]) -> anyhow::Result<QaSheet> {
        let analyses = self.analyses(legs);
        let events = self.events(legs)?;
        let session = Arc::new(assembler::assemble(legs, &analyses, events).context("cannot assemble the session")?);
        let active = self.rules.current();
        let sheet = Inspector::new(self.rules.engine().clone(), active.ruleset.clone()).inspect(session.clone());
        self.metrics.record_sheet(&sheet, "realtime");
        self.sheets.append(&sheet, &session, &active.ruleset.version)?;
        Ok(sheet)
    }

    fn analyses(&self, legs: &[ContactRecord]) -> BTreeMap<String, LegAnalysis> {
        let mut out = BTreeMap::new();
        let Some(dir) = &self.settings.analysis else { return out };
        let found = match find_analysis_files(dir) {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), "cannot read Contact Lens files: {err:#}");
                return out;
            }
        };
        for leg in legs {
            let Some(files) = found.by_contact.get(&leg.contact_id) else { continue };
            let mut analysis = LegAnalysis::default();
            for file in files {
                match file.read() {
                    Ok(a) => {
                        analysis.analysis = Some(a);
                        break;
                    }
                    Err(e) => {
                        let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        analysis.problems.push(format!("Contact Lens analysis file {name} is unusable: {e:#}"));
                    }
                }
            }
            out.insert(leg.contact_id.clone(), analysis);
        }
        out
    }

    fn events(&self, legs: &[ContactRecord]) -> anyhow::Result<Vec<Event>> {
        let Some(path) = &self.settings.events else { return Ok(Vec::new()) };
        if !path.exists() {
            return Ok(Vec::new());
        }
        let session_id = legs
            .iter()
            .find_map(|l| l.initial_contact_id.clone())
            .or_else(|| legs.first().map(|l| l.contact_id.clone()));
        let mut targets: HashSet<EventTarget> =
            legs.iter().map(|l| EventTarget::Contact(l.contact_id.clone())).collect();
        targets.extend(session_id.map(EventTarget::Session));
        Ok(read_events(path)?
            .into_iter()
            .filter_map(|(_, e)| e.ok())
            .filter(|e| targets.contains(&e.target))
            .map(|e| e.event)
            .collect())
    }
}
