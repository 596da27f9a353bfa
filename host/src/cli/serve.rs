//! `callqa serve`: the long-running service (see `serve/` and the README).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::ctr::FingerprintMode;
use crate::serve::{LogFormat, ServeConfig};

const AFTER_HELP: &str = "\
Every setting can come from, in order of precedence: the flag, its
environment variable (shown with each flag), the --config file (TOML, the
flag names as keys: `listen = \"0.0.0.0:8080\"`, `max-body-bytes = 1048576`,
durations as strings: `ttl = \"24h\"`), or the default.

Endpoints:
  POST /v1/firehose                Kinesis Data Firehose HTTP endpoint delivery
  POST /v1/firehose/transform      Firehose data transformation (as `callqa ingest --firehose-response`)
  POST /v1/ctr                     contact records as JSON or NDJSON; per-record results
  POST /v1/sessions/evaluate       a session document in, its QA sheet out
  GET  /v1/rules                   rules: version, module SHA-256, state, counts
  POST /v1/rules/reload            reload the rules now (also on SIGHUP)
  POST /v1/rules/{id}/release      end a rule's quarantine
  GET  /metrics                    Prometheus (OpenMetrics text)
  GET  /healthz

Example:
  callqa serve --rules rules/ --out lake/ctr --listen 0.0.0.0:8080 \\
      --firehose-access-key \"$KEY\" --analysis lens/ --sheets lake/sheets.ndjson";

/// Run the long-lived service: receive contact records from Kinesis Data
/// Firehose (or plain HTTP), remove duplicates, evaluate each session with
/// the QA rules as soon as it is complete, and hot-load rule changes.
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flag names as keys).
    #[arg(long, value_name = "FILE", env = "CALLQA_SERVE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port (see --ready-file)
    /// [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT", env = "CALLQA_LISTEN")]
    pub listen: Option<String>,

    /// Once listening, write the bound address (`127.0.0.1:41234`) to FILE,
    /// for supervisors and tests that pass port 0.
    #[arg(long, value_name = "FILE", env = "CALLQA_READY_FILE")]
    pub ready_file: Option<PathBuf>,

    /// The rules: a directory holding one ruleset `*.toml` (`rules.toml`
    /// when there are several) and the `.wasm` modules it names, or the
    /// ruleset file itself. The directory is watched; golden cases under
    /// `golden/<rule-id>/*.json` must pass before a change is swapped in.
    #[arg(long, value_name = "DIR|FILE", env = "CALLQA_RULES")]
    pub rules: Option<PathBuf>,

    /// How often the rules are also checked for changes by reading them,
    /// in case file notifications are lost (network file systems)
    /// [default: 1s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_RULES_POLL")]
    pub rules_poll: Option<String>,

    /// Where unique contact records go: a directory of Hive-style
    /// partitions, as `callqa ingest --out DIR` writes it. Required.
    #[arg(long, short = 'o', value_name = "DIR", env = "CALLQA_OUT")]
    pub out: Option<PathBuf>,

    /// Gzip the record files written to --out.
    #[arg(long, env = "CALLQA_GZIP")]
    pub gzip: bool,

    /// The dedup store: `file:PATH`, `dynamodb://TABLE` or
    /// `redis://HOST:PORT[/DB]` [default: dedup.redb in --data-dir].
    #[arg(long, value_name = "SPEC", env = "CALLQA_STORE")]
    pub store: Option<String>,

    /// Claims in flight at once against a shared store [default: 64].
    #[arg(long, value_name = "N", env = "CALLQA_STORE_CONCURRENCY")]
    pub store_concurrency: Option<usize>,

    /// Directory for the default store and sheets [default:
    /// $XDG_DATA_HOME/callqa, or ~/.local/share/callqa].
    #[arg(long, value_name = "DIR", env = "CALLQA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// How a record's identity is computed: raw, canonical or key
    /// [default: canonical].
    #[arg(long, value_enum, env = "CALLQA_FINGERPRINT")]
    pub fingerprint: Option<FingerprintMode>,

    /// How long a fingerprint (and a Firehose request id) is remembered
    /// [default: 24h].
    #[arg(long, value_name = "DURATION", env = "CALLQA_TTL")]
    pub ttl: Option<String>,

    /// How long a claim stays exclusive, for shared stores [default: 30s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_LEASE")]
    pub lease: Option<String>,

    /// Append unusable records (malformed, no ContactId, bad base64,
    /// oversized) to this NDJSON file [default: listed in the log].
    #[arg(long, value_name = "FILE", env = "CALLQA_DEAD_LETTER")]
    pub dead_letter: Option<PathBuf>,

    /// Where real-time QA sheets are appended (NDJSON), or `-` for stdout
    /// [default: sheets.ndjson in --data-dir].
    #[arg(long, value_name = "FILE|-", env = "CALLQA_SHEETS")]
    pub sheets: Option<String>,

    /// The key Firehose sends in `X-Amz-Firehose-Access-Key`; requests
    /// without it, or with another, get 401. Without a key configured,
    /// POST /v1/firehose refuses every request.
    #[arg(long, value_name = "KEY", env = "CALLQA_FIREHOSE_ACCESS_KEY", hide_env_values = true)]
    pub firehose_access_key: Option<String>,

    /// Largest request body, compressed or not (413 past it) [default:
    /// 64 MiB, Firehose's largest buffer].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<u64>,

    /// Records larger than this are dead-lettered [default: 1 MiB].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_RECORD_BYTES")]
    pub max_record_bytes: Option<u64>,

    /// Evaluations running at once; more wait their turn [default: 64].
    #[arg(long, value_name = "N", env = "CALLQA_MAX_EVALUATIONS")]
    pub max_evaluations: Option<usize>,

    /// The Contact Lens output directory: a voice or chat session that
    /// reached an agent waits (up to --analysis-wait) for the analysis file
    /// of each leg before it is evaluated.
    #[arg(long, value_name = "DIR", env = "CALLQA_ANALYSIS_DIR")]
    pub analysis: Option<PathBuf>,

    /// How long a complete session waits for its analysis files
    /// [default: 10m]; then it is evaluated without them (noted on the sheet).
    #[arg(long, value_name = "DURATION", env = "CALLQA_ANALYSIS_WAIT")]
    pub analysis_wait: Option<String>,

    /// Business events (NDJSON, as `callqa session build --events`), read
    /// when a session is evaluated.
    #[arg(long, value_name = "FILE", env = "CALLQA_EVENTS")]
    pub events: Option<PathBuf>,

    /// How long a complete session waits before it is evaluated, so
    /// events written at hang-up are in [default: 1s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_SETTLE")]
    pub settle: Option<String>,

    /// A session still missing a leg this long after its last record is
    /// evaluated as it is, the missing legs noted on the sheet [default: 1h].
    #[arg(long, value_name = "DURATION", env = "CALLQA_INCOMPLETE_AFTER")]
    pub incomplete_after: Option<String>,

    /// How long an evaluated session's records are kept in memory, so a
    /// late update re-evaluates it whole [default: 1h].
    #[arg(long, value_name = "DURATION", env = "CALLQA_SESSION_RETENTION")]
    pub session_retention: Option<String>,

    /// Log format: human (default) or json.
    #[arg(long, value_enum, env = "CALLQA_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub cache: crate::cli::check::CacheArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig::resolve(&args)?;
    crate::serve::init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("callqa-serve").build()?;
    runtime.block_on(crate::serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}
