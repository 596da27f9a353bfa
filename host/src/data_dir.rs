//! Where callqa keeps its state when not told otherwise.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// `--data-dir` (or `CALLQA_DATA_DIR`, which clap reads into it) when
/// given, else `$XDG_DATA_HOME/callqa`, else `~/.local/share/callqa`.
pub fn default_data_dir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("callqa"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("no data directory: set --data-dir, CALLQA_DATA_DIR or HOME, or pass --store file:PATH")?;
    Ok(PathBuf::from(home).join(".local/share/callqa"))
}
