//! Where real-time QA sheets go: appended to an NDJSON file (synced after
//! each sheet, so a sheet reported in the log is on disk) or to stdout.

use std::fs::{File, OpenOptions};
use std::io::Write;

use anyhow::Context;
use parking_lot::Mutex;

use super::config::SheetTarget;
use crate::qa::QaSheet;

pub struct SheetSink {
    target: SheetTarget,
    file: Mutex<Option<File>>,
}

impl SheetSink {
    pub fn open(target: &SheetTarget) -> anyhow::Result<Self> {
        let file = match target {
            SheetTarget::Stdout => None,
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
        Ok(SheetSink { target: target.clone(), file: Mutex::new(file) })
    }

    pub fn describe(&self) -> String {
        match &self.target {
            SheetTarget::Stdout => "stdout".into(),
            SheetTarget::File(path) => path.display().to_string(),
        }
    }

    /// Appends one sheet as one line. Blocking (file I/O).
    pub fn append(&self, sheet: &QaSheet) -> anyhow::Result<()> {
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
