//! Alerts from `serve` to webhooks: a failing item of a rule marked
//! `alert` is enqueued with its sheet, in one transaction, and delivered
//! signed, at least once, to a real HTTP receiver started here, across a
//! receiver outage and a `kill -9` of `serve`. The outbox itself runs on
//! both store backends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use callqa::alerts::alert::{event_id, owed};
use callqa::alerts::signature::{verify, ATTEMPT_HEADER, DEFAULT_TOLERANCE, EVENT_ID_HEADER, SIGNATURE_HEADER};
use callqa::alerts::WebhookSettings;
use callqa::qa::sheet_store::outbox::OutboxRow;
use callqa::qa::sheet_store::{SheetFilter, SheetRecord, SheetStore, SheetStoreUrl, Written};
use callqa::qa::Inspector;
use callqa::rules::Ruleset;
use callqa::session::Session;
use chrono::Utc;
use serde_json::Value;

use crate::common;
use crate::serve_support::{sample_ctr_ndjson, Server};
use crate::sheet_store::Backend;

/// The sample contact of `samples/ctr/` (one voice call that reached an agent).
const CONTACT: &str = "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47";
const OPS_SECRET: &str = "ops-secret-0123456789abcdef";
const PAGER_SECRET: &str = "pager-secret-0123456789abcdef";

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread")] async fn $scenario() { super::$scenario(super::Backend::Sqlite).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread")] async fn $scenario() { super::$scenario(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    the_outbox_is_written_with_the_sheet_once_and_claimed_until_delivered,
    failing_items_of_alert_rules_reach_each_webhook_signed_once,
);

/// The sample ruleset with alerts: a greeting rule marked `alert` (not
/// applicable to the sample contact, which has no transcript), and
/// scripted items on `connected-to-agent-at`, which the contact has: three
/// fail (critical, warning, no alert), one passes (critical).
fn alert_ruleset(dir: &Path) -> PathBuf {
    let sample = std::fs::read_to_string(common::repo_root().join("samples/rules.toml")).unwrap();
    let sample = sample.replacen("id = \"greeting-hotline\"\n", "id = \"greeting-hotline\"\nalert = true\n", 1);
    assert!(sample.contains("alert = true"), "samples/rules.toml changed: mark another rule");
    let scripted = |id: &str, alert: &str, script: &str| {
        format!(
            "\n[[rule]]\nid = \"{id}\"\nmodule = \"bundled:script\"\n{alert}\n[rule.operators.C]\nkind = \"contact\"\n\
             field = \"connected-to-agent-at\"\n[rule.script]\ntext = '''\n{script}\n'''\n"
        )
    };
    let text = format!(
        "{sample}{}{}{}{}{}",
        scripted("reached-agent-critical", "alert = \"critical\"", "return C;"),
        scripted("reached-agent-warning", "alert = true", "return C;"),
        scripted("reached-agent-quiet", "alert = false", "return C;"),
        scripted("reached-agent-unmarked", "", "return C;"),
        scripted("not-reached-critical", "alert = \"critical\"", "return !C;"),
    );
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `ops` takes every alert, with links; `pager` only critical ones.
fn webhooks_text(receiver: SocketAddr, pager_only: bool) -> String {
    let pager = format!(
        "[[webhook]]\nname = \"pager\"\nurl = \"http://{receiver}/pager\"\nsecret = \"{PAGER_SECRET}\"\n\
         min_severity = \"critical\"\n"
    );
    let ops = format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"http://{receiver}/ops\"\nsecret = \"{OPS_SECRET}\"\n\
         link_base = \"https://qa.example.com/sheets/\"\n"
    );
    let retry = "retry_initial = \"200ms\"\nretry_max = \"1s\"\ntimeout = \"5s\"\n";
    if pager_only {
        format!("{retry}{pager}")
    } else {
        format!("{retry}{ops}{pager}")
    }
}

fn write_webhooks(dir: &Path, receiver: SocketAddr, pager_only: bool) -> PathBuf {
    let path = dir.join("webhooks.toml");
    std::fs::write(&path, webhooks_text(receiver, pager_only)).unwrap();
    path
}

/// A loopback address nothing listens on (yet): a receiver that is down.
fn unused_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn open(store: &str) -> SheetStore {
    SheetStoreUrl::parse(store).unwrap().open().unwrap()
}

/// Blocking store work from an async test (PostgreSQL's client runs its
/// own runtime and may not run inside ours).
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(work)
}

