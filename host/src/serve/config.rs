//! The service's settings: flags and environment variables (clap) over a
//! TOML config file over defaults. Resolved once at start into
//! [`ServeConfig`]; nothing reads the environment after that.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::cli::ingest::parse_duration;
use crate::cli::serve::ServeArgs;
use crate::ctr::FingerprintMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// The config file: the flags' long names as keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    listen: Option<String>,
    ready_file: Option<PathBuf>,
    rules: Option<PathBuf>,
    rules_poll: Option<String>,
    out: Option<PathBuf>,
    gzip: Option<bool>,
    store: Option<String>,
    store_concurrency: Option<usize>,
    data_dir: Option<PathBuf>,
    fingerprint: Option<String>,
    ttl: Option<String>,
    lease: Option<String>,
    dead_letter: Option<PathBuf>,
    sheets: Option<String>,
    firehose_access_key: Option<String>,
    max_body_bytes: Option<u64>,
    max_record_bytes: Option<u64>,
    max_evaluations: Option<usize>,
    analysis: Option<PathBuf>,
    analysis_wait: Option<String>,
    events: Option<PathBuf>,
    settle: Option<String>,
    incomplete_after: Option<String>,
    session_retention: Option<String>,
    log_format: Option<LogFormat>,
    cache_dir: Option<PathBuf>,
    no_cache: Option<bool>,
}

/// Where QA sheets go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SheetTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub ready_file: Option<PathBuf>,
    /// The ruleset file; its directory is the one watched.
    pub ruleset: PathBuf,
    pub rules_poll: Duration,
    pub out: PathBuf,
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
    pub firehose_access_key: Option<String>,
    pub max_body_bytes: u64,
    pub max_record_bytes: u64,
    pub max_evaluations: usize,
    pub analysis: Option<PathBuf>,
    pub analysis_wait: Duration,
    pub events: Option<PathBuf>,
    pub settle: Duration,
    pub incomplete_after: Duration,
    pub session_retention: Duration,
    pub log_format: LogFormat,
    /// `None`: compile every module afresh.
    pub cache_dir: Option<PathBuf>,
}

fn duration(name: &str, flag: &Option<String>, file: &Option<String>, default: &str) -> anyhow::Result<Duration> {
    let text = flag.as_deref().or(file.as_deref()).unwrap_or(default);
    parse_duration(text).map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

impl ServeConfig {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str::<ConfigFile>(&text)
                    .with_context(|| format!("{} is not a valid callqa serve config", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let listen_text = args.listen.clone().or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("--listen {listen_text} is not an address like 127.0.0.1:8080 or [::]:8080"))?;
        let rules = args
            .rules
            .clone()
            .or(file.rules)
            .context("no rules: pass --rules DIR (or `rules = \"DIR\"` in --config)")?;
        let ruleset = find_ruleset(&rules)?;
        let out = args.out.clone().or(file.out).context("no sink for contact records: pass --out DIR")?;
        let data_dir = match args.data_dir.clone().or(file.data_dir) {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        let fingerprint = match (&args.fingerprint, &file.fingerprint) {
            (Some(mode), _) => *mode,
            (None, Some(text)) => <FingerprintMode as clap::ValueEnum>::from_str(text, true)
                .map_err(|_| anyhow::anyhow!("fingerprint = {text:?}: use raw, canonical or key"))?,
            (None, None) => FingerprintMode::Canonical,
        };
        let sheets = match args.sheets.clone().or(file.sheets) {
            Some(s) if s == "-" => SheetTarget::Stdout,
            Some(s) => SheetTarget::File(PathBuf::from(s)),
            None => SheetTarget::File(data_dir.join("sheets.ndjson")),
        };
        let no_cache = args.cache.no_cache || file.no_cache.unwrap_or(false);
        let cache_dir = if no_cache {
            None
        } else {
            args.cache.cache_dir.clone().or(file.cache_dir).or_else(crate::rules::RuleEngine::default_cache_dir)
        };
        let max_body_bytes = args.max_body_bytes.or(file.max_body_bytes).unwrap_or(64 << 20);
        if max_body_bytes == 0 {
            bail!("--max-body-bytes must be at least 1");
        }
        let max_evaluations = args.max_evaluations.or(file.max_evaluations).unwrap_or(64);
        // The engine's instance pool holds 256 live instances; stay under it.
        if !(1..=200).contains(&max_evaluations) {
            bail!("--max-evaluations must be between 1 and 200");
        }
        let key = args.firehose_access_key.clone().or(file.firehose_access_key).filter(|k| !k.is_empty());
        Ok(ServeConfig {
            listen,
            ready_file: args.ready_file.clone().or(file.ready_file),
            ruleset,
            rules_poll: duration("rules-poll", &args.rules_poll, &file.rules_poll, "1s")?
                .max(Duration::from_millis(50)),
            out,
            gzip: args.gzip || file.gzip.unwrap_or(false),
            store: args.store.clone().or(file.store),
            store_concurrency: args
                .store_concurrency
                .or(file.store_concurrency)
                .unwrap_or(crate::dedup::DEFAULT_CONCURRENCY)
                .clamp(1, 4096),
            data_dir,
            fingerprint,
            ttl: duration("ttl", &args.ttl, &file.ttl, "24h")?,
            lease: duration("lease", &args.lease, &file.lease, "30s")?,
            dead_letter: args.dead_letter.clone().or(file.dead_letter),
            sheets,
            firehose_access_key: key,
            max_body_bytes,
            max_record_bytes: args.max_record_bytes.or(file.max_record_bytes).unwrap_or(1 << 20),
            max_evaluations,
            analysis: args.analysis.clone().or(file.analysis),
            analysis_wait: duration("analysis-wait", &args.analysis_wait, &file.analysis_wait, "10m")?,
            events: args.events.clone().or(file.events),
            settle: duration("settle", &args.settle, &file.settle, "1s")?,
            incomplete_after: duration("incomplete-after", &args.incomplete_after, &file.incomplete_after, "1h")?,
            session_retention: duration("session-retention", &args.session_retention, &file.session_retention, "1h")?,
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Human),
            cache_dir,
        })
    }
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

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("callqa"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("no data directory: set --data-dir, CALLQA_DATA_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/callqa"))
}
