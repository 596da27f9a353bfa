//! Reading session documents: one JSON object (or an array of them) per
//! `.json` file, one per line in `.ndjson`/`.jsonl` files; directories are
//! walked in name order. A malformed document is reported with its file and
//! position and the rest are still read.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Session;

/// Where a session document came from, for error messages and reports.
#[derive(Clone, Debug)]
pub struct SessionSource {
    pub file: PathBuf,
    /// 1-based line for NDJSON, array index for arrays, none for a whole file.
    pub position: Option<String>,
}

impl std::fmt::Display for SessionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{}:{p}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Every session in `inputs` (files or directories), in order. The outer
/// error is an unusable input (missing path, unreadable directory); a bad
/// document is an inner `Err` with its source, and reading goes on.
pub fn read_sessions(inputs: &[PathBuf]) -> anyhow::Result<Vec<(SessionSource, anyhow::Result<Session>)>> {
    let mut out = Vec::new();
    for input in inputs {
        for file in session_files(input)? {
            let text = match std::fs::read(&file) {
                Ok(bytes) => String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("not UTF-8: {e}")),
                Err(e) => Err(anyhow::Error::new(e).context("cannot read the file")),
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    out.push((SessionSource { file, position: None }, Err(e)));
                    continue;
                }
            };
            if is_ndjson(&file) {
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let source = SessionSource { file: file.clone(), position: Some(format!("line {}", i + 1)) };
                    out.push((source, parse_one(line)));
                }
            } else {
                read_json_file(&file, &text, &mut out);
            }
        }
    }
    Ok(out)
}

fn read_json_file(file: &Path, text: &str, out: &mut Vec<(SessionSource, anyhow::Result<Session>)>) {
    let whole = SessionSource { file: file.to_path_buf(), position: None };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let source = SessionSource { file: file.to_path_buf(), position: Some(format!("[{i}]")) };
                out.push((source, from_value(item)));
            }
        }
        Ok(value) => out.push((whole, from_value(value))),
        Err(e) => {
            out.push((whole, Err(anyhow::anyhow!("malformed JSON at line {}, column {}: {e}", e.line(), e.column()))))
        }
    }
}

fn parse_one(text: &str) -> anyhow::Result<Session> {
    let value: serde_json::Value = serde_json::from_str(text).context("malformed JSON")?;
    from_value(value)
}

fn from_value(value: serde_json::Value) -> anyhow::Result<Session> {
    anyhow::ensure!(value.is_object(), "a session document must be a JSON object");
    let mut session: Session = serde_json::from_value(value).context("not a valid session document")?;
    session.normalise()?;
    Ok(session)
}

fn is_ndjson(file: &Path) -> bool {
    matches!(file.extension().and_then(|e| e.to_str()), Some("ndjson" | "jsonl"))
}

fn session_files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(input).with_context(|| format!("cannot read session input {}", input.display()))?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot walk {}", input.display()))?;
        let is_doc = matches!(entry.path().extension().and_then(|e| e.to_str()), Some("json" | "ndjson" | "jsonl"));
        if entry.file_type().is_file() && is_doc {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}