// ---------------------------------------------------------------------------
// The receiver

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    hook: String,
    event_id: String,
    attempt: u32,
    verified: bool,
    answered: u16,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Requests still to refuse with 503 before accepting.
    refuse: AtomicU32,
}

/// A webhook receiver on loopback that checks every signature as a
/// customer's receiver would, and records what came.
struct Receiver {
    state: Arc<ReceiverState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    UrlPath(hook): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let secret = if hook == "ops" { OPS_SECRET } else { PAGER_SECRET };
    let verified = verify(secret.as_bytes(), &header(SIGNATURE_HEADER), &body, DEFAULT_TOLERANCE).is_ok();
    let refuse = state.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = match (verified, refuse) {
        (false, _) => StatusCode::UNAUTHORIZED,
        (true, true) => StatusCode::SERVICE_UNAVAILABLE,
        (true, false) => StatusCode::NO_CONTENT,
    };
    state.received.lock().unwrap().push(Received {
        hook,
        event_id: header(EVENT_ID_HEADER),
        attempt: header(ATTEMPT_HEADER).parse().unwrap_or(0),
        verified,
        answered: status.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    status
}

impl Receiver {
    /// Listens on `address`, refusing the first `refuse` requests with 503.
    async fn start(address: SocketAddr, refuse: u32) -> Receiver {
        let state = Arc::new(ReceiverState { refuse: AtomicU32::new(refuse), ..ReceiverState::default() });
        let app = axum::Router::new().route("/{hook}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver { state, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The requests accepted (2xx) for `hook`.
    fn delivered(&self, hook: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.hook == hook && r.answered < 300).collect()
    }

    /// Waits until `hook` has accepted `n` requests.
    async fn wait_for(&self, hook: &str, n: usize, server: &Server) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.delivered(hook).len() < n {
            assert!(
                Instant::now() < deadline,
                "{hook} got {:?}, not {n} deliveries:\n{}",
                self.received(),
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers over serve

async fn post_sample_ctrs(server: &Server) {
    let response = server
        .client()
        .post(server.url("/v1/ctr"))
        .header("content-type", "application/x-ndjson")
        .body(sample_ctr_ndjson())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// Waits until `/metrics` shows `series` at `want(value)`; returns the value.
async fn wait_metric(server: &Server, series: &str, want: impl Fn(f64) -> bool) -> f64 {
    let client = crate::serve_support::client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = server.metric(&client, series).await;
        if want(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{series} stayed at {value}:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivered_series(hook: &str) -> String {
    format!("callqa_alerts_delivered_total{{webhook=\"{hook}\"}}")
}

fn failed_series(hook: &str) -> String {
    format!("callqa_alert_attempts_failed_total{{webhook=\"{hook}\"}}")
}

fn pending_series(hook: &str) -> String {
    format!("callqa_alerts_pending{{webhook=\"{hook}\"}}")
}

/// The outbox as the store has it, once `ready` accepts it.
async fn wait_outbox(store: &str, server: &Server, ready: impl Fn(&[OutboxRow]) -> bool) -> Vec<OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = blocking(|| open(store).outbox().unwrap());
        if ready(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "the outbox stayed {rows:?}:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serve_args(rules: &Path, store: &str, webhooks: &Path) -> Vec<String> {
    vec![
        "--rules".into(),
        rules.display().to_string(),
        "--sheets".into(),
        store.into(),
        "--webhooks".into(),
        webhooks.display().to_string(),
    ]
}

fn start(args: &[String]) -> Server {
    Server::start_in(tempfile::tempdir().unwrap(), args)
}

// ---------------------------------------------------------------------------
// The scenarios

async fn failing_items_of_alert_rules_reach_each_webhook_signed_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend.store(dir.path(), "sheets");
    let address = unused_address();
    let receiver = Receiver::start(address, 0).await;
    let server = start(&serve_args(&alert_ruleset(dir.path()), &store, &write_webhooks(dir.path(), address, false)));
    post_sample_ctrs(&server).await;

    receiver.wait_for("ops", 2, &server).await;
    receiver.wait_for("pager", 1, &server).await;
    wait_metric(&server, &pending_series("ops"), |v| v == 0.0).await;
    // Nothing else comes: not the passing item, not the rules without
    // `alert`, not the not-applicable greeting, not a second copy.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = receiver.received();
    assert!(received.iter().all(|r| r.verified && r.answered == 204 && r.attempt == 1), "{received:?}");
    assert_eq!(received.len(), 3, "{received:?}");

    let version = blocking(|| open(&store).list(&SheetFilter { limit: 10, ..SheetFilter::default() }).unwrap())[0]
        .ruleset_version
        .clone();
    let mut by_rule: HashMap<(String, String), Received> = HashMap::new();
    for r in received {
        let rule = r.body["rule_id"].as_str().unwrap().to_owned();
        by_rule.insert((r.hook.clone(), rule), r);
    }
    let mut keys: Vec<_> = by_rule.keys().cloned().collect();
    keys.sort();
    let key = |hook: &str, rule: &str| (hook.to_owned(), rule.to_owned());
    assert_eq!(
        keys,
        [
            key("ops", "reached-agent-critical"),
            key("ops", "reached-agent-warning"),
            key("pager", "reached-agent-critical")
        ]
    );

    let critical = &by_rule[&key("ops", "reached-agent-critical")];
    let body = &critical.body;
    assert_eq!(body["id"], event_id(CONTACT, &version, "reached-agent-critical"));
    assert_eq!(critical.event_id, body["id"].as_str().unwrap(), "the header names the body's event");
    assert_eq!(body["type"], "qa.item.failed");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["session_id"], CONTACT);
    assert_eq!(body["contact_id"], CONTACT);
    assert_eq!(body["channel"], "voice");
    assert_eq!(body["queue"], "TCC Refrig AC LLA");
    assert_eq!(body["team"], "TCC/TCC ALL");
    assert!(body["agent_id"].is_string(), "{body}");
    assert_eq!(body["ruleset_version"], version.as_str());
    assert_eq!(body["rule_version"], "0.1.0");
    assert!(body["reason"].as_str().unwrap().contains("returned true"), "{body}");
    let finding = body["findings"][0]["message"].as_str().unwrap();
    assert!(finding.starts_with("C: connected-to-agent-at"), "{body}");
    assert!(body["score"].is_number(), "{body}");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(body["link"], format!("https://qa.example.com/sheets/{CONTACT}"));

    // One event, one id, whichever webhook it goes to; the link is the webhook's.
    let paged = &by_rule[&key("pager", "reached-agent-critical")].body;
    assert_eq!(paged["id"], body["id"]);
    assert_eq!(paged["link"], Value::Null);
    let warning = &by_rule[&key("ops", "reached-agent-warning")].body;
    assert_eq!(warning["severity"], "warning");
    assert_ne!(warning["id"], body["id"]);

    assert_eq!(wait_metric(&server, &delivered_series("ops"), |v| v >= 2.0).await, 2.0);
    assert_eq!(wait_metric(&server, &delivered_series("pager"), |v| v >= 1.0).await, 1.0);
    let client = crate::serve_support::client();
    assert_eq!(server.metric(&client, &failed_series("ops")).await, 0.0);
    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        text.contains("callqa_alert_delivery_latency_seconds_count{webhook=\"ops\"} 2"),
        "no latency series:\n{text}"
    );

    let rows = blocking(|| open(&store).outbox().unwrap());
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.delivered_at.is_some() && r.attempts == 1 && r.last_status == Some(204)), "{rows:?}");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_for_a_while_gets_the_same_event_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::Sqlite.store(dir.path(), "sheets");
    let address = unused_address();
    let mut server = start(&serve_args(&alert_ruleset(dir.path()), &store, &write_webhooks(dir.path(), address, true)));
    post_sample_ctrs(&server).await;

    // Down: nothing listens. Attempts fail and are retried.
    wait_metric(&server, &failed_series("pager"), |v| v >= 3.0).await;
    assert_eq!(server.metric(&crate::serve_support::client(), &pending_series("pager")).await, 1.0);
    let log = server.log_text();
    assert!(log.contains("alert delivery failed") && log.contains("webhook=pager"), "{log}");

    // Up, but answering 503 once: that is a failure too.
    let receiver = Receiver::start(address, 1).await;
    receiver.wait_for("pager", 1, &server).await;
    wait_metric(&server, &pending_series("pager"), |v| v == 0.0).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let received = receiver.received();
    assert_eq!(received.len(), 2, "one refused, one accepted: {received:?}");
    assert_eq!((received[0].answered, received[1].answered), (503, 204));
    assert!(received.iter().all(|r| r.verified && r.event_id == received[0].event_id), "{received:?}");
    assert_eq!(received[1].attempt, received[0].attempt + 1);
    let failed = server.metric(&crate::serve_support::client(), &failed_series("pager")).await;
    assert_eq!(f64::from(received[1].attempt), failed + 1.0, "every attempt before the delivery was counted");
    assert_eq!(server.metric(&crate::serve_support::client(), &delivered_series("pager")).await, 1.0);

    let rows = blocking(|| open(&store).outbox().unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_id, received[0].event_id);
    assert_eq!(rows[0].attempts, received[1].attempt);
    assert_eq!(rows[0].last_status, Some(204));
    assert!(rows[0].delivered_at.is_some());

    // Delivery stops with serve.
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(30)).expect("serve did not stop on SIGTERM");
    assert!(status.success(), "{}", server.log_text());
    assert!(server.log_text().contains("alert delivery stopped"), "{}", server.log_text());
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_pending_when_serve_is_killed_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Backend::Sqlite.store(dir.path(), "sheets");
    let address = unused_address();
    let args = serve_args(&alert_ruleset(dir.path()), &store, &write_webhooks(dir.path(), address, true));
    let mut first = start(&args);
    post_sample_ctrs(&first).await;
    // Owed and tried, the receiver down: then kill -9.
    let before = wait_outbox(&store, &first, |rows| rows.first().is_some_and(|r| r.attempts >= 1)).await;
    first.signal(libc::SIGKILL);
    assert!(first.wait_exit(Duration::from_secs(10)).is_some(), "serve survived SIGKILL");
    assert!(before[0].delivered_at.is_none());

    let receiver = Receiver::start(address, 0).await;
    // A new process with a new dedup store, the same sheet store.
    let second = start(&args);
    receiver.wait_for("pager", 1, &second).await;
    let delivered = receiver.delivered("pager");
    assert_eq!(delivered[0].event_id, before[0].event_id);
    assert!(delivered[0].verified);
    assert!(delivered[0].attempt > before[0].attempts, "{delivered:?} after {before:?}");
    let rows = wait_outbox(&store, &second, |rows| rows[0].delivered_at.is_some()).await;
    assert_eq!(rows.len(), 1);

    // The same contact again, to a process that has not seen it: the
    // session is evaluated again, under the same ruleset, so its sheet is
    // stored already and owes nothing more.
    post_sample_ctrs(&second).await;
    wait_metric(&second, "callqa_sheets_total{source=\"realtime\"}", |v| v >= 1.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = blocking(|| open(&store).outbox().unwrap());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    assert_eq!(blocking(|| open(&store).count().unwrap()), 1);
    receiver.stop().await;
}

async fn the_outbox_is_written_with_the_sheet_once_and_claimed_until_delivered(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store_url = backend.store(dir.path(), "sheets");
    let ruleset = Arc::new(Ruleset::load(&common::engine(), &alert_ruleset(dir.path())).unwrap());
    let text = std::fs::read(common::repo_root().join("samples/sessions/voice-zh-fridge-hotline-fail.json")).unwrap();
    let session = Arc::new(Session::from_json(&text).unwrap());
    let sheet = Inspector::new(common::engine(), ruleset.clone()).inspect(session.clone());
    let settings = WebhookSettings::parse(&webhooks_text(unused_address(), false), "hooks.toml", |_| None).unwrap();
    let names: Vec<String> = settings.webhooks.iter().map(|w| w.name.clone()).collect();
    let now = Utc::now();
    let record = SheetRecord { sheet: &sheet, session: &session, ruleset_version: &ruleset.version, evaluated_at: now };
    let alerts = owed(&record, &ruleset, &settings.webhooks).unwrap();
    let mut owed_to: Vec<String> = alerts
        .iter()
        .map(|a| {
            let body: Value = serde_json::from_str(&a.payload).unwrap();
            assert_eq!(body["id"], a.event_id);
            format!("{} {}", a.webhook, body["rule_id"].as_str().unwrap())
        })
        .collect();
    owed_to.sort();
    // This session's greeting came late: the compiled rule fails too, a
    // warning, which only `ops` takes.
    assert_eq!(
        owed_to,
        [
            "ops greeting-hotline",
            "ops reached-agent-critical",
            "ops reached-agent-warning",
            "pager reached-agent-critical"
        ]
    );

    blocking(|| {
        let store = open(&store_url);
        let first = store.put_with_alerts(&record, &alerts).unwrap();
        assert_eq!((first.written, first.enqueued), (Written::Stored, 4));
        // The same session under the same ruleset, evaluated again later:
        // stored already, nothing owed again.
        let later = SheetRecord { evaluated_at: now + chrono::Duration::seconds(5), ..record };
        let again = store.put_with_alerts(&later, &alerts).unwrap();
        assert_eq!((again.written, again.enqueued), (Written::AlreadyStored, 0));
        let rows = store.outbox().unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.attempts == 0 && r.delivered_at.is_none()), "{rows:?}");
        assert_eq!(store.pending_alerts().unwrap(), [("ops".to_owned(), 3), ("pager".to_owned(), 1)]);

        // Claimed: leased, so not claimed twice.
        let lease = Duration::from_secs(60);
        let claimed = store.claim_due_alerts(now, &names, 10, lease).unwrap();
        assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), rows.iter().map(|r| r.id).collect::<Vec<_>>());
        assert!(store.claim_due_alerts(now, &names, 10, lease).unwrap().is_empty());

        // A failed attempt, due again in a second; then delivered.
        store.reschedule_alert(rows[0].id, now + chrono::Duration::seconds(1), Some(503), "HTTP 503").unwrap();
        assert!(store.claim_due_alerts(now, &names, 10, lease).unwrap().is_empty());
        let retried = store.claim_due_alerts(now + chrono::Duration::seconds(1), &names, 10, lease).unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!((retried[0].id, retried[0].attempts), (rows[0].id, 1));
        assert_eq!((retried[0].last_status, retried[0].last_error.as_deref()), (Some(503), Some("HTTP 503")));
        store.mark_alert_delivered(rows[0].id, 200, now + chrono::Duration::seconds(2)).unwrap();
        assert_eq!(store.pending_alerts().unwrap(), [("ops".to_owned(), 2), ("pager".to_owned(), 1)]);

        // The other three were claimed and never answered for (a host that
        // died mid-attempt): due again when the lease ends, oldest first,
        // a batch at a time; a webhook not configured is left waiting.
        let after_lease = now + chrono::Duration::seconds(61);
        assert!(store.claim_due_alerts(after_lease, &["gone".to_owned()], 10, lease).unwrap().is_empty());
        let batch = store.claim_due_alerts(after_lease, &names, 1, lease).unwrap();
        assert_eq!(batch.iter().map(|r| r.id).collect::<Vec<_>>(), [rows[1].id]);
        let batch = store.claim_due_alerts(after_lease, &names, 10, lease).unwrap();
        assert_eq!(batch.iter().map(|r| r.id).collect::<Vec<_>>(), [rows[2].id, rows[3].id]);

        let delivered = store.outbox().unwrap().into_iter().find(|r| r.id == rows[0].id).unwrap();
        assert_eq!((delivered.attempts, delivered.last_status, delivered.last_error), (2, Some(200), None));
        // Delivered is final: never claimed again; pruned when old enough.
        assert_eq!(store.claim_due_alerts(now + chrono::Duration::days(1), &names, 10, lease).unwrap().len(), 3);
        assert_eq!(store.prune_delivered_alerts(now).unwrap(), 0);
        assert_eq!(store.prune_delivered_alerts(now + chrono::Duration::days(1)).unwrap(), 1);
        assert_eq!(store.outbox().unwrap().len(), 3);
    });
}

