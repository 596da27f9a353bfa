//! Where real-time QA sheets go: appended to an NDJSON file (synced after
//! each sheet, so a sheet reported in the log is on disk), to stdout, or to
//! a sheet store with the session it judged, and with the alerts the sheet
//! owes to the webhooks (in the same transaction: see `alerts/`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::config::SheetTarget;
use crate::alerts::{alert, Webhook};
use crate::qa::sheet_store::{SheetRecord, SheetStore};
use crate::qa::QaSheet;
use crate::rules::Ruleset;
use crate::session::Session;

pub struct SheetSink {
    target: SheetTarget,
    file: Mutex<Option<File>>,
    store: Option<Arc<SheetStore>>,
    webhooks: Vec<Webhook>,
    /// Notified when alerts are enqueued, so delivery need not wait for
    /// its next look at the outbox.
    alerts_enqueued: Arc<Notify>,
}

impl SheetSink {
    /// `webhooks` need a store: the alerts they are owed wait in its outbox.
    pub fn open(target: &SheetTarget, webhooks: &[Webhook]) -> anyhow::Result<Self> {
        if !webhooks.is_empty() && !matches!(target, SheetTarget::Store(_)) {
            bail!(
                "webhooks need a sheet store to keep the alerts owed across restarts: pass --sheets sqlite:PATH or \
                 postgres://USER@HOST/DB with --webhooks"
            );
        }
        let store = match target {
            SheetTarget::Store(url) => Some(Arc::new(url.open()?)),
            _ => None,
        };
        let file = match target {
            SheetTarget::Stdout | SheetTarget::Store(_) => None,
            SheetTarget::File(path) => {
                if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("cannot open the sheets file {}", path.display()))?,
                )
            }
        };
        Ok(SheetSink {
            target: target.clone(),
            file: Mutex::new(file),
            store,
            webhooks: webhooks.to_vec(),
            alerts_enqueued: Arc::new(Notify::new()),
        })
    }

    /// The store and the signal alert delivery needs, when sheets go to a store.
    pub fn outbox(&self) -> Option<(Arc<SheetStore>, Arc<Notify>)> {
        self.store.as_ref().map(|s| (s.clone(), self.alerts_enqueued.clone()))
    }

    /// The sheet store, when sheets go to one (real-time QA keeps its
    /// pending sessions there too).
    pub fn store(&self) -> Option<Arc<SheetStore>> {
        self.store.clone()
    }

    pub fn describe(&self) -> String {
        match &self.target {
            SheetTarget::Stdout => "stdout".into(),
            SheetTarget::File(path) => path.display().to_string(),
            SheetTarget::Store(url) => url.to_string(),
        }
    }

    /// Keeps one sheet, made under `ruleset`: one line of the file or
    /// stdout, or one evaluation in the store with the alerts it owes
    /// (committed before this returns). Blocking (file I/O).
    pub fn append(&self, sheet: &QaSheet, session: &Session, ruleset: &Ruleset) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            let ruleset_version = ruleset.version.as_str();
            let record = SheetRecord { sheet, session, ruleset_version, evaluated_at: chrono::Utc::now() };
            let alerts = alert::owed(&record, ruleset, &self.webhooks)?;
            let stored = store
                .put_with_alerts(&record, &alerts)
                .with_context(|| format!("cannot store a sheet in {}", self.describe()))?;
            if stored.enqueued > 0 {
                tracing::info!(session_id = %sheet.session_id, alerts = stored.enqueued, "alerts enqueued");
                self.alerts_enqueued.notify_one();
            }
            return Ok(());
        }
        let mut line = serde_json::to_vec(sheet)?;
        line.push(b'\n');
        let mut file = self.file.lock();
        match file.as_mut() {
            Some(f) => {
                // One write call per line: appends from one process never interleave.
                f.write_all(&line)
                    .and_then(|()| f.sync_data())
                    .with_context(|| format!("cannot append to {}", self.describe()))
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line).and_then(|()| out.flush()).context("cannot write a sheet to stdout")
            }
        }
    }
}
