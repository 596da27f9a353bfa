//! Careless and hostile inputs on the reading side (issue #23): a session
//! document gets one verdict from `callqa check` and `callqa serve`; junk
//! grows the dead letters by a bounded amount, from a file and over a real
//! socket; a 300 MB JSON array is ingested in bounded memory.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common;
use crate::serve_support::{client, repo_root, Server};

/// A server with an admin token (every write needs a credential).
fn start_server(extra: &[&str]) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["tokens", "create", "--name", "ingest-hostile", "--role", "admin", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let mut args = vec!["--rules".to_string(), repo_root().join("samples/rules.toml").display().to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    (Server::start_in(dir, &args), token)
}

// ---------------------------------------------------------------------------
// One document, one verdict.

const CONTACT: &str = r#""contact":{"contact_id":"c-1","channel":"voice"}"#;

/// Documents `serve` and `check` must refuse alike, with the status `serve`
/// answers.
fn refused_documents() -> Vec<(&'static str, String, u16)> {
    let segment = |extra: &str| {
        format!(
            r#"{{"id":"s-1",{CONTACT},"segments":[{{"id":"t1","role":"agent","text":"hello","begin_ms":0,"end_ms":900{extra}}}]}}"#
        )
    };
    vec![
        ("duplicate-top-level", format!("{{\n  \"id\": \"s-1\",\n  {CONTACT},\n  \"id\": \"s-2\"\n}}\n"), 400),
        (
            "duplicate-nested",
            r#"{"id":"s-1","contact":{"contact_id":"c-1","channel":"voice","channel":"chat"}}"#.to_string(),
            400,
        ),
        (
            "duplicate-attribute",
            format!(r#"{{"id":"s-1",{CONTACT},"attributes":{{"tier":"gold","tier":"basic"}}}}"#),
            400,
        ),
        ("f32-overflow", segment(r#","sentiment_score":1e39"#), 400),
        (
            "f32-overflow-in-list",
            format!(
                r#"{{"id":"s-1",{CONTACT},"characteristics":{{"roles":[{{"role":"agent","sentiment_by_quarter":[0.5,-1e39]}}]}}}}"#
            ),
            400,
        ),
        ("not-an-object", "\"a string\"".to_string(), 400),
        ("ends-before-it-begins", segment(r#","begin_ms":5000"#).replace(r#""begin_ms":0,"#, ""), 422),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn check_and_serve_refuse_the_same_documents_with_the_same_message() {
    let (server, token) = start_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let evaluate = |body: String| {
        http.post(server.url("/v1/sessions/evaluate"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let good = format!(r#"{{"id":"s-1",{CONTACT}}}"#);
    let answer = evaluate(good.clone()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200, "{}", answer.text().await.unwrap());
    let good_path = dir.path().join("good.json");
    std::fs::write(&good_path, &good).unwrap();
    let checked = common::callqa().args(["check", "--rules", "samples/rules.toml"]).arg(&good_path).output().unwrap();
    assert_eq!(checked.status.code(), Some(0), "{}", String::from_utf8_lossy(&checked.stderr));

    for (name, document, status) in refused_documents() {
        let answer = evaluate(document.clone()).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{name}");
        let error: Value = answer.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap().to_string();

        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, &document).unwrap();
        let checked = common::callqa().args(["check", "--rules", "samples/rules.toml"]).arg(&path).output().unwrap();
        assert_eq!(checked.status.code(), Some(1), "{name}: check rejects the document");
        assert!(checked.stdout.is_empty(), "{name}: no sheet for a refused document");
        let stderr = String::from_utf8_lossy(&checked.stderr);
        let expected = format!("error: {}: {message}", path.display());
        assert!(stderr.lines().any(|l| l == expected), "{name}: check said\n{stderr}\nserve said\n{message}");
    }

    // Where the message says the problem is.
    let (_, top, _) = &refused_documents()[0];
    let answer = evaluate(top.clone()).await.unwrap();
    let error: Value = answer.json().await.unwrap();
    assert_eq!(
        error["error"]["message"],
        "not a session document: duplicate key `id` in the document at line 4 column 6"
    );
}

// ---------------------------------------------------------------------------
// Dead letters are bounded.

/// The dead-letter sink's bound: a letter takes at most this much...
const MAX_LETTER_BYTES: u64 = 2048;

/// ...and junk of N bytes grows the file by at most 2·N + 18 KiB (+2 for a
/// last line without its newline): see `DeadLetterSink`.
fn dead_letter_bound(junk_bytes: u64) -> u64 {
    2 * (junk_bytes + 1) + 18 * 1024
}

/// About `size` bytes of NDJSON junk: one-byte lines (the most letters per
/// byte: 89 times the input before the bound), control characters (6 bytes
/// each once escaped), invalid UTF-8, lines longer than the record limit,
/// objects without a ContactId. Returns the text and its number of lines.
fn junk(size: usize) -> (Vec<u8>, u64) {
    let kinds: [Vec<u8>; 8] = [
        b"x".to_vec(),
        b"1".to_vec(),
        b"{,}".to_vec(),
        vec![1u8; 100],
        b"\xff\xfe{".to_vec(),
        vec![1u8; 5000],
        br#"{"NoContactId":1}"#.to_vec(),
        (0..300u32).map(|i| (i * 7 % 251) as u8).map(|b| if b == b'\n' { b' ' } else { b }).collect(),
    ];
    let mut out = Vec::new();
    let mut lines = 0;
    // Mostly one-byte lines: the worst case for a per-letter overhead.
    while out.len() < size {
        let kind = if lines % 10 < 8 { &kinds[(lines % 2) as usize] } else { &kinds[2 + (lines as usize / 10) % 6] };
        out.extend_from_slice(kind);
        out.push(b'\n');
        lines += 1;
    }
    (out, lines)
}

/// Checks the dead letters of `lines` rejected records: every letter within
/// its size, and what is not listed one by one counted in a summary.
fn check_letters(path: &Path, junk_bytes: u64, lines: u64) {
    let text = std::fs::read(path).unwrap();
    assert!(
        (text.len() as u64) <= dead_letter_bound(junk_bytes),
        "{} bytes of dead letters for {junk_bytes} bytes of junk",
        text.len()
    );
    let mut listed = 0;
    let mut summarised = 0;
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!((line.len() as u64) < MAX_LETTER_BYTES, "a letter of {} bytes", line.len());
        let letter: Value = serde_json::from_slice(line).unwrap();
        if letter["reason"] == "suppressed" {
            summarised += letter["count"].as_u64().unwrap();
        } else {
            listed += 1;
            assert!(letter["sha256"].as_str().is_some_and(|d| d.len() == 64), "{letter}");
            assert!(letter["size"].as_u64().is_some());
        }
    }
    assert_eq!(listed + summarised, lines, "every rejected record is listed or counted");
    assert!(listed > 0);
}

#[test]
fn junk_in_a_file_grows_the_dead_letters_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (text, lines) = junk(200_000);
    let input = dir.path().join("junk.ndjson");
    std::fs::write(&input, &text).unwrap();
    let dead = dir.path().join("dead.ndjson");
    let summary = dir.path().join("summary.json");
    let output = ingest(dir.path(), &input, &dead, &summary).args(["--max-record-bytes", "4096"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(summary["total"]["dead_lettered"], lines);
    check_letters(&dead, text.len() as u64, lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn junk_posted_to_serve_grows_the_dead_letters_within_the_bound() {
    let letters = tempfile::tempdir().unwrap();
    let dead = letters.path().join("dead.ndjson");
    let (server, token) = start_server(&["--dead-letter", dead.to_str().unwrap(), "--max-record-bytes", "4096"]);
    let (text, lines) = junk(200_000);
    let answer = client()
        .post(server.url("/v1/ctr"))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["counts"]["dead_letter"], lines, "{}", answer["counts"]);
    check_letters(&dead, text.len() as u64, lines);
}

// ---------------------------------------------------------------------------
// A 300 MB JSON array in bounded memory.

/// The peak resident memory allowed for ingesting the 300 MB array. Measured
/// at about 105 MiB (it was 1,256 MiB when the array was read whole, through
/// a memory map, then copied element by element); the margin is for other
/// allocators, page sizes and store growth, not for reading the array whole.
const ARRAY_PEAK_RSS_MIB: i64 = 200;

/// One contact record of about 3 KB.
fn record(contact_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "AWSAccountId": "123456789012",
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "Channel": "VOICE",
        "ContactId": contact_id,
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": "2022-01-05T17:12:59Z",
        "LastUpdateTimestamp": "2022-01-05T17:48:35Z",
        "Queue": {"Name": "BasicQueue", "Duration": 12},
        "Attributes": {"note": "lorem ipsum dolor sit amet ".repeat(110)},
    }))
    .unwrap()
}

/// Runs `command` to a successful end; its peak resident memory (KiB).
// The child is reaped by `wait4`, which `Child::wait` cannot replace: only
// `wait4` returns the child's resource usage.
#[allow(clippy::zombie_processes)]
fn run_measured(command: &mut Command) -> i64 {
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    // Drain stderr on a thread so a chatty child never blocks on the pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: a plain rusage written by the kernel; `pid` is our own child,
    // reaped here rather than by `Child::wait` to get its resource usage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let stderr = reader.join().unwrap();
    assert!(libc::WIFEXITED(status), "the child was killed ({status}):\n{stderr}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "{stderr}");
    usage.ru_maxrss
}

#[test]
fn a_300_mb_json_array_is_ingested_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("contacts.json");
    let count: u64 = 100_000;
    let oversized_at = 40_000;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&input).unwrap());
    out.write_all(b"[\n").unwrap();
    for i in 0..count {
        if i > 0 {
            out.write_all(b",\n").unwrap();
        }
        if i == oversized_at {
            // Over --max-record-bytes (1 MiB): dead-lettered, never held whole.
            let big = json!({"ContactId": "too-big", "Pad": "x".repeat(3 << 20)});
            serde_json::to_writer(&mut out, &big).unwrap();
            continue;
        }
        out.write_all(&record(&format!("c-{i:08}"))).unwrap();
    }
    // A copy of the first record: a duplicate.
    out.write_all(b",\n").unwrap();
    out.write_all(&record("c-00000000")).unwrap();
    out.write_all(b"\n]\n").unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    let size = std::fs::metadata(&input).unwrap().len();
    assert!(size > 300_000_000, "the array is {size} bytes");

    let summary = dir.path().join("summary.json");
    let dead = dir.path().join("dead.ndjson");
    let peak_kib = run_measured(&mut ingest(dir.path(), &input, &dead, &summary));
    let peak_mib = peak_kib / 1024;
    eprintln!("peak RSS ingesting a {size}-byte JSON array: {peak_mib} MiB");
    assert!(peak_mib < ARRAY_PEAK_RSS_MIB, "peak RSS {peak_mib} MiB for a {size}-byte array");

    let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let input_summary = &summary["inputs"][0];
    assert_eq!(input_summary["format"], "json-array");
    let n = |k: &str| input_summary[k].as_u64().unwrap();
    assert_eq!((n("read"), n("unique"), n("duplicates"), n("dead_lettered")), (count + 1, count - 1, 1, 1));

    let letters: Vec<Value> =
        std::fs::read_to_string(&dead).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["reason"], "oversized");
    assert_eq!(letters[0]["position"], json!({"index": oversized_at}));
    let big = serde_json::to_vec(&json!({"ContactId": "too-big", "Pad": "x".repeat(3 << 20)})).unwrap();
    assert_eq!(letters[0]["size"], big.len());
    let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &big)).into();
    assert_eq!(letters[0]["sha256"], hex::encode(digest));
    assert_eq!(letters[0]["truncated"], true);
}

/// `callqa ingest INPUT` into `DIR/out` with a store, dead letters and a
/// summary in `DIR`.
fn ingest(
    dir: &std::path::Path,
    input: &std::path::Path,
    dead: &std::path::Path,
    summary: &std::path::Path,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callqa"));
    command
        .arg("ingest")
        .arg(input)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--store")
        .arg(format!("file:{}", dir.join("s.redb").display()))
        .arg("--dead-letter")
        .arg(dead)
        .arg("--summary-json")
        .arg(summary);
    command
}
