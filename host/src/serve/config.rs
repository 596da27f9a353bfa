//! The service's settings, resolved once at start (by `callqa serve` from
//! its flags, environment and config file); nothing reads the environment
//! after that.

use crate::qa::sheet_store::SheetStoreUrl;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::ctr::FingerprintMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// Where QA sheets go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SheetTarget {
    Stdout,
    File(PathBuf),
    /// A sheet store (`sqlite:PATH`): each sheet kept with its session.
    Store(SheetStoreUrl),
}

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub ready_file: Option<PathBuf>,
    /// The ruleset file; its directory is the one watched.
    pub ruleset: PathBuf,
    pub rules_poll: Duration,
    pub out: crate::sinks::SinkUrl,
    /// `--kinesis STREAM`: also read the stream, sharing its shards with the
    /// other hosts that hold leases in the same table.
    pub kinesis: Option<crate::ingest::kinesis::KinesisOptions>,
    pub gzip: bool,
    /// `None`: the embedded store at `data_dir/dedup.redb`.
    pub store: Option<String>,
    pub store_concurrency: usize,
    pub data_dir: PathBuf,
    pub fingerprint: FingerprintMode,
    pub ttl: Duration,
    pub lease: Duration,
    pub dead_letter: Option<PathBuf>,
    pub sheets: SheetTarget,
    /// Where alerts go (`--webhooks FILE`); `Some` only with a sheet store.
    pub webhooks: Option<crate::alerts::WebhookSettings>,
    pub firehose_access_key: Option<String>,
    /// The machine tokens file (`callqa tokens`).
    pub tokens: PathBuf,
    /// The users file (`callqa users`).
    pub users: PathBuf,
    /// How long a login session lasts.
    pub session_lifetime: Duration,
    /// Session cookies without `Secure`, for plain-HTTP setups and tests.
    pub insecure_cookies: bool,
    pub max_body_bytes: u64,
    pub max_record_bytes: u64,
    pub max_evaluations: usize,
    /// Largest session document for POST /v1/sessions/evaluate.
    pub max_session_bytes: u64,
    /// Request body bytes held at once across all requests.
    pub max_buffered_bytes: u64,
    /// Connections served at once; more get 503 (and /healthz).
    pub max_connections: usize,
    /// A connection idle or slow for this long before a request head is closed.
    pub header_timeout: Duration,
    /// The time a client has to send a whole body.
    pub body_timeout: Duration,
    /// How long requests in flight may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    pub analysis: Option<PathBuf>,
    pub analysis_wait: Duration,
    pub events: Option<PathBuf>,
    pub settle: Duration,
    pub incomplete_after: Duration,
    pub session_retention: Duration,
    /// How long after a sheet's verdict its agent may dispute an item.
    pub dispute_window: chrono::Duration,
    pub log_format: LogFormat,
    /// `None`: compile every module afresh.
    pub cache_dir: Option<PathBuf>,
    /// The config file's `[similarity]`: the provider of `similar`
    /// operators for a ruleset that names none (its own table wins).
    pub similarity: Option<crate::similarity::SimilarityConfig>,
}

/// `--rules` names the ruleset file, or a directory holding it: the only
/// `*.toml` there, else `rules.toml`.
pub fn find_ruleset(rules: &Path) -> anyhow::Result<PathBuf> {
    if !rules.is_dir() {
        anyhow::ensure!(rules.is_file(), "--rules {}: no such file or directory", rules.display());
        return Ok(rules.to_path_buf());
    }
    let mut tomls: Vec<PathBuf> = std::fs::read_dir(rules)
        .with_context(|| format!("cannot read the rules directory {}", rules.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    tomls.sort();
    match tomls.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("--rules {}: the directory has no ruleset (*.toml)", rules.display()),
        many => {
            let named = rules.join("rules.toml");
            anyhow::ensure!(
                named.is_file(),
                "--rules {}: {} ruleset files and none is rules.toml; name the file to use",
                rules.display(),
                many.len()
            );
            Ok(named)
        }
    }
}
