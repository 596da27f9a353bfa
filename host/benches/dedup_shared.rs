//! Shared-store claim throughput on real servers (dynalite, redis-server):
//!
//! (a) the reference algorithm as the seed implemented it: for each record in
//!     turn, a `Query` for the fingerprint, then a `PutItem` when absent;
//! (b) callqa's claim protocol (conditional writes, many in flight, one
//!     completion per batch) on the same dynalite server;
//! (c) the same protocol on Redis.
//!
//! `cargo bench --bench dedup_shared` (uses AWS_ENDPOINT_URL_DYNAMODB and
//! CALLQA_TEST_REDIS_URL when set, else starts its own servers like the tests).
//! CALLQA_BENCH_RECORDS sets the number of records (default 10,000, 30% copies).

// `servers` takes its test data from the tests' `common` module.
#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "../tests/all/servers/mod.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use callqa::ctr::{Fingerprint, UtcDay};
use callqa::dedup::{ClaimBatch, ClaimOutcome, ClaimRequest, DedupStore, StoreSettings, StoreUrl, SystemClock};
use servers::{Kind, Server};

fn main() {
    let records: usize = std::env::var("CALLQA_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let (lines, expected) = servers::generate(records, 99);
    let fingerprints: Vec<Fingerprint> = lines.iter().map(|l| Fingerprint::of(l.as_bytes())).collect();
    let contacts: Vec<String> = lines.iter().map(|l| servers::identity(l).0).collect();
    println!("{} records, {} unique", lines.len(), expected.len());

    let dynamo = Server::shared(Kind::DynamoDb);
    let redis = Server::shared(Kind::Redis);
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &dynamo.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let reference = runtime.block_on(reference(&dynamo, &fingerprints));
    let (reference_unique, reference_seconds) = reference;
    assert_eq!(reference_unique, distinct(&fingerprints));
    let dynamo_store = dynamo.new_store("bench");
    let (dynamo_unique, dynamo_seconds) = runtime.block_on(protocol(&dynamo_store, &fingerprints, &contacts));
    let redis_store = redis.new_store("bench");
    let (redis_unique, redis_seconds) = runtime.block_on(protocol(&redis_store, &fingerprints, &contacts));
    assert_eq!(dynamo_unique, reference_unique);
    assert_eq!(redis_unique, reference_unique);

    let rate = |seconds: f64| lines.len() as f64 / seconds;
    println!(
        "(a) reference, Query then PutItem, one record at a time (dynalite): {:>9.0} records/s",
        rate(reference_seconds)
    );
    println!(
        "(b) callqa claim protocol, 64 in flight (dynalite):                  {:>9.0} records/s",
        rate(dynamo_seconds)
    );
    println!(
        "    ratio (b)/(a):                                                   {:>9.1}x",
        reference_seconds / dynamo_seconds
    );
    println!(
        "(c) callqa claim protocol, 64 in flight (redis-server):              {:>9.0} records/s",
        rate(redis_seconds)
    );
}

fn distinct(fingerprints: &[Fingerprint]) -> usize {
    fingerprints.iter().collect::<std::collections::HashSet<_>>().len()
}

/// The seed's algorithm: Query the fingerprint, PutItem when absent, in turn.
async fn reference(server: &Server, fingerprints: &[Fingerprint]) -> (usize, f64) {
    let table = format!("reference-{}", std::process::id());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let _ = server;
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the reference table");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut unique = 0;
    for fingerprint in fingerprints {
        let id = AttributeValue::S(fingerprint.to_hex());
        let found = client
            .query()
            .table_name(&table)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", id.clone())
            .send()
            .await
            .expect("query");
        if found.count() == 0 {
            client.put_item().table_name(&table).item("id", id).send().await.expect("put");
            unique += 1;
        }
    }
    (unique, started.elapsed().as_secs_f64())
}

/// callqa's protocol through the store API: batches of 500 claimed with
/// conditional writes in flight, then completed.
async fn protocol(store_url: &str, fingerprints: &[Fingerprint], contacts: &[String]) -> (usize, f64) {
    let settings =
        StoreSettings { ttl: Duration::from_secs(86400), lease: Duration::from_secs(30), clock: Arc::new(SystemClock) };
    let store: Box<dyn DedupStore> = StoreUrl::parse(store_url)
        .unwrap()
        .open(settings, "-", callqa::dedup::DEFAULT_CONCURRENCY)
        .await
        .expect("open the shared store");
    let inputs = vec!["bench".to_string()];
    let started = Instant::now();
    let mut unique = 0;
    for (chunk, chunk_contacts) in fingerprints.chunks(500).zip(contacts.chunks(500)) {
        let requests: Vec<ClaimRequest<'_>> = chunk
            .iter()
            .zip(chunk_contacts)
            .enumerate()
            .map(|(i, (fingerprint, contact))| ClaimRequest {
                fingerprint: *fingerprint,
                contact_id: contact,
                last_update_millis: Some(1_700_000_000_000 + i as i64),
                day: UtcDay(19800),
                input: 0,
                position: i as u64,
            })
            .collect();
        let claim = store.claim_batch(&ClaimBatch { inputs: &inputs, requests: &requests }).await.expect("claim");
        let claimed = claim.outcomes.iter().filter(|o| matches!(o, ClaimOutcome::Claimed { .. })).count();
        if claimed > 0 {
            store.complete_batch(claim.token).await.expect("complete");
        }
        unique += claimed;
    }
    (unique, started.elapsed().as_secs_f64())
}
