//! The published seed data: raw fingerprints, counts, the sink, the daily figures.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::test_data::files as walk;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/ctr/connect-ctrs-with-duplicates.json");

const PUBLISHED: [&str; 6] = [
    "ef7d9f7e4b26f827d2e526c4797852d978e6e9e2ccfdcaf162e9126a4eaca6a7",
    "ef7d9f7e4b26f827d2e526c4797852d978e6e9e2ccfdcaf162e9126a4eaca6a7",
    "886176cd231d8c6a7ef5520cb60eace2d9826cb6a98031cee5fbdf8683334e58",
    "886176cd231d8c6a7ef5520cb60eace2d9826cb6a98031cee5fbdf8683334e58",
    "eaa1aa065a550dd3df0c912b1e9180100d7fa5dc9ffb378253721c68d4234b1d",
    "eaa1aa065a550dd3df0c912b1e9180100d7fa5dc9ffb378253721c68d4234b1d",
];

fn callqa(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_callqa")).args(args).output().expect("run callqa");
    assert!(output.status.success(), "callqa {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn sink_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|e| e == "ndjson") {
            lines.extend(std::fs::read_to_string(&entry).unwrap().lines().map(str::to_owned));
        }
    }
    lines
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// SHA-256 of the published seed file, byte for byte: the repository's copy
/// must be that file, not an edited one.
const SEED_SHA256: &str = "97f149838fdaceb11f3b8b98a2284e89a0ed171f4d45fff402acad9d07e05425";

#[test]
fn the_sample_copy_is_the_published_seed() {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(SAMPLE).unwrap());
    assert_eq!(hex::encode(digest), SEED_SHA256);
}

#[test]
fn seed_in_raw_mode_keeps_three_with_the_published_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let store = format!("file:{}", dir.path().join("store.redb").display());
    let summary_path = dir.path().join("summary.json");
    callqa(&[
        "ingest",
        "--fingerprint",
        "raw",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
        "--verbose",
        "--summary-json",
        summary_path.to_str().unwrap(),
        SAMPLE,
    ]);

    let report = summary(&summary_path);
    let total = &report["total"];
    assert_eq!(
        (total["read"].as_u64(), total["unique"].as_u64(), total["duplicates"].as_u64()),
        (Some(6), Some(3), Some(3))
    );
    assert_eq!(total["dead_lettered"].as_u64(), Some(0));
    assert_eq!(total["updates"].as_u64(), Some(2), "the second and third versions update the first");
    let input = &report["inputs"][0];
    assert_eq!(input["format"], "json-array");
    let fingerprints: Vec<&str> =
        input["records"].as_array().unwrap().iter().map(|r| r["fingerprint"].as_str().unwrap()).collect();
    assert_eq!(fingerprints, PUBLISHED);
    let outcomes: Vec<&str> =
        input["records"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["unique", "duplicate", "update", "duplicate", "update", "duplicate"]);
    let dropped: Vec<&str> = input["dropped"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(dropped, [PUBLISHED[1], PUBLISHED[3], PUBLISHED[5]]);

    // The sink holds the three versions, as the reference pipeline sent them.
    let files = walk(&out);
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().contains("year=2022/month=01/day=05/part-"), "{files:?}");
    let lines = sink_lines(&out);
    assert_eq!(lines.len(), 3);
    let mut sink_fingerprints: Vec<String> = lines.iter().map(|l| sha256_hex(l.as_bytes())).collect();
    sink_fingerprints.sort();
    let mut expected = vec![PUBLISHED[0], PUBLISHED[2], PUBLISHED[4]];
    expected.sort();
    assert_eq!(sink_fingerprints, expected);

    // Delivered again: all six are duplicates now, nothing new in the sink.
    callqa(&[
        "ingest",
        "--fingerprint",
        "raw",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
        SAMPLE,
    ]);
    assert_eq!(summary(&summary_path)["total"]["duplicates"].as_u64(), Some(6));
    assert_eq!(sink_lines(&out).len(), 3);

    // One contact on 2022-01-05, at its latest version.
    let stats = callqa(&["stats", "--sink", out.to_str().unwrap(), "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["date"], "2022-01-05");
    assert_eq!(rows[0]["contacts"], 1);
    assert_eq!(rows[0]["inbound"], 1);
}

#[test]
fn canonical_mode_sees_through_key_order_and_whitespace_raw_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.ndjson");
    let compact = r#"{"ContactId":"c-1","Channel":"VOICE","InitiationTimestamp":"2022-01-05T17:12:59Z","LastUpdateTimestamp":"2022-01-05T17:48:35Z","Queue":{"Name":"Q","Duration":12}}"#;
    let reordered = r#"{ "Queue": { "Duration": 12, "Name": "Q" },  "LastUpdateTimestamp": "2022-01-05T17:48:35Z", "InitiationTimestamp": "2022-01-05T17:12:59Z", "Channel": "VOICE", "ContactId": "c-1" }"#;
    std::fs::write(&input, format!("{compact}\n{reordered}\n")).unwrap();

    for (mode, unique, duplicates) in [("canonical", 1, 1), ("raw", 2, 0)] {
        let store = format!("file:{}", dir.path().join(format!("{mode}.redb")).display());
        let out = dir.path().join(format!("out-{mode}"));
        let summary_path = dir.path().join(format!("{mode}.json"));
        callqa(&[
            "ingest",
            "--fingerprint",
            mode,
            "--store",
            &store,
            "--out",
            out.to_str().unwrap(),
            "--summary-json",
            summary_path.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let report = summary(&summary_path);
        assert_eq!(report["inputs"][0]["format"], "ndjson");
        assert_eq!(report["total"]["unique"].as_u64(), Some(unique), "{mode}");
        assert_eq!(report["total"]["duplicates"].as_u64(), Some(duplicates), "{mode}");
        assert_eq!(sink_lines(&out).len(), unique as usize);
    }
}

#[test]
fn stdout_sink_and_single_object_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("one.json");
    std::fs::write(&input, "{\n  \"ContactId\": \"c-9\",\n  \"InitiationTimestamp\": \"2022-01-05T17:12:59Z\"\n}\n")
        .unwrap();
    let store = format!("file:{}", dir.path().join("s.redb").display());
    let output = callqa(&["ingest", "--store", &store, "--out", "-", input.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "{\"ContactId\":\"c-9\",\"InitiationTimestamp\":\"2022-01-05T17:12:59Z\"}\n"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("(single object): 1 read, 1 unique"));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
