//! Kinesis in, S3 out, shards shared by hosts through leases in DynamoDB:
//! against kinesalite, s3rver and dynalite, with real `callqa` processes.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{self, Kind, Server, AWS_KEY, PUBLISHED, SEED};

/// The three servers the pipeline talks to.
struct Aws {
    dynamo: Server,
    kinesis: Server,
    s3: Server,
    runtime: tokio::runtime::Runtime,
    s3_client: aws_sdk_s3::Client,
    kinesis_client: aws_sdk_kinesis::Client,
}

impl Aws {
    fn start() -> Aws {
        let (dynamo, kinesis, s3) =
            (Server::shared(Kind::DynamoDb), Server::shared(Kind::Kinesis), Server::shared(Kind::S3));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = |endpoint: &str| {
            let credentials = aws_sdk_s3::config::Credentials::new(AWS_KEY, AWS_KEY, None, None, "tests");
            runtime.block_on(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new("us-east-1"))
                    .credentials_provider(credentials)
                    .endpoint_url(endpoint)
                    .load(),
            )
        };
        let s3_config = aws_sdk_s3::config::Builder::from(&config(&s3.endpoint)).force_path_style(true).build();
        let s3_client = aws_sdk_s3::Client::from_conf(s3_config);
        let kinesis_client = aws_sdk_kinesis::Client::new(&config(&kinesis.endpoint));
        Aws { dynamo, kinesis, s3, runtime, s3_client, kinesis_client }
    }

    /// `callqa` pointed at all three.
    fn callqa(&self) -> Command {
        let mut command = self.dynamo.callqa();
        command.env("AWS_ENDPOINT_URL_KINESIS", &self.kinesis.endpoint).env("AWS_ENDPOINT_URL_S3", &self.s3.endpoint);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.callqa().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "callqa {args:?}: {:?}\n{stderr}", output.status);
        stderr
    }

    fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3_client
    }

    /// A new bucket, a new stream name, and a new dedup store with its lease table.
    fn fresh(&self, name: &str) -> Fresh {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let unique = format!("{name}-{}-{nanos}", std::process::id());
        let bucket = format!("b{:x}", nanos as u64 * 1_000_003 + std::process::id() as u64);
        self.runtime.block_on(self.s3().create_bucket().bucket(&bucket).send()).unwrap();
        let store = format!("dynamodb://{unique}");
        let leases = format!("dynamodb://{unique}-leases");
        self.run(&["store", "init", "--store", &store, "--leases", &leases]);
        Fresh { stream: unique, out: format!("s3://{bucket}/ctr"), bucket, store, leases }
    }

    /// Every object key under the bucket's `ctr/`, and every line in them.
    fn objects(&self, bucket: &str) -> (Vec<String>, Vec<String>) {
        self.runtime.block_on(async {
            let client = self.s3();
            let listed = client.list_objects_v2().bucket(bucket).prefix("ctr/").send().await.unwrap();
            assert!(!listed.is_truncated().unwrap_or(false), "more objects than one listing: raise the test's limit");
            let mut keys = Vec::new();
            let mut lines = Vec::new();
            for object in listed.contents() {
                let key = object.key().unwrap().to_string();
                let body = client.get_object().bucket(bucket).key(&key).send().await.unwrap();
                let bytes = body.body.collect().await.unwrap().into_bytes();
                let text = if key.ends_with(".gz") {
                    let mut plain = String::new();
                    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut plain)
                        .unwrap();
                    plain
                } else {
                    String::from_utf8(bytes.to_vec()).unwrap()
                };
                lines.extend(text.lines().map(str::to_string));
                keys.push(key);
            }
            (keys, lines)
        })
    }

    fn assert_exactly_once(&self, bucket: &str, expected: &HashSet<(String, String)>) {
        let (_, lines) = self.objects(bucket);
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for line in &lines {
            *seen.entry(servers::identity(line)).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(twice.is_empty(), "records written more than once: {twice:?}");
        let missing = expected.iter().filter(|k| !seen.contains_key(*k)).count();
        assert_eq!(missing, 0, "{missing} of {} records lost", expected.len());
        assert_eq!(seen.len(), expected.len(), "records in the bucket that were never sent");
    }

    /// A host reading the stream, its stderr and summary in `dir`.
    fn host(&self, fresh: &Fresh, dir: &Path, name: &str, extra: &[&str]) -> Host {
        self.host_with(fresh, dir, name, extra, None)
    }

    fn host_with(&self, fresh: &Fresh, dir: &Path, name: &str, extra: &[&str], failpoint: Option<&str>) -> Host {
        let log = dir.join(format!("{name}.log"));
        let summary = dir.join(format!("{name}.json"));
        let mut command = self.callqa();
        command
            .args(["ingest", "--quiet", "--from", &format!("kinesis://{}", fresh.stream)])
            .args(["--store", &fresh.store, "--leases", &fresh.leases, "--out", &fresh.out])
            .args(["--failover", "2s", "--lease", "3s", "--batch-size", "500"])
            .arg("--summary-json")
            .arg(&summary)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(failpoint) = failpoint {
            command.env("CALLQA_FAILPOINT", failpoint);
        }
        Host { child: command.spawn().unwrap(), log, summary }
    }
}

