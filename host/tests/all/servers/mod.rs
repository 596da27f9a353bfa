//! Real DynamoDB-compatible (dynalite), Redis, Kinesis-compatible
//! (kinesalite) and S3-compatible (s3rver) servers for the tests, and the
//! scenarios both shared-store backends must pass.
//!
//! `AWS_ENDPOINT_URL_DYNAMODB`, `CALLQA_TEST_REDIS_URL`,
//! `AWS_ENDPOINT_URL_KINESIS` and `AWS_ENDPOINT_URL_S3` name servers CI
//! started; a test fails (never skips) when one is set and does not answer.
//! Unset, a test starts its own server on a free loopback port: `redis-server`
//! from PATH, the others from `node_modules/.bin` (run `npm ci` at the
//! repository root, or `scripts/test-servers.sh`).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use crate::common::test_data::files;
use crate::common::test_data::{contact_record, Lcg};

pub mod postgres;

pub const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/ctr/connect-ctrs-with-duplicates.json");

pub const PUBLISHED: [&str; 6] = [
    "ef7d9f7e4b26f827d2e526c4797852d978e6e9e2ccfdcaf162e9126a4eaca6a7",
    "ef7d9f7e4b26f827d2e526c4797852d978e6e9e2ccfdcaf162e9126a4eaca6a7",
    "886176cd231d8c6a7ef5520cb60eace2d9826cb6a98031cee5fbdf8683334e58",
    "886176cd231d8c6a7ef5520cb60eace2d9826cb6a98031cee5fbdf8683334e58",
    "eaa1aa065a550dd3df0c912b1e9180100d7fa5dc9ffb378253721c68d4234b1d",
    "eaa1aa065a550dd3df0c912b1e9180100d7fa5dc9ffb378253721c68d4234b1d",
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DynamoDb,
    Redis,
    Kinesis,
    S3,
}

impl Kind {
    /// The variable naming a running server of this kind.
    fn endpoint_var(self) -> &'static str {
        match self {
            Kind::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Kind::Redis => "CALLQA_TEST_REDIS_URL",
            Kind::Kinesis => "AWS_ENDPOINT_URL_KINESIS",
            Kind::S3 => "AWS_ENDPOINT_URL_S3",
        }
    }
}

/// s3rver checks the access key; dynalite and kinesalite take any.
pub const AWS_KEY: &str = "S3RVER";

/// A server for one test: either the one CI started, or a child process
/// this test owns (killed on drop).
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    /// `http://127.0.0.1:PORT` (DynamoDB) or `redis://127.0.0.1:PORT` (Redis).
    pub endpoint: String,
    child: Option<Child>,
    args: Vec<String>,
    program: PathBuf,
}

