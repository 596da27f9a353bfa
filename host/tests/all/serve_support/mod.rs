//! Starting the real `callqa serve` binary on a free loopback port for the
//! serve_* tests, and the helpers they share.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A running `callqa serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    /// An admin token, created in the data directory before the start
    /// (every endpoint that stores, evaluates or changes state needs one).
    pub token: String,
}

/// Runs `callqa tokens ARGS --data-dir DATA_DIR` and returns its stdout.
pub fn run_tokens_in(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .arg("tokens")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CALLQA_TOKENS")
        .output()
        .expect("run callqa tokens");
    assert!(output.status.success(), "callqa tokens {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Creates a token of `role` (ingest, evaluate, admin) in `data_dir` and
/// returns its secret.
pub fn create_token_in(data_dir: &Path, name: &str, role: &str) -> String {
    run_tokens_in(data_dir, &["create", "--name", name, "--role", role]).trim().to_string()
}

/// `callqa tokens ARGS` on the server's tokens (a running server sees the
/// change on its next request).
pub fn run_tokens(server: &Server, args: &[&str]) -> String {
    run_tokens_in(&server.path("data"), args)
}

impl Server {
    /// Starts the server with the sample ruleset unless `args` name other
    /// rules; its data, sink and sheets live in a fresh temporary directory.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<String> = Vec::new();
        if !args.contains(&"--rules") {
            all.extend(["--rules".into(), repo_root().join("samples/rules.toml").display().to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        Self::start_in(dir, &all)
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[String]) -> Server {
        let ready = dir.path().join("ready");
        let log = dir.path().join("serve.log");
        let token = create_token_in(&dir.path().join("data"), "serve-tests", "admin");
        let child = Command::new(env!("CARGO_BIN_EXE_callqa"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--settle", "0s"])
            .arg("--ready-file")
            .arg(&ready)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("CALLQA_CACHE_DIR", concat!(env!("CARGO_TARGET_TMPDIR"), "/module-cache"))
            .env("RUST_LOG", "info")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start callqa serve");
        let mut server = Server { child, address: String::new(), dir, log, token };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(address) = std::fs::read_to_string(&ready) {
                server.address = address.trim().to_string();
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("callqa serve exited with {status} before listening:\n{}", server.log_text());
            }
            assert!(Instant::now() < deadline, "callqa serve did not start:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A client that sends the admin token with every request.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap();
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder().timeout(Duration::from_secs(60)).default_headers(headers).build().unwrap()
    }

    /// Creates a token of `role` for this server and returns its secret.
    pub fn create_token(&self, name: &str, role: &str) -> String {
        create_token_in(&self.path("data"), name, role)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every line of every record file in the sink (`out/`).
    pub fn sink_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let out = self.path("out");
        let mut stack = vec![out];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "ndjson") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    lines.extend(text.lines().map(str::to_owned));
                }
            }
        }
        lines
    }

    /// The value of one sample line of `/metrics` (`name{labels}`), 0 when absent
    /// (`/metrics` needs no token).
    pub async fn metric(&self, client: &reqwest::Client, series: &str) -> f64 {
        let text = client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        metric_value(&text, series)
    }
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client without credentials: enough for `/healthz`, `/metrics` and
/// `/v1/firehose` (its access key); [`Server::client`] sends a token.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// The sample contact records (one contact: a first version, two updates,
/// and a duplicate of each), as the bytes of each array element.
pub fn sample_ctrs() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(repo_root().join("samples/ctr/connect-ctrs-with-duplicates.json")).unwrap();
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    values.iter().map(|v| serde_json::to_vec(v).unwrap()).collect()
}

/// The sample records as one NDJSON body for `POST /v1/ctr`.
pub fn sample_ctr_ndjson() -> Vec<u8> {
    let mut ndjson = Vec::new();
    for record in sample_ctrs() {
        ndjson.extend(record);
        ndjson.push(b'\n');
    }
    ndjson
}

/// `POST /v1/sessions/evaluate` with `token`; the sheet, after a 200.
pub async fn evaluate(server: &Server, token: &str, session: Vec<u8>) -> serde_json::Value {
    let response = client()
        .post(server.url("/v1/sessions/evaluate"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

pub fn session_document(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("samples/sessions").join(name)).unwrap()
}

/// A rules directory's ruleset for the hot-loading tests: `greeting.wasm`
/// (the file the tests replace) and a bundled rule that stays put.
pub const RULESET: &str = r#"
[[rule]]
id = "greeting"
module = "greeting.wasm"
channels = ["voice"]
[rule.params]
within-seconds = 8

[[rule]]
id = "silence"
module = "bundled:silence"
"#;

/// Process control for the shutdown and memory tests.
impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0, "kill failed");
    }

    /// Waits for the server to exit by itself; `None` when it is still
    /// running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// `callqa users ARGS --data-dir DATA` with `stdin` piped in: success,
/// stdout, stderr.
pub fn users_in(data: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callqa"))
        .arg("users")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CALLQA_USERS")
        .env_remove("CALLQA_TOKENS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callqa users");
    // A command that fails before reading its stdin closes it: not our error.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}