struct Fresh {
    stream: String,
    bucket: String,
    out: String,
    store: String,
    leases: String,
}

struct Host {
    child: Child,
    log: PathBuf,
    summary: PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        // A failed assertion must not leave hosts reading the stream.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(mut self, limit: Duration) -> serde_json::Value {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("a host did not finish within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "host failed: {status:?}\n{}", self.log());
        serde_json::from_slice(&std::fs::read(&self.summary).unwrap()).unwrap()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

/// How many batches wrote the objects (`part-<store>-<token>.ndjson`, one per day).
fn batches(keys: &[String]) -> usize {
    keys.iter().map(|key| key.rsplit('-').next().unwrap()).collect::<HashSet<_>>().len()
}

/// Shards a host's summary read records from.
fn shards_read(summary: &serde_json::Value) -> HashSet<String> {
    summary["shards"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, p)| p["counts"]["read"].as_u64().unwrap_or(0) > 0)
        .map(|(shard, _)| shard.clone())
        .collect()
}

fn replay(aws: &Aws, fresh: &Fresh, lines: &[String], file: &Path, shards: u32) {
    servers::write_lines(file, lines);
    let to = format!("kinesis://{}", fresh.stream);
    let stderr = aws.run(&["replay", "--to", &to, "--create", &shards.to_string(), file.to_str().unwrap()]);
    assert!(stderr.contains(&format!("{} records put", lines.len())), "{stderr}");
}

#[test]
fn the_seed_through_kinesis_into_s3_keeps_three_with_the_published_fingerprints() {
    let aws = Aws::start();
    let fresh = aws.fresh("seed");
    let to = format!("kinesis://{}", fresh.stream);
    let put = aws.run(&["replay", "--to", &to, "--create", "2", SEED]);
    assert!(put.contains("6 records put"), "{put}");

    let dir = tempfile::tempdir().unwrap();
    let host = aws.host(&fresh, dir.path(), "host", &["--fingerprint", "raw"]);
    let summary = host.wait(Duration::from_secs(120));
    let total = &summary["total"];
    assert_eq!(
        (total["read"].as_u64(), total["unique"].as_u64(), total["duplicates"].as_u64(), total["updates"].as_u64()),
        (Some(6), Some(3), Some(3), Some(2))
    );

    let (keys, lines) = aws.objects(&fresh.bucket);
    assert!(
        keys.iter().all(|k| k.starts_with("ctr/year=2022/month=01/day=05/part-") && k.ends_with(".ndjson")),
        "{keys:?}"
    );
    assert_eq!(lines.len(), 3);
    let fingerprints: HashSet<String> = lines.iter().map(|l| servers::sha256_hex(l.as_bytes())).collect();
    let published: HashSet<String> = PUBLISHED.iter().map(|f| f.to_string()).collect();
    assert_eq!(fingerprints, published, "the records in the bucket hash to the published fingerprints");

    // Read again: nothing new, and the checkpoints keep the records from being read twice.
    let again = aws.host(&fresh, dir.path(), "again", &["--fingerprint", "raw"]).wait(Duration::from_secs(120));
    assert_eq!(again["total"]["read"].as_u64(), Some(0), "{again}");

    let stats = aws.callqa().args(["stats", "--sink", &fresh.out, "--format", "json"]).output().unwrap();
    assert!(stats.status.success(), "{}", String::from_utf8_lossy(&stats.stderr));
    let stderr = String::from_utf8_lossy(&stats.stderr);
    assert!(stderr.starts_with("1 contacts (3 versions) from 1 files in s3://"), "{stderr}");
}

