//! `callqa serve`: the long-running service (see `serve/` and the README).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::ctr::FingerprintMode;
use crate::data_dir::default_data_dir;
use crate::dedup::StoreUrl;
use crate::duration::parse_duration;
use crate::ingest::kinesis::KinesisOptions;
use crate::qa::sheet_store::SheetStoreUrl;
use crate::serve::{find_ruleset, LogFormat, ServeConfig, SheetTarget};
use crate::sinks::SinkUrl;
use crate::sources::kinesis::StartPosition;

const AFTER_HELP: &str = "\
Every setting can come from, in order of precedence: the flag, its
environment variable (shown with each flag), the --config file (TOML, the
flag names as keys: `listen = \"0.0.0.0:8080\"`, `max-body-bytes = 1048576`,
durations as strings: `ttl = \"24h\"`), or the default.

Endpoints, and the credential each needs: a token of that role
(`Authorization: Bearer TOKEN`, from `callqa tokens create`, or `callqa users
token` for a person's scripts), a person's session (the cookie POST
/v1/login sets; writes also send `X-CSRF-Token`), or the Firehose access key.
Admin passes everywhere:
  POST /v1/firehose              access key  Firehose HTTP endpoint delivery
  POST /v1/firehose/transform    ingest      Firehose data transformation
  POST /v1/ctr                   ingest      contact records as JSON or NDJSON; per-record results
  POST /v1/sessions/evaluate     evaluate    a session document in, its QA sheet out
  GET  /v1/rules                 any         rules: version, module SHA-256, state, counts
  POST /v1/rules/reload          admin       reload the rules now (also on SIGHUP)
  POST /v1/rules/{id}/release    admin       end a rule's quarantine
  POST /v1/login                 none        {\"username\", \"password\"}: session cookie, csrf_token
  POST /v1/logout                none        ends the session
  GET  /v1/me                    any         who the credential is (and the csrf_token)
  GET  /metrics                  none        Prometheus (OpenMetrics text)
  GET  /healthz                  none
A write that a browser sends from another site's page (Sec-Fetch-Site:
cross-site, or an Origin other than this server) is refused with 403.

Example:
  callqa tokens create --name transform-lambda --role ingest   # prints the token once
  callqa serve --rules rules/ --out lake/ctr --listen 127.0.0.1:8080 \\
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
    /// partitions, or `s3://BUCKET/PREFIX` for the same layout in S3, as
    /// `callqa ingest --out` writes them. Required.
    #[arg(long, short = 'o', value_name = "DIR|s3://BUCKET/PREFIX", env = "CALLQA_OUT")]
    pub out: Option<String>,

    /// Also read contact records from this Kinesis data stream
    /// (`kinesis://STREAM` or its name), continuously, sharing its shards
    /// with every host using the same --leases table; they go through the
    /// same dedup, sink and real-time QA as records posted over HTTP. Its
    /// unusable records go to the --dead-letter file with `.kinesis` added.
    #[arg(long, value_name = "STREAM", env = "CALLQA_KINESIS")]
    pub kinesis: Option<String>,

    /// With --kinesis: the DynamoDB table of shard leases [default: the
    /// dedup table's name with `-leases`].
    #[arg(long, value_name = "dynamodb://TABLE", env = "CALLQA_LEASES")]
    pub leases: Option<String>,

    /// With --kinesis: where a shard never read before starts:
    /// trim-horizon, latest or an RFC 3339 instant [default: trim-horizon].
    #[arg(long, value_name = "POSITION", env = "CALLQA_START_POSITION")]
    pub start_position: Option<String>,

    /// With --kinesis: how long a lease may go unrenewed before another
    /// host takes the shard [default: 10s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_FAILOVER")]
    pub failover: Option<String>,

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

    /// Where real-time QA sheets go: an NDJSON file they are appended to,
    /// `-` for stdout, or a sheet store that keeps each with its session
    /// (`sqlite:PATH`, or a path ending in .db, .sqlite, .sqlite3, or
    /// postgres://USER@HOST/DB; list it with `callqa sheets list`)
    /// [default: sheets.ndjson in --data-dir]. With a store, the sessions
    /// waiting to be evaluated are kept there too and resumed after a
    /// restart (even kill -9), by the same host and --out; with NDJSON they
    /// live in memory only and a restart forgets them.
    #[arg(long, value_name = "FILE|-|URL", env = "CALLQA_SHEETS")]
    pub sheets: Option<String>,

    /// Webhooks that get an alert, signed, for each failing item of a rule
    /// marked `alert` (TOML: [[webhook]] name, url, secret_env or secret,
    /// min_severity, link_base; see docs/alerts.md). Needs --sheets to be a
    /// store: alerts wait in its outbox until delivered.
    #[arg(long, value_name = "FILE", env = "CALLQA_WEBHOOKS")]
    pub webhooks: Option<PathBuf>,

    /// The key Firehose sends in `X-Amz-Firehose-Access-Key`; requests
    /// without it, or with another, get 401. Without a key configured,
    /// POST /v1/firehose refuses every request.
    #[arg(long, value_name = "KEY", env = "CALLQA_FIREHOSE_ACCESS_KEY", hide_env_values = true)]
    pub firehose_access_key: Option<String>,

    /// The machine tokens that POST /v1/ctr, /v1/firehose/transform,
    /// /v1/sessions/evaluate and the rules endpoints require, as `callqa
    /// tokens` writes them; re-read when it changes [default: tokens.json in
    /// --data-dir].
    #[arg(long, value_name = "FILE", env = "CALLQA_TOKENS")]
    pub tokens: Option<PathBuf>,

    /// The people who log in (POST /v1/login) or act through their tokens,
    /// as `callqa users` writes them; re-read when it changes [default:
    /// users.json in --data-dir].
    #[arg(long, value_name = "FILE", env = "CALLQA_USERS")]
    pub users: Option<PathBuf>,

    /// How long a login session lasts, in hours [default: 12]. The cookie is
    /// signed with session.key in --data-dir, so sessions survive a restart.
    #[arg(long, value_name = "HOURS", env = "CALLQA_SESSION_HOURS")]
    pub session_hours: Option<u32>,

    /// Session cookies without the Secure attribute, so a browser sends them
    /// over plain HTTP: only behind a proxy that terminates TLS on the same
    /// host, or for local testing.
    #[arg(long, env = "CALLQA_INSECURE_COOKIES")]
    pub insecure_cookies: bool,

    /// Largest request body, compressed or not (413 past it) [default:
    /// 64 MiB, Firehose's largest buffer].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<u64>,

    /// Records larger than this are dead-lettered [default: 1 MiB].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_RECORD_BYTES")]
    pub max_record_bytes: Option<u64>,

    /// Largest session document for POST /v1/sessions/evaluate (413 past
    /// it) [default: 16 MiB; a 10-minute call is about 100 KB].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_SESSION_BYTES")]
    pub max_session_bytes: Option<u64>,

    /// Request body bytes held at once across all requests; past it a
    /// request is answered 503 with Retry-After [default: 256 MiB].
    #[arg(long, value_name = "BYTES", env = "CALLQA_MAX_BUFFERED_BYTES")]
    pub max_buffered_bytes: Option<u64>,

    /// Connections served at once; more are answered 503 (GET /healthz
    /// still answers) and closed [default: 1024].
    #[arg(long, value_name = "N", env = "CALLQA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// A connection that has not sent a complete request head within this
    /// long is closed, new or idle between requests [default: 10s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,

    /// How long a client has to send a whole request body (408 past it)
    /// [default: 60s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,

    /// On SIGTERM or SIGINT: stop accepting, let requests in flight finish
    /// for at most this long, then exit [default: 30s].
    #[arg(long, value_name = "DURATION", env = "CALLQA_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,

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

    /// How long after a sheet's verdict (its evaluation or latest review)
    /// its agent may dispute an item [default: 7d].
    #[arg(long, value_name = "DURATION", env = "CALLQA_DISPUTE_WINDOW")]
    pub dispute_window: Option<String>,

    /// Log format: human (default) or json.
    #[arg(long, value_enum, env = "CALLQA_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(flatten)]
    pub cache: crate::cli::check::CacheArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = resolve(&args)?;
    crate::serve::init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("callqa-serve").build()?;
    runtime.block_on(crate::serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// The config file: the flags' long names as keys, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    /// The similarity provider of rulesets without a `[similarity]` table
    /// (a table, as in a ruleset; no flag).
    similarity: Option<crate::similarity::SimilarityConfig>,
    listen: Option<String>,
    ready_file: Option<PathBuf>,
    rules: Option<PathBuf>,
    rules_poll: Option<String>,
    out: Option<String>,
    kinesis: Option<String>,
    leases: Option<String>,
    start_position: Option<String>,
    failover: Option<String>,
    gzip: Option<bool>,
    store: Option<String>,
    store_concurrency: Option<usize>,
    data_dir: Option<PathBuf>,
    fingerprint: Option<String>,
    ttl: Option<String>,
    lease: Option<String>,
    dead_letter: Option<PathBuf>,
    sheets: Option<String>,
    webhooks: Option<PathBuf>,
    firehose_access_key: Option<String>,
    tokens: Option<PathBuf>,
    users: Option<PathBuf>,
    session_hours: Option<u32>,
    insecure_cookies: Option<bool>,
    max_body_bytes: Option<u64>,
    max_record_bytes: Option<u64>,
    max_evaluations: Option<usize>,
    max_session_bytes: Option<u64>,
    max_buffered_bytes: Option<u64>,
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    shutdown_timeout: Option<String>,
    analysis: Option<PathBuf>,
    analysis_wait: Option<String>,
    events: Option<PathBuf>,
    settle: Option<String>,
    incomplete_after: Option<String>,
    session_retention: Option<String>,
    dispute_window: Option<String>,
    log_format: Option<LogFormat>,
    cache_dir: Option<PathBuf>,
    no_cache: Option<bool>,
}

fn duration(name: &str, flag: &Option<String>, file: &Option<String>, default: &str) -> anyhow::Result<Duration> {
    let text = flag.as_deref().or(file.as_deref()).unwrap_or(default);
    parse_duration(text).map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

/// Flags and environment variables (clap) over the TOML config file over
/// defaults.
fn resolve(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
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
    let rules =
        args.rules.clone().or(file.rules).context("no rules: pass --rules DIR (or `rules = \"DIR\"` in --config)")?;
    let ruleset = find_ruleset(&rules)?;
    let out = args.out.clone().or(file.out).context("no sink for contact records: pass --out DIR")?;
    let out = SinkUrl::parse(&out)?;
    anyhow::ensure!(out != SinkUrl::Stdout, "--out -: serve writes records to a directory or s3://BUCKET/PREFIX");
    let data_dir = match args.data_dir.clone().or(file.data_dir) {
        Some(dir) => dir,
        None => default_data_dir(None)?,
    };
    let store = args.store.clone().or(file.store);
    let kinesis = match args.kinesis.clone().or(file.kinesis) {
        None => None,
        Some(stream) => {
            let stream = match crate::sources::kinesis::parse_stream(&stream) {
                Some(parsed) => parsed?,
                None => {
                    crate::sources::kinesis::parse_stream(&format!("kinesis://{stream}")).expect("a kinesis URL")?
                }
            };
            let store_url = StoreUrl::resolve(store.as_deref(), &data_dir)?;
            let leases = args.leases.clone().or(file.leases);
            let start = args.start_position.clone().or(file.start_position).unwrap_or_else(|| "trim-horizon".into());
            Some(KinesisOptions {
                stream,
                lease_table: crate::cli::ingest::lease_table(leases.as_deref(), &store_url)?,
                start: StartPosition::parse(&start)?,
                follow: true,
                failover: duration("failover", &args.failover, &file.failover, "10s")?.max(Duration::from_millis(400)),
                batch_size: 1000,
                max_record_bytes: args.max_record_bytes.or(file.max_record_bytes).unwrap_or(1 << 20),
            })
        }
    };
    let fingerprint = match (&args.fingerprint, &file.fingerprint) {
        (Some(mode), _) => *mode,
        (None, Some(text)) => <FingerprintMode as clap::ValueEnum>::from_str(text, true)
            .map_err(|_| anyhow::anyhow!("fingerprint = {text:?}: use raw, canonical or key"))?,
        (None, None) => FingerprintMode::Canonical,
    };
    let sheets = match args.sheets.clone().or(file.sheets) {
        Some(s) if s == "-" => SheetTarget::Stdout,
        Some(s) if SheetStoreUrl::names_a_store(&s) => SheetTarget::Store(SheetStoreUrl::parse(&s)?),
        Some(s) => SheetTarget::File(PathBuf::from(s)),
        None => SheetTarget::File(data_dir.join("sheets.ndjson")),
    };
    let webhooks = match args.webhooks.clone().or(file.webhooks) {
        None => None,
        Some(path) => {
            if !matches!(sheets, SheetTarget::Store(_)) {
                bail!(
                    "--webhooks {} needs a sheet store: alerts wait in its outbox until delivered, so a restart loses \
                     none. Pass --sheets sqlite:PATH (or postgres://USER@HOST/DB)",
                    path.display()
                );
            }
            Some(crate::alerts::WebhookSettings::load(&path)?)
        }
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
    let at_least_one = |name: &str, value: u64| -> anyhow::Result<u64> {
        anyhow::ensure!(value > 0, "--{name} must be at least 1");
        Ok(value)
    };
    let max_session_bytes =
        at_least_one("max-session-bytes", args.max_session_bytes.or(file.max_session_bytes).unwrap_or(16 << 20))?;
    let max_buffered_bytes =
        at_least_one("max-buffered-bytes", args.max_buffered_bytes.or(file.max_buffered_bytes).unwrap_or(256 << 20))?;
    let max_connections =
        at_least_one("max-connections", args.max_connections.or(file.max_connections).unwrap_or(1024) as u64)? as usize;
    let max_evaluations = args.max_evaluations.or(file.max_evaluations).unwrap_or(64);
    // The engine's instance pool holds 256 live instances; stay under it.
    if !(1..=200).contains(&max_evaluations) {
        bail!("--max-evaluations must be between 1 and 200");
    }
    let key = args.firehose_access_key.clone().or(file.firehose_access_key).filter(|k| !k.is_empty());
    let tokens = args.tokens.clone().or(file.tokens).unwrap_or_else(|| data_dir.join("tokens.json"));
    let users = args.users.clone().or(file.users).unwrap_or_else(|| data_dir.join("users.json"));
    let session_hours = args.session_hours.or(file.session_hours).unwrap_or(12);
    // A year: past it, a stolen cookie is worth more than the convenience.
    if !(1..=8760).contains(&session_hours) {
        bail!("--session-hours must be between 1 and 8760");
    }
    Ok(ServeConfig {
        listen,
        ready_file: args.ready_file.clone().or(file.ready_file),
        ruleset,
        rules_poll: duration("rules-poll", &args.rules_poll, &file.rules_poll, "1s")?.max(Duration::from_millis(50)),
        out,
        kinesis,
        gzip: args.gzip || file.gzip.unwrap_or(false),
        store,
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
        webhooks,
        firehose_access_key: key,
        tokens,
        users,
        session_lifetime: Duration::from_secs(u64::from(session_hours) * 3600),
        insecure_cookies: args.insecure_cookies || file.insecure_cookies.unwrap_or(false),
        max_body_bytes,
        max_record_bytes: args.max_record_bytes.or(file.max_record_bytes).unwrap_or(1 << 20),
        max_evaluations,
        max_session_bytes,
        max_buffered_bytes,
        max_connections,
        header_timeout: duration("header-timeout", &args.header_timeout, &file.header_timeout, "10s")?
            .max(Duration::from_millis(100)),
        body_timeout: duration("body-timeout", &args.body_timeout, &file.body_timeout, "60s")?
            .max(Duration::from_millis(100)),
        shutdown_timeout: duration("shutdown-timeout", &args.shutdown_timeout, &file.shutdown_timeout, "30s")?,
        analysis: args.analysis.clone().or(file.analysis),
        analysis_wait: duration("analysis-wait", &args.analysis_wait, &file.analysis_wait, "10m")?,
        events: args.events.clone().or(file.events),
        settle: duration("settle", &args.settle, &file.settle, "1s")?,
        incomplete_after: duration("incomplete-after", &args.incomplete_after, &file.incomplete_after, "1h")?,
        session_retention: duration("session-retention", &args.session_retention, &file.session_retention, "1h")?,
        dispute_window: chrono::Duration::from_std(duration(
            "dispute-window",
            &args.dispute_window,
            &file.dispute_window,
            "7d",
        )?)
        .context("--dispute-window is too long")?,
        log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Human),
        cache_dir,
        similarity: file.similarity,
    })
}
