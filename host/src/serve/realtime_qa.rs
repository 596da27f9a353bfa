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
//!
//! # Across restarts
//!
//! With `--sheets` a sheet store, each session waiting to be evaluated is
//! also a row of the store's `pending_sessions` (its legs as stored, its
//! last change), written before the ingest that changed it is answered.
//! At start `serve` resumes its own rows (`owner`: host and sink, as the
//! dedup store names a host): their timers run on from the times written,
//! so the due ones are evaluated at once. A row is removed once its sheet
//! is stored. A crash between the two leaves the row: the resumed session
//! finds its sheet stored (same session, same ruleset version) and is
//! neither evaluated nor counted again. A crash after the records are
//! stored but before their row is written loses those legs from real-time
//! QA only: they are in the sink, and the sender's retry finds them
//! duplicates. Without a store (NDJSON sheets) pending sessions live in
//! memory only, and a restart forgets them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Notify, Semaphore};

use super::live_rules::LiveRules;
use super::metrics::Metrics;
use super::sheet_sink::SheetSink;
use crate::qa::sheet_store::pending_sessions::PendingSessionRow;
use crate::qa::sheet_store::SheetStore;
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
    /// Whose pending sessions these are in the sheet store ([`owner_of`]).
    pub owner: String,
}

/// This host's name for its pending sessions: `<hostname>:<sink>`, the
/// dedup store's name for it, so a host restarted with the same `--out`
/// resumes its own sessions and never those of a host sharing the store.
pub fn owner_of(out: &crate::sinks::SinkUrl) -> String {
    crate::dedup::host_identity(&out.identity())
}

/// A time of a pending session: milliseconds on the monotonic clock since
/// the process started, negative for a session resumed from before.
type Millis = i64;

/// Pending sessions' clock, and where it started on the wall clock, to
/// write their times down and read them back after a restart.
struct Clock {
    start: Instant,
    started_at: DateTime<Utc>,
}

impl Clock {
    fn new() -> Clock {
        Clock { start: Instant::now(), started_at: Utc::now() }
    }

