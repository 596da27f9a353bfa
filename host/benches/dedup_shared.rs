//! Shared-store claim throughput on real servers (dynalite, redis-server),
//! with the round trip of a real DynamoDB endpoint put back in front of
//! dynalite:
//!
//! (a) the reference algorithm as the seed implemented it: for each record in
//!     turn, a `Query` for the fingerprint, then a `PutItem` when absent;
//! (b) callqa's claim protocol through the store API (conditional writes, 64
//!     in flight, one completion per batch);
//! (c) the same protocol with the claims batched: `TransactWriteItems` of up
//!     to 100 conditional puts, split on the `CancellationReasons` of a
//!     cancelled one, several in flight. Written here, not in the store, as a
//!     measured alternative; skipped (with a line saying so) when the server
//!     has no transactions, as dynalite 4.0.0 has none;
//!
//! and, at 0 ms only, (b) on redis-server.
//!
//! Every DynamoDB request of (a), (b) and (c) goes through a loopback TCP
//! proxy in this process (`latency_proxy`) that holds each chunk for half the
//! round trip in each direction, order kept per direction and one upstream
//! connection per client connection, so requests in flight overlap as they
//! do against DynamoDB. What it holds is trimmed (measured with sequential
//! `GetItem`s, through it and direct) until a client sees the round trip
//! asked for on top of the direct one: its own hop and wake-ups cost a few
//! tenths of a millisecond. It counts the requests by operation; the capacity
//! units per million records printed beside each rate are computed from
//! those counts (items are under 1 KB): a standard write 1 WCU, a strongly
//! consistent `GetItem` 1 RCU, an eventually consistent `Query` 0.5 RCU, a
//! transactional write 2 WCU per item.
//!
//! `cargo bench --bench dedup_shared` (uses AWS_ENDPOINT_URL_DYNAMODB and
//! CALLQA_TEST_REDIS_URL when set, else starts its own servers like the tests).
//! CALLQA_BENCH_RECORDS sets the number of records (default 10,000, 30% copies);
//! CALLQA_BENCH_RTT_MS the round trips to add, in ms (a comma list, default
//! 0,2,4); CALLQA_BENCH_REFERENCE_RECORDS the prefix of the records (a) claims
//! when the round trip is above 0 ms (default 1,000: it pays two round trips
//! per record; its rate is per record, so a prefix measures it fairly).

// `servers` takes its test data from the tests' `common` module.
#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "../tests/all/servers/mod.rs"]
mod servers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use callqa::ctr::{Fingerprint, UtcDay};
use callqa::dedup::{
    BatchStatus, ClaimBatch, ClaimOutcome, ClaimRequest, DedupStore, StoreSettings, StoreUrl, SystemClock,
};
use futures::stream::{self, StreamExt};
use latency_proxy::Proxy;
use servers::{Kind, Server};

/// Records per claimed batch, in (b) and (c) alike.
const BATCH: usize = 500;
/// Conditional puts in one `TransactWriteItems` (DynamoDB's limit).
const TRANSACTION_ITEMS: usize = 100;
/// Transactions of one batch in flight at once in (c).
const TRANSACTIONS_IN_FLIGHT: usize = 8;
/// The store's claim condition on a fingerprint never claimed.
const CLAIM_CONDITION: &str = "attribute_not_exists(id) OR expires_at <= :now";
const TTL_MILLIS: i64 = 86_400_000;
const LEASE_MILLIS: i64 = 30_000;
const DAY: i32 = 19800;

type Item = HashMap<String, AttributeValue>;
type Ops = BTreeMap<String, u64>;