#[test]
fn bad_webhooks_files_and_alert_settings_are_refused_with_the_place_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("sheets.db").display());
    let serve = |webhooks: &str, sheets: &str| {
        let path = dir.path().join("hooks.toml");
        std::fs::write(&path, webhooks).unwrap();
        let output = common::callqa()
            .args(["serve", "--listen", "127.0.0.1:0", "--rules", "samples/rules.toml", "--out"])
            .arg(dir.path().join("out"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--sheets", sheets, "--webhooks"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!output.status.success(), "serve started with {webhooks}");
        (String::from_utf8_lossy(&output.stderr).into_owned(), path.display().to_string())
    };
    let good = "[[webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.com/a\"\nsecret = \"0123456789abcdef0\"\n";

    let (err, file) = serve(&format!("{good}min_severity = \"urgent\"\n"), &store);
    assert!(err.contains(&format!("{file}:5: webhook `ops`: `min_severity` \"urgent\"")), "{err}");
    let (err, file) = serve(&format!("{good}secret_env = \"CALLQA_TEST_NO_SUCH_VARIABLE\"\n"), &store);
    assert!(err.contains(&format!("{file}:5: webhook `ops`: `secret_env` and `secret` are both given")), "{err}");
    let (err, _) = serve("[[webhook]]\nname = \"ops\"\nsecret = \"0123456789abcdef0\"\n", &store);
    assert!(err.contains("line 1") && err.contains("missing field `url`"), "{err}");
    let (err, _) = serve(&format!("{good}colour = \"red\"\n"), &store);
    assert!(err.contains("line 5") && err.contains("unknown field `colour`"), "{err}");
    let (err, file) = serve(&good.replace("https://", "ftp://"), &store);
    assert!(err.contains(&format!("{file}:3: webhook `ops`: `url`")), "{err}");
    // Without a store, alerts would live only in memory.
    let (err, _) = serve(good, &dir.path().join("sheets.ndjson").display().to_string());
    assert!(err.contains("needs a sheet store") && err.contains("--sheets sqlite:PATH"), "{err}");

    // A ruleset's `alert` is true, false or a severity.
    let ruleset = |alert: &str| {
        let text = format!("[[rule]]\nid = \"silence\"\nmodule = \"bundled:silence\"\nalert = {alert}\n");
        Ruleset::parse(&common::engine(), &text, &common::repo_root())
    };
    let err = format!("{:#}", ruleset("\"urgent\"").err().unwrap());
    assert!(err.contains("rule `silence`") && err.contains("`alert = \"urgent\"` is not a severity"), "{err}");
    let err = format!("{:#}", ruleset("2").err().unwrap());
    assert!(err.contains("rule `silence`") && err.contains("`alert = 2`"), "{err}");
    assert_eq!(ruleset("true").unwrap().rules[0].alert, Some(callqa::alerts::Severity::Warning));
    assert_eq!(ruleset("\"critical\"").unwrap().rules[0].alert, Some(callqa::alerts::Severity::Critical));
    // Rulesets without `alert` stay valid, and alert nothing.
    let sample = Ruleset::load(&common::engine(), &common::repo_root().join("samples/rules.toml")).unwrap();
    assert!(sample.rules.iter().all(|r| r.alert.is_none()));
}
