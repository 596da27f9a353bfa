//! `cargo bench --bench serve`: sessions evaluated per second over HTTP by
//! `callqa serve` with the bundled ruleset (samples/rules.toml) from a local
//! load generator at 1, 8 and 64 concurrent connections, beside the same
//! work in-process (what `callqa check` does); and the service's start-up
//! time, cold (empty compiled-module cache) and cached.
//!
//! `CALLQA_BENCH_SECONDS` (default 5) bounds each load level.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa::qa::Inspector;
use callqa::rules::{RuleEngine, Ruleset};
use callqa::session::{read_sessions, Session};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

struct Server {
    child: Child,
    address: String,
    /// An `evaluate` token, as every client of POST /v1/sessions/evaluate needs.
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a token in `data_dir`, as an operator would before starting.
fn create_token(data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["tokens", "create", "--name", "bench", "--role", "evaluate", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run callqa tokens create");
    assert!(output.status.success(), "callqa tokens create failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Starts `callqa serve` and returns it with the time until it listened.
fn start(cache: &Path, work: &Path) -> (Server, Duration) {
    let ready = work.join(format!("ready-{}", rand_suffix()));
    let data_dir = work.join(format!("data-{}", rand_suffix()));
    let token = create_token(&data_dir);
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["serve", "--listen", "127.0.0.1:0", "--max-evaluations", "64"])
        .arg("--rules")
        .arg(repo_root().join("samples/rules.toml"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--out")
        .arg(work.join("out"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--cache-dir")
        .arg(cache)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start callqa serve");
    let mut server = Server { child, address: String::new(), token };
    loop {
        if let Ok(address) = std::fs::read_to_string(&ready) {
            server.address = address.trim().to_string();
            return (server, started.elapsed());
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("callqa serve exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn load_sessions() -> (Vec<Vec<u8>>, Vec<Arc<Session>>) {
    let dir = repo_root().join("samples/sessions");
    let mut bodies = Vec::new();
    let mut sessions = Vec::new();
    for (_, parsed) in read_sessions(&[dir]).unwrap() {
        let session = parsed.unwrap();
        bodies.push(serde_json::to_vec(&session).unwrap());
        sessions.push(Arc::new(session));
    }
    (bodies, sessions)
}

async fn http_rate(url: &str, token: &str, bodies: &[Vec<u8>], connections: usize, seconds: Duration) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + seconds;
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        // One client per worker: one keep-alive connection each.
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
        let (url, bodies, done, failed) = (url.to_string(), bodies.to_vec(), done.clone(), failed.clone());
        let authorization = format!("Bearer {token}");
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let request = client.post(&url).header("content-type", "application/json").body(body);
                let ok = match request.header("authorization", &authorization).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok { &done } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    (n as f64 / started.elapsed().as_secs_f64(), failed.load(Ordering::Relaxed))
}

fn in_process_rate(cache: &Path, sessions: &[Arc<Session>], seconds: Duration) -> f64 {
    let engine = Arc::new(RuleEngine::new(Some(cache.to_path_buf())).unwrap());
    let ruleset = Arc::new(Ruleset::load(&engine, &repo_root().join("samples/rules.toml")).unwrap());
    let inspector = Inspector::new(engine, ruleset);
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < seconds {
        // What `callqa check` does: every session, in parallel over the cores.
        n += inspector.inspect_all(sessions.to_vec()).len();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let seconds =
        Duration::from_secs_f64(std::env::var("CALLQA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0));
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("module-cache");

    let (cold_server, cold) = start(&cache, work.path());
    drop(cold_server);
    let (server, cached) = start(&cache, work.path());
    println!("start-up, bundled ruleset (8 rules, 5 modules), until listening:");
    println!("  cold (empty module cache)   {:>7.0} ms", cold.as_secs_f64() * 1e3);
    println!("  cached                      {:>7.0} ms", cached.as_secs_f64() * 1e3);

    let (bodies, sessions) = load_sessions();
    let url = format!("http://{}/v1/sessions/evaluate", server.address);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "\nsessions evaluated per second ({} sample sessions, round robin, {}s per level):",
        bodies.len(),
        seconds.as_secs_f64()
    );
    println!("  {:<34} {:>10} {:>8}", "", "sessions/s", "failed");
    // Warm up the connection pools and the server's caches.
    runtime.block_on(http_rate(&url, &server.token, &bodies, 8, Duration::from_millis(500)));
    for connections in [1, 8, 64] {
        let (rate, failed) = runtime.block_on(http_rate(&url, &server.token, &bodies, connections, seconds));
        println!("  {:<34} {:>10.0} {:>8}", format!("HTTP, {connections} connections"), rate, failed);
    }
    drop(server);
    let rate = in_process_rate(&cache, &sessions, seconds);
    println!("  {:<34} {:>10.0} {:>8}", "in-process (callqa check's path)", rate, 0);
}