    fn now(&self) -> Millis {
        Millis::try_from(self.start.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }

    fn wall(&self, t: Millis) -> DateTime<Utc> {
        self.started_at + chrono::Duration::milliseconds(t)
    }

    fn at(&self, t: DateTime<Utc>) -> Millis {
        (t - self.started_at).num_milliseconds()
    }
}

fn since(now: Millis, then: Millis) -> Duration {
    Duration::from_millis(u64::try_from(now.saturating_sub(then)).unwrap_or(0))
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

struct PendingSession {
    legs: BTreeMap<String, ContactRecord>,
    /// Each leg's record as stored, for the session's row (kept only with
    /// a sheet store).
    stored: BTreeMap<String, Box<RawValue>>,
    /// Bumped by every new record; an evaluation that started at an older
    /// version leaves the session due.
    version: u64,
    evaluated_version: u64,
    /// With a sheet store: the latest version whose row write has ended. A
    /// session is not evaluated ahead of its row, or the row's removal
    /// after the sheet could come before the row itself.
    written_version: u64,
    first_seen: Millis,
    last_change: Millis,
    /// When (1) and (2) of the completeness rule first held for this version.
    complete_since: Option<Millis>,
    /// Resumed at start: its sheet may have been stored just before the
    /// restart, its row not yet removed.
    resumed: bool,
    /// After the store refused its sheet: not evaluated again before this.
    retry_at: Option<Millis>,
    /// This version's sheet was counted by an attempt the store refused.
    counted: bool,
}

impl PendingSession {
    fn new(now: Millis) -> Self {
        PendingSession {
            legs: BTreeMap::new(),
            stored: BTreeMap::new(),
            version: 0,
            evaluated_version: 0,
            written_version: 0,
            first_seen: now,
            last_change: now,
            complete_since: None,
            resumed: false,
            retry_at: None,
            counted: false,
        }
    }

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

/// A pending row's `state`: the legs as stored and the last change. The
/// other timers are derived again on resume (see [`RealtimeQa::restore`]).
#[derive(Serialize)]
struct SavedSession<'a> {
    legs: Vec<&'a RawValue>,
    last_change: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ResumedSession {
    legs: Vec<Box<RawValue>>,
    last_change: DateTime<Utc>,
}

/// Where pending sessions are kept across restarts.
struct Durable {
    store: Arc<SheetStore>,
    owner: String,
}

/// A session handed to an evaluation.
struct Due {
    key: String,
    version: u64,
    legs: Vec<ContactRecord>,
    resumed: bool,
    /// Its metrics were counted by an earlier attempt.
    counted: bool,
}

/// Why a due session got no stored sheet.
enum Failure {
    /// It cannot be judged (assembly, events): retrying would not help;
    /// its next record makes it due again.
    Session(anyhow::Error),
    /// Its sheet was made and counted, but not kept.
    Sheet(anyhow::Error),
    /// Whether a resumed session's sheet is stored could not be told.
    Unknown(anyhow::Error),
}

pub struct RealtimeQa {
    sessions: Mutex<HashMap<String, PendingSession>>,
    wake: Notify,
    settings: RealtimeSettings,
    sheets: SheetSink,
    /// `Some` when sheets go to a sheet store.
    durable: Option<Durable>,
    clock: Clock,
    rules: Arc<LiveRules>,
    evaluations: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// How often sessions are looked at when nothing arrives (for the
/// settle, analysis and incomplete timers).
const TICK: Duration = Duration::from_millis(200);

/// How long a sheet the store refused waits before it is tried again.
const RETRY: Duration = Duration::from_secs(30);

impl RealtimeQa {
    pub fn new(
        settings: RealtimeSettings,
        sheets: SheetSink,
        rules: Arc<LiveRules>,
        evaluations: Arc<Semaphore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let durable = sheets.store().map(|store| Durable { store, owner: settings.owner.clone() });
        RealtimeQa {
            sessions: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            settings,
            sheets,
            durable,
            clock: Clock::new(),
            rules,
            evaluations,
            metrics,
        }
    }

    pub fn describe_sink(&self) -> String {
        self.sheets.describe()
    }

    /// Loads this host's pending sessions from the sheet store (none
    /// without one); the due ones are evaluated at the first tick. Called
    /// before the service takes records, so that no record starts a
    /// session afresh beside its stored self.
    pub async fn resume(&self) -> anyhow::Result<usize> {
        let Some(durable) = &self.durable else { return Ok(0) };
        let (store, owner) = (durable.store.clone(), durable.owner.clone());
        let rows = tokio::task::spawn_blocking(move || store.pending_sessions(Some(&owner)))
            .await
            .context("loading the pending sessions failed to run")?
            .with_context(|| format!("cannot resume the pending sessions kept in {}", self.sheets.describe()))?;
        let mut sessions = self.sessions.lock();
        let mut resumed = 0;
        for row in rows {
            match self.restore(&row) {
                Ok(session) => {
                    sessions.insert(row.session_id, session);
                    resumed += 1;
                }
                // Left in the store: a later callqa may read it.
                Err(err) => tracing::warn!(session = %row.session_id, "pending session not resumed: {err:#}"),
            }
        }
        self.metrics.sessions_pending.set(sessions.values().filter(|s| s.due()).count() as i64);
        drop(sessions);
        self.wake.notify_one();
        Ok(resumed)
    }

    fn restore(&self, row: &PendingSessionRow) -> anyhow::Result<PendingSession> {
        let saved: ResumedSession =
            serde_json::from_str(&row.state).context("its state is not what real-time QA writes")?;
        let mut session = PendingSession::new(self.clock.at(row.first_seen_at));
        for raw in saved.legs {
            let record = ContactRecord::from_value(serde_json::from_str(raw.get())?)?;
            session.stored.insert(record.contact_id.clone(), raw);
            session.legs.insert(record.contact_id.clone(), record);
        }
        session.version = row.version.max(1);
        session.written_version = session.version;
        session.resumed = true;
        session.last_change = self.clock.at(saved.last_change);
        // When the timers would have found it complete and settled (the
        // analysis wait runs from then), rather than a restart later.
        if session.legs_complete() {
            session.complete_since = Some(session.last_change.saturating_add(millis(self.settings.settle)));
        }
        Ok(session)
    }

    /// Stored contact records (as written to the sink) join their sessions.
    /// With a sheet store, the sessions they changed are written there
    /// before this returns, so before the ingest is answered.
    pub async fn offer(&self, stored: &[Vec<u8>]) {
        let rows = self.join(stored);
        if let (Some(durable), false) = (&self.durable, rows.is_empty()) {
            let written: Vec<(String, u64)> = rows.iter().map(|r| (r.session_id.clone(), r.version)).collect();
            let store = durable.store.clone();
            match tokio::task::spawn_blocking(move || store.upsert_pending_sessions(&rows)).await {
                Ok(Ok(())) => {}
                // The records are in the sink either way; only a restart's
                // memory of these legs is at stake.
                Ok(Err(err)) => tracing::error!(
                    "pending sessions not written to the sheet store: a restart before their evaluation forgets \
                     them: {err:#}"
                ),
                Err(err) => tracing::error!("writing the pending sessions failed to run: {err}"),
            }
            // Written or not: a store that refuses rows must not hold sheets back.
            let mut sessions = self.sessions.lock();
            for (key, version) in written {
                if let Some(session) = sessions.get_mut(&key) {
                    session.written_version = session.written_version.max(version);
                }
            }
        }
        self.wake.notify_one();
    }

    /// The records join their sessions in memory; returns the rows to
    /// write for the sessions they changed (none without a sheet store).
    fn join(&self, stored: &[Vec<u8>]) -> Vec<PendingSessionRow> {
        if stored.is_empty() {
            return Vec::new();
        }
        let now = self.clock.now();
        let mut changed = HashSet::new();
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
            let session = sessions.entry(key.clone()).or_insert_with(|| PendingSession::new(now));
            // An older version arriving late changes nothing.
            if session.legs.get(&record.contact_id).is_some_and(|known| known.last_update > record.last_update) {
                continue;
            }
            if self.durable.is_some() {
                // It parsed as a record above: it is JSON.
                if let Ok(raw) = serde_json::from_slice::<Box<RawValue>>(line) {
                    session.stored.insert(record.contact_id.clone(), raw);
                }
            }
            session.legs.insert(record.contact_id.clone(), record);
            session.version += 1;
            session.last_change = now;
            session.complete_since = None;
            session.counted = false;
            changed.insert(key);
        }
        let mut rows = Vec::new();
        if let Some(durable) = &self.durable {
            for key in changed {
                let Some(session) = sessions.get_mut(&key) else { continue };
                match self.row(&key, session, &durable.owner) {
                    Ok(row) => rows.push(row),
                    Err(err) => {
                        tracing::error!(session = %key, "pending session not written: {err:#}");
                        // No row to wait for: evaluated when due all the same.
                        session.written_version = session.version;
                    }
                }
            }
        }
        self.metrics.sessions_pending.set(sessions.values().filter(|s| s.due()).count() as i64);
        rows
    }

    fn row(&self, key: &str, session: &PendingSession, owner: &str) -> anyhow::Result<PendingSessionRow> {
        let last_change = self.clock.wall(session.last_change);
        let state = serde_json::to_string(&SavedSession {
            legs: session.stored.values().map(AsRef::as_ref).collect(),
            last_change,
        })?;
        Ok(PendingSessionRow {
            session_id: key.to_owned(),
            owner: owner.to_owned(),
            version: session.version,
            state,
            first_seen_at: self.clock.wall(session.first_seen),
            due_at: last_change + chrono::Duration::from_std(self.settings.settle).unwrap_or_default(),
        })
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            for due in self.take_due() {
                let Ok(permit) = self.evaluations.clone().acquire_owned().await else { return };
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    this.settle(due);
                });
            }
        }
    }