impl Server {
    /// The CI server if one is configured, else a private one.
    pub fn shared(kind: Kind) -> Server {
        let var = kind.endpoint_var();
        match std::env::var(var).ok().filter(|v| !v.is_empty()) {
            Some(endpoint) => {
                let port = endpoint
                    .trim_end_matches('/')
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("{var}={endpoint}: expected a loopback URL with a port"));
                assert!(
                    wait_for_port(port, Duration::from_secs(5)),
                    "{var}={endpoint} is set but nothing answers there: start the server (scripts/test-servers.sh) or unset {var}"
                );
                let endpoint = endpoint.trim_end_matches('/').to_string();
                let endpoint = match kind {
                    // Keep the scheme and host, drop any database number.
                    Kind::Redis => format!("redis://127.0.0.1:{port}"),
                    Kind::DynamoDb | Kind::Kinesis | Kind::S3 => endpoint,
                };
                Server { kind, port, endpoint, child: None, args: Vec::new(), program: PathBuf::new() }
            }
            None => Server::private(kind, None),
        }
    }

    /// A server this test owns; with `data`, it keeps its data there across
    /// [`stop`](Self::stop) and [`start`](Self::start).
    pub fn private(kind: Kind, data: Option<&Path>) -> Server {
        let port = free_port();
        let node_server = |name: &str| {
            let local = repo_root().join("node_modules/.bin").join(name);
            assert!(
                local.exists(),
                "{name} is not installed: run `npm ci` at the repository root (needs Node.js), \
                 or scripts/test-servers.sh, or set {} to a running server",
                kind.endpoint_var()
            );
            local
        };
        let (program, mut args) = match kind {
            Kind::DynamoDb => (
                node_server("dynalite"),
                vec!["--port".to_string(), port.to_string(), "--createTableMs".into(), "0".into()],
            ),
            Kind::Kinesis => (
                node_server("kinesalite"),
                [
                    "--port",
                    &port.to_string(),
                    "--createStreamMs",
                    "0",
                    "--deleteStreamMs",
                    "0",
                    "--updateStreamMs",
                    "0",
                ]
                .into_iter()
                .chain(["--shardLimit", "1000"])
                .map(String::from)
                .collect(),
            ),
            Kind::S3 => {
                let dir = std::env::temp_dir().join(format!("callqa-s3rver-{}-{port}", std::process::id()));
                let dir = data.map(Path::to_path_buf).unwrap_or(dir);
                std::fs::create_dir_all(&dir).unwrap();
                (
                    node_server("s3rver"),
                    ["--directory", &dir.display().to_string(), "--port", &port.to_string(), "--address", "127.0.0.1"]
                        .into_iter()
                        .chain(["--silent"])
                        .map(String::from)
                        .collect(),
                )
            }
            Kind::Redis => {
                let found = std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths).map(|p| p.join("redis-server")).find(|p| p.exists())
                });
                let program = found.unwrap_or_else(|| {
                    panic!(
                        "redis-server is not on PATH: install it (`apt-get install -y redis-server`), \
                         or run scripts/test-servers.sh, or set CALLQA_TEST_REDIS_URL to a running server"
                    )
                });
                (
                    program,
                    vec![
                        "--port".to_string(),
                        port.to_string(),
                        "--bind".into(),
                        "127.0.0.1".into(),
                        "--save".into(),
                        "".into(),
                    ],
                )
            }
        };
        match (kind, data) {
            (Kind::DynamoDb, Some(dir)) => args.extend(["--path".to_string(), dir.display().to_string()]),
            (Kind::Redis, Some(dir)) => args.extend(
                ["--dir", &dir.display().to_string(), "--appendonly", "yes", "--appendfsync", "always"]
                    .map(String::from),
            ),
            (Kind::Redis, None) => args.extend(["--appendonly".to_string(), "no".to_string()]),
            (Kind::DynamoDb, None) | (Kind::Kinesis, _) | (Kind::S3, _) => {}
        }
        let endpoint = match kind {
            Kind::Redis => format!("redis://127.0.0.1:{port}"),
            Kind::DynamoDb | Kind::Kinesis | Kind::S3 => format!("http://127.0.0.1:{port}"),
        };
        let mut server = Server { kind, port, endpoint, child: None, args, program };
        server.start();
        server
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none() && !self.program.as_os_str().is_empty(), "start a private server only once");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "{} did not start on port {}",
            self.program.display(),
            self.port
        );
    }

    /// Stops a private server (SIGTERM, so Redis flushes its append-only file).
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("only a private server can be stopped");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A fresh store URL in this server: a new table (created with
    /// `callqa store init`) or a flushed Redis database.
    pub fn new_store(&self, name: &str) -> String {
        match self.kind {
            Kind::DynamoDb => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
                let store = format!("dynamodb://{name}-{}-{nanos}", std::process::id());
                let output = self.callqa().args(["store", "init", "--store", &store]).output().unwrap();
                assert!(output.status.success(), "store init: {}", String::from_utf8_lossy(&output.stderr));
                store
            }
            Kind::Redis => {
                // One database per scenario, so tests sharing CI's server never meet.
                let db = 1 + name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 15;
                let store = format!("{}/{db}", self.endpoint);
                let client = redis::Client::open(store.as_str()).unwrap();
                let mut connection = client.get_connection().unwrap();
                redis::cmd("FLUSHDB").exec(&mut connection).unwrap();
                store
            }
            Kind::Kinesis | Kind::S3 => panic!("{:?} holds streams or buckets, not dedup stores", self.kind),
        }
    }

    /// `callqa` with this server's endpoint and dummy AWS credentials (dynalite ignores them).
    pub fn callqa(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callqa"));
        command
            .env("AWS_ACCESS_KEY_ID", AWS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", AWS_KEY)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        if self.kind != Kind::Redis {
            command.env(self.kind.endpoint_var(), &self.endpoint);
        }
        command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

// ---- data ----------------------------------------------------------------

/// `lines` records in delivery order, 30% of them re-deliveries of earlier
/// lines, some contacts updated once. Returns the lines and the expected
/// unique (ContactId, LastUpdateTimestamp) set.
pub fn generate(lines: usize, seed: u64) -> (Vec<String>, HashSet<(String, String)>) {
    let mut rng = Lcg(seed);
    let unique_count = lines * 7 / 10;
    let updated = unique_count / 14;
    let contacts = unique_count - updated;
    let mut unique: Vec<String> = (0..contacts as u64).map(|c| contact_record(c, 0, &mut rng)).collect();
    unique.extend((0..updated as u64).map(|i| contact_record(i * 13 % contacts as u64, 1, &mut rng)));
    let mut out: Vec<String> = Vec::with_capacity(lines);
    let mut emitted = 0usize;
    while out.len() < lines {
        if emitted < unique.len() && (emitted == 0 || rng.below(10) < 7 || lines - out.len() <= unique.len() - emitted)
        {
            out.push(unique[emitted].clone());
            emitted += 1;
        } else {
            out.push(out[rng.below(out.len() as u64) as usize].clone());
        }
    }
    assert_eq!(emitted, unique.len());
    let expected = unique.iter().map(|l| identity(l)).collect();
    (out, expected)
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

pub fn identity(line: &str) -> (String, String) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    (value["ContactId"].as_str().unwrap().to_owned(), value["LastUpdateTimestamp"].as_str().unwrap().to_owned())
}

/// Every record in the sinks, counted by identity.
pub fn sink_counts(dirs: &[PathBuf]) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for dir in dirs {
        for file in files(dir) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "temporary file left in the sink: {}", file.display());
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                *seen.entry(identity(line)).or_default() += 1;
            }
        }
    }
    seen
}