#[test]
fn three_hosts_share_four_shards_and_a_host_killed_mid_run_loses_and_doubles_nothing() {
    let aws = Aws::start();
    let fresh = aws.fresh("hosts");
    let dir = tempfile::tempdir().unwrap();
    let (lines, expected) = servers::generate(20_000, 11);
    replay(&aws, &fresh, &lines, &dir.path().join("records.ndjson"), 4);

    let hosts: Vec<Host> = (0..3).map(|i| aws.host(&fresh, dir.path(), &format!("host{i}"), &[])).collect();
    // Kill the first host once it has written records of a shard it holds.
    let started = Instant::now();
    while !hosts[0].log().contains("shard started") || aws.objects(&fresh.bucket).0.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress:\n{}", hosts[0].log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut hosts = hosts.into_iter();
    let mut killed = hosts.next().unwrap();
    killed.signal(libc::SIGKILL);
    let status = killed.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the host was still running when killed");

    let summaries: Vec<serde_json::Value> = hosts.map(|host| host.wait(Duration::from_secs(240))).collect();
    aws.assert_exactly_once(&fresh.bucket, &expected);

    // Every shard was read by the survivors: the killed host's too, after its lease expired.
    let read: HashSet<String> = summaries.iter().flat_map(shards_read).collect();
    assert_eq!(read.len(), 4, "shards read by the survivors: {read:?}");
    // The shards were shared: each survivor read some, none held all at once.
    for summary in &summaries {
        assert!(!shards_read(summary).is_empty(), "a host read nothing: {summary}");
        assert!(summary["max_leases_held"].as_u64().unwrap() < 4, "one host held every lease: {summary}");
    }
    let total: u64 = summaries.iter().map(|s| s["total"]["unique"].as_u64().unwrap()).sum();
    assert!(total <= expected.len() as u64, "the survivors stored {total} of {} unique", expected.len());
}

#[test]
fn a_split_shard_is_read_after_its_parent_and_nothing_is_lost() {
    let aws = Aws::start();
    let fresh = aws.fresh("reshard");
    let dir = tempfile::tempdir().unwrap();
    let (lines, expected) = servers::generate(4_000, 23);
    let (first, second) = lines.split_at(2_000);
    replay(&aws, &fresh, first, &dir.path().join("first.ndjson"), 2);
    let hosts: Vec<Host> = (0..2).map(|i| aws.host(&fresh, dir.path(), &format!("host{i}"), &["--follow"])).collect();
    let started = Instant::now();
    while aws.objects(&fresh.bucket).0.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress:\n{}", hosts[0].log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Split the first shard at the middle of its hash keys, then put the rest.
    let kinesis = &aws.kinesis_client;
    aws.runtime.block_on(async {
        let shards = kinesis.list_shards().stream_name(&fresh.stream).send().await.unwrap();
        let parent = &shards.shards()[0];
        let range = parent.hash_key_range().unwrap();
        let (low, high): (u128, u128) =
            (range.starting_hash_key().parse().unwrap(), range.ending_hash_key().parse().unwrap());
        kinesis
            .split_shard()
            .stream_name(&fresh.stream)
            .shard_to_split(parent.shard_id())
            .new_starting_hash_key((low + (high - low) / 2 + 1).to_string())
            .send()
            .await
            .unwrap();
    });
    replay(&aws, &fresh, second, &dir.path().join("second.ndjson"), 2);

    let started = Instant::now();
    loop {
        let (_, stored) = aws.objects(&fresh.bucket);
        if stored.len() >= expected.len() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{} of {} stored", stored.len(), expected.len());
        std::thread::sleep(Duration::from_millis(250));
    }
    for host in &hosts {
        host.signal(libc::SIGTERM);
    }
    let logs: Vec<String> = hosts.iter().map(Host::log).collect();
    let summaries: Vec<serde_json::Value> = hosts.into_iter().map(|h| h.wait(Duration::from_secs(60))).collect();
    aws.assert_exactly_once(&fresh.bucket, &expected);

    // Parents before children: every child started after its parent ended.
    let at = |line: &str| -> i64 {
        line.split("at_ms=").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().parse().unwrap()
    };
    let all: Vec<&str> = logs.iter().flat_map(|log| log.lines()).collect();
    let parent_end = all
        .iter()
        .filter(|l| l.contains("shard finished (SHARD_END)") && l.contains("shard=shardId-000000000000"))
        .map(|l| at(l))
        .min()
        .unwrap_or_else(|| panic!("the split shard was never read to its end:\n{}", logs.join("\n")));
    let children: Vec<i64> = all
        .iter()
        .filter(|l| {
            l.contains("shard started") && (l.contains("shardId-000000000002") || l.contains("shardId-000000000003"))
        })
        .map(|l| at(l))
        .collect();
    assert!(!children.is_empty(), "the children were never read:\n{}", logs.join("\n"));
    assert!(children.iter().all(|&child| child >= parent_end), "a child started before its parent ended");
    let read: HashSet<String> = summaries.iter().flat_map(shards_read).collect();
    assert!(read.contains("shardId-000000000002") || read.contains("shardId-000000000003"), "{read:?}");
}

