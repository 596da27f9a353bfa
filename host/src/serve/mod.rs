//! `callqa serve`: one long-lived process per host that takes contact
//! records from Kinesis Data Firehose (or plain HTTP), removes duplicates,
//! evaluates each session with the QA rules as soon as it is complete, and
//! swaps rules without a restart.
//!
//! - [`config`]: flags, environment, config file.
//! - [`live_rules`] and [`rules_watcher`]: the hot-loaded ruleset.
//! - [`ingestor`]: the dedup pipeline, per request, durable before answering.
//! - [`firehose`], [`ctr_routes`], [`session_routes`], [`rules_routes`],
//!   [`router`]: the HTTP API.
//! - [`realtime_qa`] and [`sheet_sink`]: sessions evaluated when complete.
//! - [`metrics`]: what `GET /metrics` reports.
//! - [`auth`], [`role`], [`token_store`], [`user_store`], [`web_session`]
//!   and [`login_routes`]: who may call what, and logging people in.

pub mod api_error;
pub mod app_state;
pub mod auth;
pub mod config;
pub mod ctr_routes;
pub mod firehose;
pub mod http_server;
pub mod ingestor;
pub mod json_body;
pub mod live_rules;
pub mod login_routes;
pub mod metrics;
pub mod pages;
pub mod realtime_qa;
pub mod request_body;
pub mod role;
pub mod router;
pub mod rules_routes;
pub mod rules_watcher;
pub mod session_routes;
pub mod shadow_report;
pub mod sheet_routes;
pub mod sheet_sink;
pub mod token_store;
pub mod user_routes;
pub mod user_store;
pub mod web_session;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::sync::Semaphore;

pub use config::{find_ruleset, LogFormat, ServeConfig, SheetTarget};

use app_state::{AppState, RecentAnswers};
use http_server::ConnectionLimits;
use ingestor::Ingestor;
use live_rules::{reload_in_background, LiveRules};
use metrics::Metrics;
use realtime_qa::{RealtimeQa, RealtimeSettings};
use request_body::BodyBudget;
use sheet_sink::SheetSink;

use crate::ctr::RecordDecoder;
use crate::dedup::{DedupStore, StoreSettings, StoreUrl, SystemClock};
use crate::rules::RuleEngine;

/// Human-readable logs on stderr, or JSON lines; `RUST_LOG` filters
/// (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (tests, embedding) keeps the first.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());

    let engine = Arc::new(RuleEngine::new(config.cache_dir.clone())?);
    let rules = {
        let (engine, path, metrics) = (engine.clone(), config.ruleset.clone(), metrics.clone());
        let similarity = config.similarity.clone();
        tokio::task::spawn_blocking(move || LiveRules::load_with(engine, &path, metrics, similarity))
            .await
            .context("loading the rules failed")??
    };
    let rules = Arc::new(rules);
    let rules_ms = started.elapsed().as_millis() as u64;
    tracing::info!(ruleset = %config.ruleset.display(), rules = rules.current().ruleset.rules.len(), elapsed_ms = rules_ms, "rules loaded");

    let store = open_store(&config).await?;
    let sink = {
        let (out, id, gzip) = (config.out.clone(), store.instance_id().to_string(), config.gzip);
        tokio::task::spawn_blocking(move || out.open(&id, gzip)).await.context("opening the sink failed")??
    };
    let ingestor = Ingestor::open(
        store.clone(),
        sink,
        config.dead_letter.as_deref(),
        RecordDecoder::new(config.fingerprint),
        metrics.clone(),
    )
    .await?;

    let evaluations = Arc::new(Semaphore::new(config.max_evaluations));
    // Blocking: PostgreSQL's client runs its own runtime, not inside ours.
    let target = config.sheets.clone();
    let webhooks = config.webhooks.as_ref().map(|w| w.webhooks.clone()).unwrap_or_default();
    let (sheets, sheet_store) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = match &target {
            SheetTarget::Store(url) => Some(Arc::new(url.open()?)),
            _ => None,
        };
        Ok((SheetSink::open(&target, &webhooks)?, store))
    })
    .await??;
    // Alerts owed from now on, and any a previous run left in the outbox.
    let alerts = match (config.webhooks.clone(), sheets.outbox()) {
        (Some(settings), Some((store, wake))) => {
            Some(crate::alerts::Delivery::spawn(store, settings, wake, metrics.clone())?)
        }
        _ => None,
    };
    let realtime = Arc::new(RealtimeQa::new(
        RealtimeSettings {
            analysis: config.analysis.clone(),
            analysis_wait: config.analysis_wait,
            events: config.events.clone(),
            settle: config.settle,
            incomplete_after: config.incomplete_after,
            retention: config.session_retention,
            owner: realtime_qa::owner_of(&config.out),
        },
        sheets,
        rules.clone(),
        evaluations.clone(),
        metrics.clone(),
    ));
    // Before the listener opens: a record must find its session resumed.
    let resumed = realtime.resume().await?;
    if resumed > 0 {
        tracing::info!(sessions = resumed, "pending sessions resumed from the sheet store");
    }
    tokio::spawn(realtime.clone().run());
    let (stop_stream, stream_stopped) = tokio::sync::watch::channel(false);
    let stream = match &config.kinesis {
        Some(options) => Some(tokio::spawn(
            read_stream(&config, options.clone(), store.clone(), realtime.clone(), metrics.clone(), stream_stopped)
                .await?,
        )),
        None => None,
    };
    let watcher = rules_watcher::spawn(rules.clone(), config.rules_poll);
    tokio::spawn(reload_on_sighup(rules.clone()));

    http_server::raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let tokens = Arc::new(token_store::TokenStore::open(config.tokens.clone())?);
    let users = Arc::new(user_store::UserStore::open(config.users.clone())?);
    let sessions =
        Arc::new(web_session::WebSessions::open(&config.data_dir, config.session_lifetime, !config.insecure_cookies)?);
    let state = Arc::new(AppState {
        tokens,
        users,
        sessions,
        login: login_routes::LoginState::new()?,
        delivered: RecentAnswers::new(100_000, config.ttl),
        transformed: RecentAnswers::new(10_000, config.ttl),
        config: config.clone(),
        rules,
        ingestor,
        realtime,
        sheet_store,
        metrics,
        evaluations,
        bodies: BodyBudget::new(config.max_buffered_bytes, config.body_timeout),
        started,
    });
    let app = router::build(state.clone());
    let overflow = router::overflow(state.clone());
    if let Some(path) = &config.ready_file {
        crate::atomic_write::write_atomically(path, address.to_string().as_bytes())
            .with_context(|| format!("cannot write --ready-file {}", path.display()))?;
    }
    tracing::info!(%address, startup_ms = started.elapsed().as_millis() as u64, rules_ms, store = %state.ingestor.describe_store(), sink = %config.out, sheets = %state.realtime.describe_sink(), "callqa serve listening");

    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        shutdown_timeout: config.shutdown_timeout,
    };
    http_server::serve(listener, app, overflow, limits, shutdown_signal()).await;
    watcher.abort();
    if let Some(alerts) = alerts {
        alerts.shutdown(config.shutdown_timeout).await;
    }
    if let Some(stream) = stream {
        tracing::info!("shutting down: giving the shard leases back");
        let _ = stop_stream.send(true);
        match stream.await {
            Ok(Ok(summary)) => {
                tracing::info!(read = summary.total.read, unique = summary.total.unique, "stream reader stopped")
            }
            Ok(Err(err)) => tracing::error!("the stream reader failed: {err:#}"),
            Err(err) => tracing::error!("the stream reader panicked: {err}"),
        }
    }
    tracing::info!("shutting down: closing the dedup store");
    state.ingestor.close().await
}

