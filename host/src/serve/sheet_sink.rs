//! Where real-time QA sheets go: appended to an NDJSON file (synced after
//! each sheet, so a sheet reported in the log is on disk), to stdout, or to
//! a sheet store with the session it judged.

use std::fs::{File, OpenOptions};
use std::io::Write;

use anyhow::Context;
use parking_lot::Mutex;

use super::config::SheetTarget;
use crate::qa::sheet_store::{SheetRecord, SheetStore};
use crate::qa::QaSheet;
use crate::session::Session;

pub struct SheetSink {
    target: SheetTarget,
    file: Mutex<Option<File>>,
    store: Option<SheetStore>,
}

impl SheetSink {
    pub fn open(target: &SheetTarget) -> anyhow::Result<Self> {
        let store = match target {
            SheetTarget::Store(url) => Some(url.open()?),
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
        Ok(SheetSink { target: target.clone(), file: Mutex::new(file), store })
    }

    pub fn describe(&self) -> String {
        match &self.target {
            SheetTarget::Stdout => "stdout".into(),
            SheetTarget::File(path) => path.display().to_string(),
            SheetTarget::Store(url) => url.to_string(),
        }
    }

    /// Keeps one sheet: one line of the file or stdout, or one evaluation in
    /// the store (committed before this returns). Blocking (file I/O).
    pub fn append(&self, sheet: &QaSheet, session: &Session, ruleset_version: &str) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            let record = SheetRecord { sheet, session, ruleset_version, evaluated_at: chrono::Utc::now() };
            return store
                .put(&record)
                .map(|_| ())
                .with_context(|| format!("cannot store a sheet in {}", self.describe()));
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