    /// Sessions to evaluate now, marked as in evaluation; evicts the old.
    fn take_due(&self) -> Vec<Due> {
        let now = self.clock.now();
        let s = &self.settings;
        let durable = self.durable.is_some();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, session| session.due() || since(now, session.last_change) < s.retention);
        let mut waiting_for_analysis = Vec::new();
        let mut due = Vec::new();
        for (key, session) in sessions.iter_mut() {
            if !session.due()
                || session.retry_at.is_some_and(|at| now < at)
                || (durable && session.written_version < session.version)
            {
                continue;
            }
            let quiet = since(now, session.last_change);
            if quiet >= s.incomplete_after {
                due.push(key.clone());
                continue;
            }
            if !session.legs_complete() || quiet < s.settle {
                continue;
            }
            let complete_since = *session.complete_since.get_or_insert(now);
            if s.analysis.is_some()
                && since(now, complete_since) < s.analysis_wait
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
                session.retry_at = None;
                let resumed = std::mem::take(&mut session.resumed);
                let counted = std::mem::take(&mut session.counted);
                Some(Due { key, version, legs, resumed, counted })
            })
            .collect();
        self.metrics.sessions_pending.set(sessions.values().filter(|s| s.due()).count() as i64);
        out
    }

    /// Evaluates one due session and, its sheet kept, forgets its row.
    /// Blocking.
    fn settle(&self, due: Due) {
        let (key, version) = (due.key.as_str(), due.version);
        match self.evaluate(&due) {
            Ok(Some(sheet)) => {
                tracing::info!(session = %sheet.session_id, score = ?sheet.score, complete = sheet.complete, "QA sheet written");
            }
            Ok(None) => {
                tracing::info!(session = %key, "QA sheet stored before the restart: not evaluated again");
            }
            Err(Failure::Session(err)) => tracing::error!(session = %key, version, "real-time QA failed: {err:#}"),
            Err(Failure::Sheet(err)) if self.durable.is_some() => return self.retry_later(&due, true, &err),
            Err(Failure::Unknown(err)) if self.durable.is_some() => return self.retry_later(&due, due.counted, &err),
            Err(Failure::Sheet(err) | Failure::Unknown(err)) => {
                tracing::error!(session = %key, version, "QA sheet not written: {err:#}")
            }
        }
        if let Some(durable) = &self.durable {
            if let Err(err) = durable.store.remove_pending_session(&durable.owner, key, version) {
                // Left behind, the row is resumed at the next start and its
                // sheet found stored.
                tracing::warn!(session = %key, "cannot remove the pending session from the sheet store: {err:#}");
            }
        }
    }

    /// The session is due again after [`RETRY`], its row kept; `counted`:
    /// its sheet's metrics are counted already.
    fn retry_later(&self, due: &Due, counted: bool, err: &anyhow::Error) {
        tracing::error!(session = %due.key, version = due.version, "QA sheet not stored, tried again in {RETRY:?}: {err:#}");
        let mut sessions = self.sessions.lock();
        if let Some(session) = sessions.get_mut(&due.key) {
            session.evaluated_version = 0;
            session.retry_at = Some(self.clock.now().saturating_add(millis(RETRY)));
            session.resumed |= due.resumed;
            // Unless a newer record came meanwhile: its sheet is another.
            session.counted = counted && session.version == due.version;
        }
    }

    /// Assembles, evaluates and appends one session's sheet; `None` when a
    /// resumed session's sheet is stored already. Blocking.
    fn evaluate(&self, due: &Due) -> Result<Option<QaSheet>, Failure> {
        let legs = &due.legs;
        let analyses = self.analyses(legs);
        let events = self.events(legs).map_err(Failure::Session)?;
        let session = Arc::new(
            assembler::assemble(legs, &analyses, events)
                .context("cannot assemble the session")
                .map_err(Failure::Session)?,
        );
        let active = self.rules.current();
        if let (true, Some(durable)) = (due.resumed, &self.durable) {
            // Stored by the process before the restart, which died before
            // removing the row: the sheet and its metrics exist once already.
            let stored =
                durable.store.has_evaluation(&session.id, &active.ruleset.version).map_err(Failure::Unknown)?;
            if stored {
                return Ok(None);
            }
        }
        let sheet = Inspector::new(self.rules.engine().clone(), active.ruleset.clone()).inspect(session.clone());
        // Counted before the sheet is visible, so whoever sees it sees its
        // counts; once, when the store refused it and it is tried again.
        if !due.counted {
            self.metrics.record_sheet(&sheet, "realtime");
            self.metrics.shadow.record(&sheet, &active.ruleset);
        }
        self.sheets.append(&sheet, &session, &active.ruleset).map_err(Failure::Sheet)?;
        // Crash tests: the sheet stored, its row not yet removed.
        crate::failpoint::failpoint("after-sheet-stored");
        Ok(Some(sheet))
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