#[test]
fn a_crash_between_the_s3_write_and_the_completion_writes_no_record_twice() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let (lines, expected) = servers::generate(3_000, 5);

    // Files into S3, the embedded store: killed after the second object.
    let fresh = aws.fresh("crash-file");
    let input = dir.path().join("records.ndjson");
    servers::write_lines(&input, &lines);
    let store = format!("file:{}", dir.path().join("dedup.redb").display());
    let ingest = |failpoint: Option<&str>| {
        let mut command = aws.callqa();
        command.args(["ingest", "--quiet", "--batch-size", "500", "--store", &store, "--out", &fresh.out]).arg(&input);
        if let Some(failpoint) = failpoint {
            command.env("CALLQA_FAILPOINT", failpoint);
        }
        command.output().unwrap()
    };
    let crashed = ingest(Some("after-sink-write:2"));
    assert_eq!(crashed.status.signal(), Some(libc::SIGKILL), "{}", String::from_utf8_lossy(&crashed.stderr));
    let (before, _) = aws.objects(&fresh.bucket);
    assert_eq!(batches(&before), 2, "the objects of two batches before the crash: {before:?}");
    let rerun = ingest(None);
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(stderr.contains(" unfinished batches"), "the rerun settled the crashed run's batches: {stderr}");
    let (after, _) = aws.objects(&fresh.bucket);
    assert!(before.iter().all(|key| after.contains(key)), "the objects written before the crash stay");
    aws.assert_exactly_once(&fresh.bucket, &expected);

    // A stream into S3, DynamoDB: the shard's next reader settles the batch.
    let fresh = aws.fresh("crash-stream");
    replay(&aws, &fresh, &lines, &dir.path().join("stream.ndjson"), 1);
    let mut crashed = aws.host_with(&fresh, dir.path(), "crashed", &[], Some("after-sink-write:2"));
    let status = crashed.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", crashed.log());
    let (before, _) = aws.objects(&fresh.bucket);
    assert_eq!(batches(&before), 2, "the objects of two batches before the crash: {before:?}");
    let summary = aws.host(&fresh, dir.path(), "rerun", &[]).wait(Duration::from_secs(120));
    let rerun = std::fs::read_to_string(dir.path().join("rerun.log")).unwrap();
    assert!(rerun.contains("settled batches a previous owner left unfinished"), "{rerun}");
    // It resumed from the checkpoint of the first batch: the second was
    // written, not completed, and its records are duplicates now.
    assert!(summary["total"]["duplicates"].as_u64().unwrap() > 0, "{summary}");
    let (after, _) = aws.objects(&fresh.bucket);
    assert!(before.iter().all(|key| after.contains(key)), "the objects written before the crash stay");
    aws.assert_exactly_once(&fresh.bucket, &expected);
}