/// `--kinesis`: the stream's shards under leases, into the same store (the
/// embedded one is opened once per process), sink and real-time QA.
async fn read_stream(
    config: &ServeConfig,
    options: crate::ingest::kinesis::KinesisOptions,
    store: Arc<dyn DedupStore>,
    realtime: Arc<RealtimeQa>,
    metrics: Arc<Metrics>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<crate::ingest::kinesis::KinesisSummary>>> {
    use crate::ingest::kinesis::{Scheduler, SinkSetup, StreamProgress};
    let url = StoreUrl::resolve(config.store.as_deref(), &config.data_dir)?;
    let setup = SinkSetup {
        opened: (!url.is_shared()).then_some(store),
        store: url,
        settings: StoreSettings { ttl: config.ttl, lease: config.lease, clock: Arc::new(SystemClock) },
        concurrency: config.store_concurrency,
        sink: config.out.clone(),
        gzip: config.gzip,
        decoder: RecordDecoder::new(config.fingerprint),
        on_stored: Some(Arc::new(move |stored: Vec<Vec<u8>>| {
            let realtime = realtime.clone();
            Box::pin(async move { realtime.offer(&stored).await }) as futures::future::BoxFuture<'static, ()>
        })),
    };
    // Its own file: two writers appending to one dead-letter file could
    // interleave their lines.
    let letters = config.dead_letter.as_ref().map(|path| {
        let mut name = path.clone().into_os_string();
        name.push(".kinesis");
        std::path::PathBuf::from(name)
    });
    let dead_letters = crate::sinks::DeadLetterSink::open(letters.as_deref())?;
    let progress = StreamProgress::default();
    metrics.watch_stream(progress.clone());
    let scheduler = Scheduler::new(options, setup, dead_letters, progress).await?;
    tracing::info!(worker = scheduler.worker(), "reading the Kinesis stream");
    Ok(scheduler.run(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }))
}

async fn open_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn DedupStore>> {
    let settings = StoreSettings { ttl: config.ttl, lease: config.lease, clock: Arc::new(SystemClock) };
    let url = StoreUrl::resolve(config.store.as_deref(), &config.data_dir)?;
    Ok(Arc::from(url.open(settings, &config.out.identity(), config.store_concurrency).await?))
}

async fn reload_on_sighup(rules: Arc<LiveRules>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; use POST /v1/rules/reload");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the rules");
            if let Err(err) = reload_in_background(rules.clone(), true).await {
                tracing::error!("rules reload failed to run: {err:#}");
            }
        }
    }
    #[cfg(not(unix))]
    drop(rules);
}

/// Resolves on SIGINT or SIGTERM (`callqa serve`, `callqa ingest --follow`).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