/// The union of the sinks holds every expected record exactly once.
pub fn assert_exactly_once(dirs: &[PathBuf], expected: &HashSet<(String, String)>) {
    let seen = sink_counts(dirs);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records written more than once: {twice:?}");
    let missing: Vec<_> = expected.iter().filter(|k| !seen.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "records lost ({} of {}): {missing:?}",
        expected.len() - seen.len().min(expected.len()),
        expected.len()
    );
    assert_eq!(seen.len(), expected.len(), "records in the sinks that were never sent");
}

// ---- scenarios -----------------------------------------------------------

fn ingest(server: &Server, store: &str, out: &Path, input: &Path, extra: &[&str]) -> Command {
    let mut command = server.callqa();
    command
        .args(["ingest", "--quiet", "--store", store, "--out"])
        .arg(out)
        .args(extra)
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn check(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {:?}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
}

/// The seed data: three unique, three duplicates, the published raw fingerprints.
pub fn seed(kind: Kind) {
    let server = Server::shared(kind);
    let store = server.new_store("seed");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let summary_path = dir.path().join("summary.json");
    let run = |extra: &[&str]| {
        let output = ingest(
            &server,
            &store,
            &out,
            Path::new(SEED),
            &[&["--fingerprint", "raw", "--summary-json", summary_path.to_str().unwrap()], extra].concat(),
        )
        .output()
        .unwrap();
        check(&output, "ingest the seed");
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&summary_path).unwrap()).unwrap()
    };
    let report = run(&["--verbose"]);
    let total = &report["total"];
    assert_eq!(
        (total["read"].as_u64(), total["unique"].as_u64(), total["duplicates"].as_u64()),
        (Some(6), Some(3), Some(3))
    );
    assert_eq!(total["updates"].as_u64(), Some(2), "the second and third versions update the first");
    let records = report["inputs"][0]["records"].as_array().unwrap();
    let fingerprints: Vec<&str> = records.iter().map(|r| r["fingerprint"].as_str().unwrap()).collect();
    assert_eq!(fingerprints, PUBLISHED);
    let outcomes: Vec<&str> = records.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["unique", "duplicate", "update", "duplicate", "update", "duplicate"]);
    assert!(
        report["store"].as_str().unwrap().starts_with(&store[..store.find("://").unwrap() + 3]),
        "{}",
        report["store"]
    );

    let lines: Vec<String> = files(&out)
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(String::from).collect::<Vec<_>>())
        .collect();
    let mut hashes: Vec<String> = lines.iter().map(|l| sha256_hex(l.as_bytes())).collect();
    hashes.sort();
    let mut expected = vec![PUBLISHED[0], PUBLISHED[2], PUBLISHED[4]];
    expected.sort();
    assert_eq!(hashes, expected);

    // Delivered again, by another host (another sink): all duplicates.
    let other = dir.path().join("other");
    let output = ingest(
        &server,
        &store,
        &other,
        Path::new(SEED),
        &["--fingerprint", "raw", "--summary-json", summary_path.to_str().unwrap()],
    )
    .output()
    .unwrap();
    check(&output, "second delivery");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(report["total"]["duplicates"].as_u64(), Some(6));
    assert!(files(&other).is_empty());
}