#[test]
fn serve_reads_the_stream_into_its_sink_and_real_time_qa_and_gives_the_leases_back() {
    let aws = Aws::start();
    let fresh = aws.fresh("serve");
    let to = format!("kinesis://{}", fresh.stream);
    aws.run(&["replay", "--to", &to, "--create", "2", SEED]);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::serve_support::create_token_in(&data, "kinesis-tests", "admin");
    let ready = dir.path().join("ready");
    let log = dir.path().join("serve.log");
    let rules = servers::repo_root().join("samples/rules.toml");
    let mut serve = Host {
        log: log.clone(),
        summary: dir.path().join("unused.json"),
        child: aws
            .callqa()
            .args(["serve", "--listen", "127.0.0.1:0", "--settle", "0s", "--kinesis", &fresh.stream])
            .args(["--leases", &fresh.leases, "--failover", "2s", "--out", &fresh.out])
            .arg("--rules")
            .arg(&rules)
            .arg("--data-dir")
            .arg(&data)
            .arg("--ready-file")
            .arg(&ready)
            .env("CALLQA_CACHE_DIR", concat!(env!("CARGO_TARGET_TMPDIR"), "/module-cache"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let child = &mut serve.child;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = Instant::now();
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&ready) {
            break address.trim().to_string();
        }
        assert!(child.try_wait().unwrap().is_none(), "serve exited:\n{}", log_text());
        assert!(started.elapsed() < Duration::from_secs(120), "serve did not start:\n{}", log_text());
        std::thread::sleep(Duration::from_millis(50));
    };

    // The stream's records reach the bucket and the metrics, and the
    // complete contact gets its real-time sheet, as over HTTP.
    let metrics = || -> String {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
        text
    };
    let sheets = data.join("sheets.ndjson");
    let started = Instant::now();
    loop {
        let text = metrics();
        let read: f64 = text
            .lines()
            .filter(|l| l.starts_with("callqa_kinesis_shard_records{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        let sheet = std::fs::read_to_string(&sheets).unwrap_or_default();
        if read == 6.0 && sheet.contains("6fe40d2a-1a89-4d73-bfcf-5d9c33894f47") {
            // One contact: its records are all on one shard, whose lag is reported.
            assert!(text.contains("callqa_kinesis_shard_millis_behind{shard=\"shardId-00000000000"), "{text}");
            let held = crate::serve_support::metric_value(&text, "callqa_kinesis_leases_held");
            assert!((1.0..=2.0).contains(&held), "{text}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "read {read} of 6:\n{text}\n{}", log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(aws.objects(&fresh.bucket).1.len(), 3, "three unique records in the bucket");

    // SIGTERM: the leases go back, so another host takes the shards at once.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", log_text());
    assert!(log_text().contains("giving the shard leases back"), "{}", log_text());
    let again = aws.host(&fresh, dir.path(), "next", &[]);
    let started = Instant::now();
    let summary = again.wait(Duration::from_secs(60));
    assert!(started.elapsed() < Duration::from_secs(20), "the next host waited for the failover: {summary}");
    assert_eq!(summary["total"]["read"].as_u64(), Some(0), "the checkpoints were kept: {summary}");
}

#[test]
fn a_batch_over_8_mib_goes_up_in_parts_and_reads_back_whole() {
    let aws = Aws::start();
    let fresh = aws.fresh("multipart");
    let dir = tempfile::tempdir().unwrap();
    let seed: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(SEED).unwrap()).unwrap();
    let lines: Vec<String> = (0..4000)
        .map(|i| {
            let mut record = seed[0].clone();
            record["ContactId"] = format!("multipart-{i:05}").into();
            record["Attributes"] = serde_json::json!({ "pad": "x".repeat(2500) });
            serde_json::to_string(&record).unwrap()
        })
        .collect();
    let input = dir.path().join("big.ndjson");
    servers::write_lines(&input, &lines);
    let store = format!("file:{}", dir.path().join("dedup.redb").display());
    aws.run(&[
        "ingest",
        "--quiet",
        "--batch-size",
        "10000",
        "--store",
        &store,
        "--out",
        &fresh.out,
        input.to_str().unwrap(),
    ]);
    let (keys, stored) = aws.objects(&fresh.bucket);
    assert_eq!(keys.len(), 1, "one batch, one day, one object: {keys:?}");
    let size: usize = stored.iter().map(|l| l.len() + 1).sum();
    assert!(size > 16 << 20, "the object holds {size} bytes: more than two parts");
    assert_eq!(stored, lines, "the parts were put together in order");
}

#[test]
fn an_unusable_record_on_the_stream_is_dead_lettered_with_its_shard_and_sequence_number() {
    let aws = Aws::start();
    let fresh = aws.fresh("letters");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.ndjson");
    let seed: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(SEED).unwrap()).unwrap();
    let good = serde_json::to_string(&seed[0]).unwrap();
    std::fs::write(&input, format!("{good}\n{{\"no contact id\": true}}\nnot json at all\n")).unwrap();
    let to = format!("kinesis://{}", fresh.stream);
    let put = aws.run(&["replay", "--to", &to, "--create", "1", input.to_str().unwrap()]);
    assert!(put.contains("3 records put") && put.contains("2 undecodable records put as they are"), "{put}");

    let letters = dir.path().join("dead.ndjson");
    let summary = aws
        .host(&fresh, dir.path(), "host", &["--dead-letter", letters.to_str().unwrap()])
        .wait(Duration::from_secs(120));
    assert_eq!(
        (summary["total"]["read"].as_u64(), summary["total"]["unique"].as_u64()),
        (Some(3), Some(1)),
        "{summary}"
    );
    assert_eq!(summary["total"]["dead_lettered"].as_u64(), Some(2));
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(&letters).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 2);
    let shard = format!("kinesis://{}/shardId-000000000000", fresh.stream);
    for letter in &letters {
        assert_eq!(letter["input"], shard.as_str(), "{letter}");
        let sequence = letter["position"]["sequenceNumber"].as_str().unwrap();
        assert!(sequence.len() > 20 && sequence.bytes().all(|b| b.is_ascii_digit()), "{letter}");
    }
    let reasons: HashSet<&str> = letters.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "each letter names its own reason: {reasons:?}");
}