fn main() {
    let records = env_number("CALLQA_BENCH_RECORDS", 10_000);
    let reference_records = env_number("CALLQA_BENCH_REFERENCE_RECORDS", 1_000).clamp(1, records);
    let rtts: Vec<f64> = match std::env::var("CALLQA_BENCH_RTT_MS").ok().filter(|v| !v.trim().is_empty()) {
        Some(list) => list
            .split(',')
            .map(|ms| {
                ms.trim().parse().ok().filter(|ms: &f64| ms.is_finite() && *ms >= 0.0).unwrap_or_else(|| {
                    panic!("CALLQA_BENCH_RTT_MS={list}: expected round trips in ms, comma-separated (0,2,4)")
                })
            })
            .collect(),
        None => vec![0.0, 2.0, 4.0],
    };
    let (lines, expected) = servers::generate(records, 99);
    let fingerprints: Vec<Fingerprint> = lines.iter().map(|l| Fingerprint::of(l.as_bytes())).collect();
    let contacts: Vec<String> = lines.iter().map(|l| servers::identity(l).0).collect();
    assert_eq!(distinct(&fingerprints), expected.len(), "one fingerprint per distinct record");
    println!("{} records, {} unique", lines.len(), expected.len());

    let dynamo = Server::shared(Kind::DynamoDb);
    let redis = Server::shared(Kind::Redis);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The proxy's own runtime: its chunks never wait behind a busy client worker.
    let proxy_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("latency-proxy")
        .enable_all()
        .build()
        .unwrap();
    let config = runtime.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
    let direct = client(&config, &dynamo.endpoint);
    let upstream = SocketAddr::from(([127, 0, 0, 1], dynamo.port));

    // A table for the probes: the round trip and whether transactions exist.
    let aux = format!("bench-aux-{}", std::process::id());
    runtime.block_on(create_table(&direct, &aux));
    let transactions = runtime.block_on(probe_transactions(&direct, &aux));
    if let Err(why) = &transactions {
        println!(
            "(c) skipped at every round trip: the server does not run TransactWriteItems ({why}; dynalite 4.0.0 \
             implements no transactions)"
        );
    }

    let mut rows = Vec::new();
    for (round, &rtt_ms) in rtts.iter().enumerate() {
        let proxy = Proxy::start(proxy_runtime.handle(), upstream, Duration::from_secs_f64(rtt_ms / 1000.0));
        let proxied = client(&config, &proxy.endpoint);
        // The proxy's own hop and wake-ups add a little to what it holds:
        // held for less, so that a client sees the round trip asked for.
        let mut held = rtt_ms;
        let (mut through, mut direct_ms) = (0.0, 0.0);
        for _ in 0..4 {
            (through, direct_ms) =
                runtime.block_on(async { (median_get(&proxied, &aux).await, median_get(&direct, &aux).await) });
            let excess = through - direct_ms - rtt_ms;
            if rtt_ms == 0.0 || excess.abs() < 0.05 || (excess < 0.0 && held == rtt_ms) {
                break;
            }
            held = (held - excess).clamp(0.0, rtt_ms);
            proxy.hold(Duration::from_secs_f64(held / 1000.0));
        }
        println!(
            "\n-- round trip {rtt_ms} ms: the proxy holds {held:.2} ms; a GetItem takes {through:.2} ms through it, \
             {direct_ms:.2} ms direct (medians of 40): {:.2} ms added",
            through - direct_ms
        );

        let prefix = if rtt_ms == 0.0 { records } else { reference_records };
        let table = format!("reference-{}-{round}", std::process::id());
        runtime.block_on(create_table(&direct, &table));
        let a = runtime.block_on(reference(&proxied, &table, &fingerprints[..prefix], &proxy));
        assert_eq!(a.unique, distinct(&fingerprints[..prefix]));

        // The store takes its endpoint from the environment; `new_store` creates
        // the table directly (`callqa store init` with the server's endpoint).
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &proxy.endpoint);
        let store = dynamo.new_store("bench");
        let b = runtime.block_on(protocol(&store, &fingerprints, &contacts, Some(&proxy)));
        assert_eq!(b.unique, expected.len(), "(b) claims every distinct record once");
        if prefix == records {
            assert_eq!(b.unique, a.unique);
        }

        let c = transactions.is_ok().then(|| {
            let store = dynamo.new_store("bench-transact");
            let table = store.strip_prefix("dynamodb://").unwrap();
            let c = runtime.block_on(transact(&proxied, table, &fingerprints, &contacts, &proxy));
            assert_eq!(c.unique, expected.len(), "(c) claims every distinct record once");
            assert_eq!(c.updates, b.updates, "(c) finds the newer versions the store finds");
            c
        });

        let label = format!("{rtt_ms} ms");
        a.print("(a) reference, Query then PutItem, one record at a time:", records);
        b.print("(b) callqa claim protocol, 64 in flight:", records);
        match &c {
            Some(c) => c.print("(c) claims in TransactWriteItems of <=100, 8 in flight:", records),
            None => println!("(c) claims in TransactWriteItems: skipped (the server has no transactions)"),
        }
        println!("    (b) / (a) at {label}: {:.1}x", b.rate() / a.rate());
        if let Some(c) = &c {
            println!("    (c) / (a) at {label}: {:.1}x", c.rate() / a.rate());
            println!(
                "    (c): {} transactions, {} cancelled and re-sent without their duplicates, {} conflicts",
                c.transactions.sent, c.transactions.cancelled, c.transactions.conflicts
            );
        }
        rows.push((rtt_ms, through - direct_ms, a, b, c));
    }

    let redis_store = redis.new_store("bench");
    let r = runtime.block_on(protocol(&redis_store, &fingerprints, &contacts, None));
    assert_eq!(r.unique, expected.len(), "Redis claims every distinct record once");
    println!(
        "\nRedis (0 ms, no proxy): callqa claim protocol, 64 in flight (redis-server): {:>9.0} records/s",
        r.rate()
    );

    println!(
        "\n| round trip added (measured) | (a) records/s | (b) records/s | (c) records/s | (b)/(a) | (c)/(a) \
         | (a) per million records | (b) per million records | (c) per million records |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (rtt_ms, added, a, b, c) in &rows {
        let c_rate = c.as_ref().map_or("skipped".to_string(), |c| thousands(c.rate()));
        let c_ratio = c.as_ref().map_or("-".to_string(), |c| format!("{:.1}x", c.rate() / a.rate()));
        let c_units = c.as_ref().map_or("-".to_string(), Run::units);
        println!(
            "| {rtt_ms} ms ({added:.1}) | {} | {} | {c_rate} | {:.1}x | {c_ratio} | {} | {} | {c_units} |",
            thousands(a.rate()),
            thousands(b.rate()),
            b.rate() / a.rate(),
            a.units(),
            b.units(),
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn distinct(fingerprints: &[Fingerprint]) -> usize {
    fingerprints.iter().collect::<HashSet<_>>().len()
}

/// One measured run: what it claimed, how long it took, what it asked.
struct Run {
    records: usize,
    unique: usize,
    /// Claimed records that are newer versions of a known contact.
    updates: usize,
    seconds: f64,
    /// Requests by DynamoDB operation, as the proxy saw them.
    ops: Ops,
    transactions: Transactions,
}

#[derive(Default, Clone, Copy)]
struct Transactions {
    sent: u64,
    cancelled: u64,
    /// Retried after `TransactionConflict` or throttling.
    conflicts: u64,
    items_sent: u64,
    items_committed: u64,
}

impl Transactions {
    fn add(&mut self, other: Transactions) {
        self.sent += other.sent;
        self.cancelled += other.cancelled;
        self.conflicts += other.conflicts;
        self.items_sent += other.items_sent;
        self.items_committed += other.items_committed;
    }
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    /// (WCU, RCU) per million records, items under 1 KB: a standard write
    /// 1 WCU (a failed conditional write too), a strongly consistent
    /// `GetItem` (the store's) 1 RCU, an eventually consistent `Query` (the
    /// reference's) 0.5 RCU, a transactional write 2 WCU per item, those of
    /// cancelled transactions included when `cancelled_charged`.
    fn capacity(&self, cancelled_charged: bool) -> (f64, f64) {
        let (mut wcu, mut rcu) = (0.0, 0.0);
        for (op, &count) in &self.ops {
            let count = count as f64;
            match op.as_str() {
                "PutItem" | "UpdateItem" | "DeleteItem" => wcu += count,
                "GetItem" => rcu += count,
                "Query" => rcu += 0.5 * count,
                _ => {}
            }
        }
        let items = if cancelled_charged { self.transactions.items_sent } else { self.transactions.items_committed };
        wcu += 2.0 * items as f64;
        let per_million = 1e6 / self.records as f64;
        (wcu * per_million, rcu * per_million)
    }

    fn units(&self) -> String {
        let (wcu, rcu) = self.capacity(true);
        let mut text = format!("{} WCU + {} RCU", thousands(wcu), thousands(rcu));
        if self.transactions.cancelled > 0 {
            let (free, _) = self.capacity(false);
            text.push_str(&format!(" ({} WCU if cancelled transactions cost nothing)", thousands(free)));
        }
        text
    }

    fn print(&self, label: &str, all: usize) {
        let which = if self.records == all {
            format!("{} records", thousands(self.records as f64))
        } else {
            format!("the first {} records", thousands(self.records as f64))
        };
        let ops: Vec<String> = self.ops.iter().map(|(op, n)| format!("{op} {}", thousands(*n as f64))).collect();
        println!("{label:<58}{:>9.0} records/s  ({which})", self.rate());
        println!("    per million records: {}; requests: {}", self.units(), ops.join(", "));
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && digit.is_ascii_digit() {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A DynamoDB client for `endpoint`, with the SDK's default retries (the store has its own).
fn client(config: &aws_config::SdkConfig, endpoint: &str) -> Client {
    Client::from_conf(aws_sdk_dynamodb::config::Builder::from(config).endpoint_url(endpoint).build())
}

/// A table of the store's layout (partition key `id`), active before it returns.
async fn create_table(client: &Client, table: &str) {
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create a table");
    let started = Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await.expect("describe the table");
        if described.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{table} did not become ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the server runs `TransactWriteItems`: `Err` with its answer when not.
async fn probe_transactions(client: &Client, table: &str) -> Result<(), String> {
    let put = Put::builder()
        .table_name(table)
        .item("id", s("transaction-probe"))
        .condition_expression("attribute_not_exists(id)")
        .build()
        .unwrap();
    match client.transact_write_items().transact_items(TransactWriteItem::builder().put(put).build()).send().await {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(service) => Err(format!(
                "it answered {}{}",
                service.code().unwrap_or("an error"),
                service.message().map(|m| format!(": {m}")).unwrap_or_default()
            )),
            None => panic!("TransactWriteItems probe: {}", DisplayErrorContext(&err)),
        },
    }
}

/// The median time of a `GetItem` (a missing key), in ms.
async fn median_get(client: &Client, table: &str) -> f64 {
    let mut times = Vec::new();
    for i in 0..41 {
        let started = Instant::now();
        client.get_item().table_name(table).key("id", s("round-trip")).send().await.expect("GetItem");
        // The first opens the connection.
        if i > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The seed's algorithm: Query the fingerprint, PutItem when absent, in turn.
async fn reference(client: &Client, table: &str, fingerprints: &[Fingerprint], proxy: &Proxy) -> Run {
    proxy.take_ops();
    let started = Instant::now();
    let mut unique = 0;
    for fingerprint in fingerprints {
        let id = AttributeValue::S(fingerprint.to_hex());
        let found = client
            .query()
            .table_name(table)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", id.clone())
            .send()
            .await
            .expect("query");
        if found.count() == 0 {
            client.put_item().table_name(table).item("id", id).send().await.expect("put");
            unique += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Run {
        records: fingerprints.len(),
        unique,
        updates: 0,
        seconds,
        ops: proxy.take_ops(),
        transactions: Transactions::default(),
    }
}

/// The synthetic LastUpdateTimestamp of the record at `position` in its batch.
fn version(position: usize) -> i64 {
    1_700_000_000_000 + position as i64
}

/// callqa's protocol through the store API: batches of 500 claimed with
/// conditional writes in flight, then completed.
async fn protocol(store_url: &str, fingerprints: &[Fingerprint], contacts: &[String], proxy: Option<&Proxy>) -> Run {
    let settings = StoreSettings {
        ttl: Duration::from_millis(TTL_MILLIS as u64),
        lease: Duration::from_millis(LEASE_MILLIS as u64),
        clock: Arc::new(SystemClock),
    };
    let store: Box<dyn DedupStore> = StoreUrl::parse(store_url)
        .unwrap()
        .open(settings, "-", callqa::dedup::DEFAULT_CONCURRENCY)
        .await
        .expect("open the shared store");
    let inputs = vec!["bench".to_string()];
    if let Some(proxy) = proxy {
        proxy.take_ops();
    }
    let started = Instant::now();
    let mut unique = 0;
    let mut updates = 0;
    for (chunk, chunk_contacts) in fingerprints.chunks(BATCH).zip(contacts.chunks(BATCH)) {
        let requests: Vec<ClaimRequest<'_>> = chunk
            .iter()
            .zip(chunk_contacts)
            .enumerate()
            .map(|(i, (fingerprint, contact))| ClaimRequest {
                fingerprint: *fingerprint,
                contact_id: contact,
                last_update_millis: Some(version(i)),
                day: UtcDay(DAY),
                input: 0,
                position: i as u64,
            })
            .collect();
        let claim = store.claim_batch(&ClaimBatch { inputs: &inputs, requests: &requests }).await.expect("claim");
        let claimed = claim.outcomes.iter().filter(|o| matches!(o, ClaimOutcome::Claimed { .. })).count();
        updates += claim.outcomes.iter().filter(|o| matches!(o, ClaimOutcome::Claimed { update: true })).count();
        if claimed > 0 {
            store.complete_batch(claim.token).await.expect("complete");
        }
        unique += claimed;
    }
    let seconds = started.elapsed().as_secs_f64();
    Run {
        records: fingerprints.len(),
        unique,
        updates,
        seconds,
        ops: proxy.map(Proxy::take_ops).unwrap_or_default(),
        transactions: Transactions::default(),
    }
}

// ---- (c): the claims in transactions -------------------------------------
//
// The store's protocol, request for request, on the store's table layout
// (`host/src/dedup/dynamodb_store.rs`): the fencing token, the batch item and
// the owner's set, the contact versions and the completion are the store's
// requests; only the claims differ. A claim that fails its condition is
// judged as the store judges it; in a one-host run its batch has always
// completed (a duplicate), so the takeover of a dead host's claim, which the
// store does with a second conditional write, is not exercised here.

/// (c): batches of 500, their claims in transactions of up to 100.
async fn transact(
    client: &Client,
    table: &str,
    fingerprints: &[Fingerprint],
    contacts: &[String],
    proxy: &Proxy,
) -> Run {
    let owner = format!("bench-transact-{}", std::process::id());
    let session = format!("bench-session-{}", std::process::id());
    let mut completed: HashSet<u64> = HashSet::new();
    proxy.take_ops();
    let started = Instant::now();
    let (mut unique, mut updates, mut stats) = (0, 0, Transactions::default());
    for (chunk, chunk_contacts) in fingerprints.chunks(BATCH).zip(contacts.chunks(BATCH)) {
        let now = now_millis();
        let expires = now + TTL_MILLIS;
        let token = next_token(client, table).await;
        put_batch(client, table, token, &owner, &session, now, expires).await;
        // Copies within the batch are settled here: the first copy is claimed.
        let mut seen = HashSet::new();
        let items: Vec<(usize, Item)> = chunk
            .iter()
            .enumerate()
            .filter(|(_, fingerprint)| seen.insert(**fingerprint))
            .map(|(i, fingerprint)| (i, claim_item(fingerprint, token, i, expires)))
            .collect();
        let now_s = now.div_euclid(1000);
        let groups: Vec<Vec<(usize, Item)>> = items.chunks(TRANSACTION_ITEMS).map(<[_]>::to_vec).collect();
        let results: Vec<_> = stream::iter(groups)
            .map(|group| claim_group(client, table, group, now_s))
            .buffer_unordered(TRANSACTIONS_IN_FLIGHT)
            .collect()
            .await;
        let mut claimed = vec![false; chunk.len()];
        let mut held = Vec::new();
        for (won, lost, group_stats) in results {
            for i in won {
                claimed[i] = true;
            }
            held.extend(lost);
            stats.add(group_stats);
        }
        judge_held(client, table, token, now_s, held, &mut completed).await;
        let versions: Vec<i64> = (0..chunk.len()).map(version).collect();
        updates += note_versions(client, table, &claimed, chunk_contacts, &versions, expires, now).await;
        finish_batch(client, table, token, &owner, &session).await;
        unique += claimed.iter().filter(|c| **c).count();
    }
    let seconds = started.elapsed().as_secs_f64();
    Run { records: fingerprints.len(), unique, updates, seconds, ops: proxy.take_ops(), transactions: stats }
}

/// The claims of one group, in one transaction and again without the ones
/// whose condition failed until one commits. Returns the positions claimed,
/// the (id, standing item) of those someone holds, and what it sent.
async fn claim_group(
    client: &Client,
    table: &str,
    mut pending: Vec<(usize, Item)>,
    now_s: i64,
) -> (Vec<usize>, Vec<(AttributeValue, Option<Item>)>, Transactions) {
    let mut stats = Transactions::default();
    let (mut won, mut held) = (Vec::new(), Vec::new());
    let mut conflicts_in_a_row = 0u32;
    while !pending.is_empty() {
        let puts = pending
            .iter()
            .map(|(_, item)| {
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .condition_expression(CLAIM_CONDITION)
                    .expression_attribute_values(":now", n(now_s))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .build()
                    .expect("a put names its table and item");
                TransactWriteItem::builder().put(put).build()
            })
            .collect();
        stats.sent += 1;
        stats.items_sent += pending.len() as u64;
        let err = match client.transact_write_items().set_transact_items(Some(puts)).send().await {
            Ok(_) => {
                stats.items_committed += pending.len() as u64;
                won.extend(pending.iter().map(|(i, _)| *i));
                break;
            }
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons().to_vec()
            }
            _ => panic!("TransactWriteItems: {}", DisplayErrorContext(&err)),
        };
        stats.cancelled += 1;
        assert_eq!(
            reasons.len(),
            pending.len(),
            "a cancelled transaction names one reason per item, in order (CancellationReasons)"
        );
        let before = pending.len();
        let mut retry = Vec::with_capacity(before);
        let mut conflict = false;
        for ((i, item), reason) in pending.into_iter().zip(reasons) {
            match reason.code.as_deref() {
                // Someone holds it: judged once the batch's claims are in.
                Some("ConditionalCheckFailed") => held.push((item["id"].clone(), reason.item)),
                // Its condition held: it was cancelled with the others only.
                None | Some("None") => retry.push((i, item)),
                // Another transaction on the same item, or throttled: again.
                Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded") => {
                    conflict = true;
                    retry.push((i, item));
                }
                Some(code) => panic!("TransactWriteItems cancelled: {code} {}", reason.message.unwrap_or_default()),
            }
        }
        if conflict {
            stats.conflicts += 1;
            conflicts_in_a_row += 1;
            assert!(conflicts_in_a_row < 10, "TransactWriteItems kept conflicting");
            tokio::time::sleep(Duration::from_millis(5 << conflicts_in_a_row.min(6))).await;
        } else {
            conflicts_in_a_row = 0;
            assert!(retry.len() < before, "a transaction cancelled without a reason");
        }
        pending = retry;
    }
    (won, held, stats)
}

/// The claims that failed their condition: live, made by an earlier batch
/// that has completed, so duplicates (read once per batch, as the store does).
async fn judge_held(
    client: &Client,
    table: &str,
    token: u64,
    now_s: i64,
    held: Vec<(AttributeValue, Option<Item>)>,
    completed: &mut HashSet<u64>,
) {
    // Servers that return no item with the failure are read instead, as the store does.
    let standing: Vec<Item> = stream::iter(held)
        .map(|(id, item)| async move {
            match item {
                Some(item) => item,
                None => get(client, table, id).await.unwrap_or_default(),
            }
        })
        .buffered(callqa::dedup::DEFAULT_CONCURRENCY)
        .collect()
        .await;
    for item in standing {
        let tok = num(&item, "tok").expect("a claim names its batch") as u64;
        assert!(num(&item, "expires_at").is_some_and(|e| e > now_s), "a claim that failed its condition is live");
        assert_ne!(tok, token, "copies within a batch are never sent");
        if !completed.contains(&tok) {
            let batch = get(client, table, s(format!("batch#{tok}"))).await.expect("the claim's batch");
            let status = batch.get("st").and_then(|v| v.as_s().ok()).map(String::as_str);
            assert_eq!(status, Some(BatchStatus::Completed.as_str()), "a one-host run only meets completed batches");
            completed.insert(tok);
        }
    }
}

/// The store's contact versions: the newest version of each contact claimed
/// in the batch noted at once, the updates read from what stood before.
async fn note_versions(
    client: &Client,
    table: &str,
    claimed: &[bool],
    contacts: &[String],
    versions: &[i64],
    expires: i64,
    now: i64,
) -> usize {
    let mut per_contact: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for i in (0..claimed.len()).filter(|&i| claimed[i]) {
        let entry = per_contact.entry(contacts[i].as_str()).or_default();
        if entry.is_empty() {
            order.push(contacts[i].as_str());
        }
        entry.push(i);
    }
    let notes = order.iter().map(|contact| {
        let newest = per_contact[contact].iter().map(|&i| versions[i]).max().unwrap_or(0);
        note_version(client, table, contact, newest, expires, now)
    });
    let known: Vec<Option<i64>> = stream::iter(notes).buffered(callqa::dedup::DEFAULT_CONCURRENCY).collect().await;
    let mut updates = 0;
    for (contact, known) in order.iter().zip(known) {
        let mut latest = known;
        for &i in &per_contact[contact] {
            let newer = latest.is_none_or(|seen| versions[i] > seen);
            updates += (latest.is_some() && newer) as usize;
            if newer {
                latest = Some(versions[i]);
            }
        }
    }
    updates
}

async fn note_version(
    client: &Client,
    table: &str,
    contact: &str,
    version: i64,
    expires: i64,
    now: i64,
) -> Option<i64> {
    let now_s = now.div_euclid(1000);
    let id = s(format!("contact#{contact}"));
    let result = client
        .update_item()
        .table_name(table)
        .key("id", id.clone())
        .update_expression("SET ver = :v, expires_at = :e")
        .condition_expression("attribute_not_exists(id) OR expires_at <= :now OR ver < :v")
        .expression_attribute_values(":v", n(version))
        .expression_attribute_values(":e", n(ttl_seconds(expires)))
        .expression_attribute_values(":now", n(now_s))
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let known = |item: &Item| {
        let live = num(item, "expires_at").is_some_and(|e| e > now_s);
        live.then(|| num(item, "ver")).flatten()
    };
    match result {
        Ok(out) => out.attributes.as_ref().and_then(known),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
            let returned = match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                _ => None,
            };
            let standing = match returned {
                Some(item) => Some(item),
                None => get(client, table, id).await,
            };
            standing.as_ref().and_then(known).or(Some(version))
        }
        Err(err) => panic!("contact version: {}", DisplayErrorContext(&err)),
    }
}

async fn next_token(client: &Client, table: &str) -> u64 {
    let out = client
        .update_item()
        .table_name(table)
        .key("id", s("meta"))
        .update_expression("ADD next_token :one")
        .expression_attribute_values(":one", n(1))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .expect("next fencing token");
    out.attributes.as_ref().and_then(|a| num(a, "next_token")).expect("the token counter returned no value") as u64
}

async fn owner_set(client: &Client, table: &str, owner: &str, op: &str, token: u64) {
    client
        .update_item()
        .table_name(table)
        .key("id", s(format!("owner#{owner}")))
        .update_expression(format!("{op} tokens :t"))
        .expression_attribute_values(":t", AttributeValue::Ns(vec![token.to_string()]))
        .send()
        .await
        .expect("owner's batches");
}

async fn put_batch(client: &Client, table: &str, token: u64, owner: &str, session: &str, now: i64, expires: i64) {
    owner_set(client, table, owner, "ADD", token).await;
    let item: Item = [
        ("id", s(format!("batch#{token}"))),
        ("st", s(BatchStatus::InProgress.as_str())),
        ("own", s(owner)),
        ("ses", s(session)),
        ("lease_until", n(now + LEASE_MILLIS)),
        ("expires_at", n(ttl_seconds(expires + LEASE_MILLIS))),
        ("days", s(DAY.to_string())),
        ("ddays", s("")),
        ("inputs", AttributeValue::L(vec![s("bench")])),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    client.put_item().table_name(table).set_item(Some(item)).send().await.expect("write batch");
}

async fn finish_batch(client: &Client, table: &str, token: u64, owner: &str, session: &str) {
    client
        .update_item()
        .table_name(table)
        .key("id", s(format!("batch#{token}")))
        .update_expression("SET st = :new, ddays = :d")
        .condition_expression("st = :ip AND ses = :me")
        .expression_attribute_values(":new", s(BatchStatus::Completed.as_str()))
        .expression_attribute_values(":d", s(""))
        .expression_attribute_values(":ip", s(BatchStatus::InProgress.as_str()))
        .expression_attribute_values(":me", s(session))
        .send()
        .await
        .expect("complete the batch");
    owner_set(client, table, owner, "DELETE", token).await;
}

async fn get(client: &Client, table: &str, id: AttributeValue) -> Option<Item> {
    client.get_item().table_name(table).key("id", id).consistent_read(true).send().await.expect("GetItem").item
}

/// The store's claim item for a fingerprint.
fn claim_item(fingerprint: &Fingerprint, token: u64, position: usize, expires: i64) -> Item {
    [
        ("id", s(format!("fp#{}", fingerprint.to_hex()))),
        ("tok", n(token)),
        ("dy", n(DAY)),
        ("upd", AttributeValue::Bool(false)),
        ("inp", n(0)),
        ("pos", n(position)),
        ("expires_at", n(ttl_seconds(expires))),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// DynamoDB's TTL wants epoch seconds; rounding up never expires an entry early.
fn ttl_seconds(millis: i64) -> i64 {
    millis.div_euclid(1000) + (millis.rem_euclid(1000) > 0) as i64
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn num(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|t| t.parse().ok())
}

/// A loopback TCP proxy that adds a round trip: each chunk read is written
/// on half the round trip later, in each direction. Chunks keep their order
/// per direction and are not held back by the ones before them (a reader
/// keeps reading while its chunks wait), and every client connection has
/// its own upstream connection, so requests in flight overlap as they do
/// against a remote endpoint. It counts the requests by their
/// `x-amz-target` header.
///
/// The delays come from one timer thread (a condition variable's timed
/// wait, precise to tens of microseconds) rather than tokio's timer, whose
/// millisecond ticks would add up to a millisecond to every half trip.
mod latency_proxy {
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use parking_lot::{Condvar, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};

    type Ops = Arc<Mutex<BTreeMap<String, u64>>>;

    pub struct Proxy {
        /// `http://127.0.0.1:PORT`.
        pub endpoint: String,
        ops: Ops,
        /// What a chunk is held in each direction, in ns.
        half: Arc<AtomicU64>,
        accept: tokio::task::JoinHandle<()>,
        timer: Option<Timer>,
    }

    impl Proxy {
        /// Listens on a free loopback port, forwarding to `upstream` with `rtt` added.
        pub fn start(runtime: &tokio::runtime::Handle, upstream: SocketAddr, rtt: Duration) -> Proxy {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let timer = (!rtt.is_zero()).then(Timer::start);
            let ops = Ops::default();
            let half = Arc::new(AtomicU64::new((rtt / 2).as_nanos() as u64));
            let accept = {
                let _entered = runtime.enter();
                let listener = TcpListener::from_std(listener).unwrap();
                let (ops, timer, half) = (ops.clone(), timer.clone(), half.clone());
                runtime.spawn(async move {
                    loop {
                        let client = match listener.accept().await {
                            Ok((client, _)) => client,
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        };
                        let (ops, timer, half) = (ops.clone(), timer.clone(), half.clone());
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(upstream).await else { return };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (client_read, client_write) = client.into_split();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                pipe(client_read, server_write, half.clone(), timer.clone(), Some(ops)),
                                pipe(server_read, client_write, half, timer, None),
                            );
                        });
                    }
                })
            };
            Proxy { endpoint: format!("http://127.0.0.1:{port}"), ops, half, accept, timer }
        }

        /// Holds chunks `rtt` in all from now on (a proxy started with 0 ms holds none).
        pub fn hold(&self, rtt: Duration) {
            self.half.store((rtt / 2).as_nanos() as u64, Ordering::Relaxed);
        }

        /// The requests counted since the last call, by operation.
        pub fn take_ops(&self) -> BTreeMap<String, u64> {
            std::mem::take(&mut *self.ops.lock())
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.accept.abort();
            if let Some(timer) = &self.timer {
                timer.stop();
            }
        }
    }

    /// One direction: chunks go out `half` after they came in, in order.
    async fn pipe(
        mut from: OwnedReadHalf,
        mut to: OwnedWriteHalf,
        half: Arc<AtomicU64>,
        timer: Option<Timer>,
        ops: Option<Ops>,
    ) {
        // An empty chunk is the end of the stream, passed on with the same delay.
        let (chunks, mut due) = mpsc::unbounded_channel::<(Option<oneshot::Receiver<()>>, Vec<u8>)>();
        let read = async move {
            let mut counter = ops.map(|ops| Counter { ops, carry: Vec::new() });
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = from.read(&mut buffer).await.unwrap_or(0);
                let held = Duration::from_nanos(half.load(Ordering::Relaxed));
                let at = timer.as_ref().map(|timer| timer.at(Instant::now() + held));
                if let Some(counter) = counter.as_mut() {
                    counter.scan(&buffer[..read]);
                }
                if chunks.send((at, buffer[..read].to_vec())).is_err() || read == 0 {
                    break;
                }
            }
        };
        let write = async move {
            while let Some((at, chunk)) = due.recv().await {
                if let Some(at) = at {
                    // An error means the timer stopped: no more waiting.
                    let _ = at.await;
                }
                if chunk.is_empty() {
                    let _ = to.shutdown().await;
                    break;
                }
                if to.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(read, write);
    }

    /// Counts `x-amz-target: DynamoDB_20120810.<Operation>` headers (the SDK
    /// writes header names in lower case), across chunk boundaries.
    struct Counter {
        ops: Ops,
        carry: Vec<u8>,
    }

    impl Counter {
        const HEADER: &'static [u8] = b"x-amz-target:";

        fn scan(&mut self, chunk: &[u8]) {
            self.carry.extend_from_slice(chunk);
            let mut done = 0;
            loop {
                let Some(at) = memchr::memmem::find(&self.carry[done..], Self::HEADER) else {
                    // Keep what could be the start of a header cut by the chunk's end.
                    done = done.max(self.carry.len().saturating_sub(Self::HEADER.len() - 1));
                    break;
                };
                let value = done + at + Self::HEADER.len();
                let Some(end) = memchr::memmem::find(&self.carry[value..], b"\r\n") else {
                    done += at;
                    break;
                };
                let target = String::from_utf8_lossy(&self.carry[value..value + end]);
                let op = target.trim().rsplit('.').next().unwrap_or_default().to_string();
                *self.ops.lock().entry(op).or_default() += 1;
                done = value + end + 2;
            }
            self.carry.drain(..done);
            if self.carry.len() > 4096 {
                // No header line is that long.
                self.carry.clear();
            }
        }
    }

    /// Fires one-shot channels at given instants, from a thread of its own.
    #[derive(Clone)]
    struct Timer(Arc<TimerShared>);

    struct TimerShared {
        state: Mutex<TimerState>,
        wake: Condvar,
    }

    #[derive(Default)]
    struct TimerState {
        due: BinaryHeap<Reverse<Due>>,
        next: u64,
        stopped: bool,
    }

    struct Due {
        at: Instant,
        seq: u64,
        fire: oneshot::Sender<()>,
    }

    impl PartialEq for Due {
        fn eq(&self, other: &Self) -> bool {
            (self.at, self.seq) == (other.at, other.seq)
        }
    }

    impl Eq for Due {}

    impl PartialOrd for Due {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for Due {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            (self.at, self.seq).cmp(&(other.at, other.seq))
        }
    }

    impl Timer {
        fn start() -> Timer {
            let timer = Timer(Arc::new(TimerShared { state: Mutex::new(TimerState::default()), wake: Condvar::new() }));
            let shared = timer.0.clone();
            std::thread::Builder::new()
                .name("latency-proxy-timer".into())
                .spawn(move || {
                    let mut state = shared.state.lock();
                    while !state.stopped {
                        let now = Instant::now();
                        while state.due.peek().is_some_and(|Reverse(due)| due.at <= now) {
                            let Reverse(due) = state.due.pop().unwrap();
                            let _ = due.fire.send(());
                        }
                        match state.due.peek().map(|Reverse(due)| due.at) {
                            Some(at) => {
                                shared.wake.wait_until(&mut state, at);
                            }
                            None => shared.wake.wait(&mut state),
                        }
                    }
                    state.due.clear();
                })
                .expect("start the proxy's timer");
            timer
        }

        /// Resolves at `at` (at once, with an error, once the timer stopped).
        fn at(&self, at: Instant) -> oneshot::Receiver<()> {
            let (fire, fired) = oneshot::channel();
            let mut state = self.0.state.lock();
            if !state.stopped {
                let seq = state.next;
                state.next += 1;
                let first = state.due.peek().is_none_or(|Reverse(due)| at < due.at);
                state.due.push(Reverse(Due { at, seq, fire }));
                if first {
                    self.0.wake.notify_one();
                }
            }
            fired
        }

        fn stop(&self) {
            self.0.state.lock().stopped = true;
            self.0.wake.notify_one();
        }
    }
}