/// Three hosts at once over overlapping inputs: each unique record once in the union.
pub fn three_hosts(kind: Kind) {
    let server = Server::shared(kind);
    let store = server.new_store("three-hosts");
    let dir = tempfile::tempdir().unwrap();
    let (lines, expected) = generate(21_000, 7);
    let n = lines.len();
    // Overlapping windows: each host sees ~45% of the deliveries; neighbours share 15%.
    let windows = [(0, n * 45 / 100), (n * 30 / 100, n * 75 / 100), (n * 60 / 100, n)];
    let mut children = Vec::new();
    let mut outs = Vec::new();
    for (host, (from, to)) in windows.iter().enumerate() {
        let input = dir.path().join(format!("host{host}.ndjson"));
        write_lines(&input, &lines[*from..*to]);
        let out = dir.path().join(format!("out{host}"));
        let summary = dir.path().join(format!("summary{host}.json"));
        children.push(
            ingest(
                &server,
                &store,
                &out,
                &input,
                &["--batch-size", "500", "--lease", "5s", "--summary-json", summary.to_str().unwrap()],
            )
            .spawn()
            .unwrap(),
        );
        outs.push(out);
    }
    let mut read = 0;
    let mut duplicates = 0;
    for (host, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        check(&output, &format!("host {host}"));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(format!("summary{host}.json"))).unwrap()).unwrap();
        read += summary["total"]["read"].as_u64().unwrap();
        duplicates += summary["total"]["duplicates"].as_u64().unwrap();
    }
    assert!(n >= 20_000);
    assert_exactly_once(&outs, &expected);
    assert_eq!(
        read - duplicates,
        expected.len() as u64,
        "every read record is either the one copy or a counted duplicate"
    );
}

/// SIGKILL at claim, sink write and completion, and from outside; restart;
/// nothing lost, nothing doubled.
pub fn sigkill_and_restart(kind: Kind) {
    let server = Server::shared(kind);
    let store = server.new_store("sigkill");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctrs.ndjson");
    let (lines, expected) = generate(4_000, 11);
    write_lines(&input, &lines);
    let out = dir.path().join("out");
    let args = ["--batch-size", "250", "--lease", "1s"];

    let mut killed = 0;
    for failpoint in ["after-claim:3", "after-sink-write:4", "before-rename:2", "after-complete:5"] {
        let output = ingest(&server, &store, &out, &input, &args).env("CALLQA_FAILPOINT", failpoint).output().unwrap();
        match output.status.signal() {
            Some(9) => killed += 1,
            _ => check(&output, failpoint),
        }
    }
    for delay in [300, 700] {
        let mut child = ingest(&server, &store, &out, &input, &args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        killed += (child.wait().unwrap().signal() == Some(9)) as usize;
    }
    assert!(killed >= 4, "only {killed} runs were actually killed");

    let output = ingest(&server, &store, &out, &input, &args).output().unwrap();
    check(&output, "restart");
    assert_exactly_once(std::slice::from_ref(&out), &expected);

    // Everything delivered again: only duplicates.
    let summary_path = dir.path().join("summary.json");
    let output = ingest(
        &server,
        &store,
        &out,
        &input,
        &[&args[..], &["--summary-json", summary_path.to_str().unwrap()]].concat(),
    )
    .output()
    .unwrap();
    check(&output, "last delivery");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["total"]["unique"], 0);
}

/// The server goes away mid-run: a clear error, nothing emitted that was
/// not claimed, and a rerun against the restarted server finishes the job.
pub fn server_stopped_mid_run(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server-data");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = Server::private(kind, Some(&data));
    let store = server.new_store("stopped");
    let input = dir.path().join("ctrs.ndjson");
    let (lines, expected) = generate(6_000, 23);
    write_lines(&input, &lines);
    let out = dir.path().join("out");
    let args = ["--batch-size", "200", "--lease", "1s", "--store-concurrency", "4"];

    let child = ingest(&server, &store, &out, &input, &args).spawn().unwrap();
    // Stop the server once the host has written something.
    let started = Instant::now();
    while files(&out).len() < 2 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.stop();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "the host must fail when its store goes away: {stderr}");
    let scheme = &store[..store.find("://").unwrap()];
    assert!(stderr.contains("dedup store") && stderr.contains(scheme), "the error names the store: {stderr}");
    let partial = sink_counts(std::slice::from_ref(&out));
    assert!(partial.len() < expected.len(), "the run was meant to be cut short");
    assert!(partial.values().all(|n| *n == 1), "a record was emitted twice before the failure");

    server.start();
    let output = ingest(&server, &store, &out, &input, &args).output().unwrap();
    check(&output, "rerun after the server came back");
    assert_exactly_once(&[out], &expected);
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
