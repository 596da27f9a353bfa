//! The ingest path as Amazon Connect teams run it: a Kinesis stream of 4
//! shards (kinesalite) into an S3 bucket (s3rver), claims in DynamoDB
//! (dynalite), with one host and with three, against the same records read
//! from a file into the same bucket and store in the same run (the baseline
//! of the ratios).
//!
//! `cargo bench --bench ingest_kinesis` (uses AWS_ENDPOINT_URL_DYNAMODB,
//! AWS_ENDPOINT_URL_KINESIS and AWS_ENDPOINT_URL_S3 when set, else starts its
//! own servers). CALLQA_BENCH_RECORDS sets the number of records (default
//! 20,000, 30% copies).

#[path = "../tests/all/common/mod.rs"]
mod common;
#[path = "../tests/all/servers/mod.rs"]
mod servers;

use std::process::{Command, Stdio};
use std::time::Instant;

use servers::{Kind, Server, AWS_KEY};

struct Aws {
    dynamo: Server,
    kinesis: Server,
    s3: Server,
}

impl Aws {
    fn callqa(&self) -> Command {
        let mut command = self.dynamo.callqa();
        command.env("AWS_ENDPOINT_URL_KINESIS", &self.kinesis.endpoint).env("AWS_ENDPOINT_URL_S3", &self.s3.endpoint);
        command.stdout(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) {
        let output = self.callqa().args(args).output().unwrap();
        assert!(output.status.success(), "callqa {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// A new bucket, store, lease table and stream name.
    fn fresh(&self, name: &str) -> (String, String, String, String) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let unique = format!("bench-{name}-{nanos}");
        let bucket = format!("b{nanos:x}");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let credentials = aws_sdk_s3::config::Credentials::new(AWS_KEY, AWS_KEY, None, None, "bench");
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(credentials)
                .endpoint_url(&self.s3.endpoint)
                .load()
                .await;
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
            );
            s3.create_bucket().bucket(&bucket).send().await.unwrap();
        });
        let store = format!("dynamodb://{unique}");
        let leases = format!("dynamodb://{unique}-leases");
        self.run(&["store", "init", "--store", &store, "--leases", &leases]);
        (unique, format!("s3://{bucket}/ctr"), store, leases)
    }
}

fn main() {
    let records: usize = std::env::var("CALLQA_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let (lines, expected) = servers::generate(records, 41);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.ndjson");
    servers::write_lines(&input, &lines);
    let aws = Aws {
        dynamo: Server::shared(Kind::DynamoDb),
        kinesis: Server::shared(Kind::Kinesis),
        s3: Server::shared(Kind::S3),
    };
    println!("{} records, {} unique, 4 shards", lines.len(), expected.len());

    // Baseline: the same records from a file into a bucket, one process.
    let (_, out, store, _) = aws.fresh("file");
    let started = Instant::now();
    aws.run(&["ingest", "--quiet", "--store", &store, "--out", &out, input.to_str().unwrap()]);
    let file_rate = lines.len() as f64 / started.elapsed().as_secs_f64();

    let mut rates = Vec::new();
    // Without DynamoDB claims (the embedded store): what the stream and the
    // bucket cost by themselves, one host.
    for (hosts, embedded) in [(1, true), (1, false), (3, false)] {
        let (stream, out, store, leases) = aws.fresh(&format!("h{hosts}"));
        let store = if embedded { format!("file:{}", dir.path().join("embedded.redb").display()) } else { store };
        let to = format!("kinesis://{stream}");
        aws.run(&["replay", "--to", &to, "--create", "4", input.to_str().unwrap()]);
        let started = Instant::now();
        let children: Vec<_> = (0..hosts)
            .map(|_| {
                aws.callqa()
                    .args(["ingest", "--quiet", "--from", &to, "--store", &store, "--leases", &leases, "--out", &out])
                    .args(["--batch-size", "1000", "--failover", "2s"])
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "a host failed");
        }
        let elapsed = started.elapsed();
        rates.push((hosts, embedded, lines.len() as f64 / elapsed.as_secs_f64(), elapsed));
    }

    println!("file → S3 (1 process, DynamoDB store, baseline):       {file_rate:>9.0} records/s");
    for (hosts, embedded, rate, elapsed) in &rates {
        println!(
            "Kinesis (4 shards) → S3, {hosts} host{}, {} store: {rate:>9.0} records/s  ({:.2}x the file path; {:.1} s, \
             start-up and lease taking included)",
            if *hosts == 1 { " " } else { "s" },
            if *embedded { "embedded" } else { "DynamoDB" },
            rate / file_rate,
            elapsed.as_secs_f64(),
        );
    }
    let (one, three) = (rates[1].2, rates[2].2);
    println!(
        "three hosts / one host: {:.2}x (one dynalite, which serves one request at a time, and 2 cores)",
        three / one
    );
}
