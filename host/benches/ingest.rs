//! `cargo bench --bench ingest`: ingest throughput on generated CTRs of
//! realistic size (about 3 KB, 30% duplicates), one core.
//!
//! For each fingerprint mode it measures the floor (read + parse +
//! fingerprint, nothing else) and the full pipeline (embedded store with
//! batched claims, directory sink with fsynced files), and their ratio.
//! `CALLQA_BENCH_RECORDS` sets the number of records (default 50,000).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa::ctr::{FingerprintMode, RecordDecoder};
use callqa::dedup::{DedupStore, EmbeddedStore, StoreSettings, SystemClock};
use callqa::ingest::{Counts, IngestOptions, IngestPipeline};
use callqa::sinks::{DeadLetterSink, DirectorySink, Sink};
use callqa::sources::{InputSource, RecordReader};

fn main() -> anyhow::Result<()> {
    let records: usize = std::env::var("CALLQA_BENCH_RECORDS").ok().and_then(|n| n.parse().ok()).unwrap_or(50_000);
    let dir = tempfile::tempdir()?;
    // `CALLQA_BENCH_INPUT=FILE` keeps the generated input there (to profile
    // `callqa ingest` on the same records).
    let input =
        std::env::var_os("CALLQA_BENCH_INPUT").map(PathBuf::from).unwrap_or_else(|| dir.path().join("ctrs.ndjson"));
    let bytes = generate(&input, records)?;
    println!(
        "{records} records, {:.1} MB ({} bytes/record on average), 30% re-deliveries, 5% updates, 3 days",
        bytes as f64 / 1e6,
        bytes / records as u64
    );
    println!(
        "{:<10} {:>22} {:>22} {:>7} {:>16} {:>16}  unique/duplicates/updates",
        "mode", "floor (parse+fp)", "full ingest", "ratio", "full, per CPU-s", "full, one core",
    );
    // `CALLQA_BENCH_MODES=raw,key` measures only those modes (for profiling).
    let only = std::env::var("CALLQA_BENCH_MODES").unwrap_or_default();
    for mode in [FingerprintMode::Raw, FingerprintMode::Key, FingerprintMode::Canonical] {
        let name = format!("{mode:?}").to_lowercase();
        if !only.is_empty() && !only.split(',').any(|m| m == name) {
            continue;
        }
        // Median of three runs each, alternating, so a burst of load on a
        // shared machine skews one sample rather than one side.
        let (mut floors, mut fulls, mut cpus, mut pinned) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut counts = Counts::default();
        for run in 0..RUNS {
            floors.push(floor(&input, mode)?);
            let cpu_before = cpu_seconds();
            let (elapsed, run_counts) = full(&input, mode, &dir.path().join(format!("{name}-{run}")))?;
            cpus.push(cpu_seconds() - cpu_before);
            fulls.push(elapsed);
            counts = run_counts;
            // The target is per core: the same run with every thread of the
            // pipeline confined to one CPU.
            let on_one_core = OneCore::pin()?;
            pinned.push(full(&input, mode, &dir.path().join(format!("{name}-{run}-pinned")))?.0);
            drop(on_one_core);
        }
        let (floor, full) = (median(floors), median(fulls));
        let cpu = median(cpus);
        let pinned = median(pinned);
        println!(
            "{:<10} {:>9.0} rec/s {:>6.0} MB/s {:>9.0} rec/s {:>6.0} MB/s {:>6.0}% {:>10.0} rec/s {:>10.0} rec/s  {}/{}/{}",
            name,
            records as f64 / floor.as_secs_f64(),
            bytes as f64 / 1e6 / floor.as_secs_f64(),
            records as f64 / full.as_secs_f64(),
            bytes as f64 / 1e6 / full.as_secs_f64(),
            100.0 * floor.as_secs_f64() / full.as_secs_f64(),
            records as f64 / cpu,
            records as f64 / pinned.as_secs_f64(),
            counts.unique,
            counts.duplicates,
            counts.updates,
        );
    }
    Ok(())
}

const RUNS: usize = 3;

fn median<T: PartialOrd + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("comparable samples"));
    samples[samples.len() / 2]
}

/// Confines this thread, and the threads it starts, to the first CPU it may
/// run on; dropping it restores the previous set.
struct OneCore(libc::cpu_set_t);

impl OneCore {
    fn pin() -> anyhow::Result<Self> {
        // SAFETY: sched_{get,set}affinity only read and write the set they are given.
        unsafe {
            let mut previous: libc::cpu_set_t = std::mem::zeroed();
            anyhow::ensure!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut previous) == 0);
            let cpu = (0..libc::CPU_SETSIZE as usize).find(|&cpu| libc::CPU_ISSET(cpu, &previous)).unwrap_or(0);
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            anyhow::ensure!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0);
            Ok(OneCore(previous))
        }
    }
}

impl Drop for OneCore {
    fn drop(&mut self) {
        // SAFETY: as in `pin`.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

/// User + system CPU time of this process: the writer thread overlaps fsync
/// waits with decoding, so wall-clock rate alone would hide the CPU it costs.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn floor(input: &Path, mode: FingerprintMode) -> anyhow::Result<Duration> {
    let decoder = RecordDecoder::new(mode);
    let started = Instant::now();
    let mut reader = RecordReader::open(&InputSource::File(input.to_path_buf()), 1 << 20)?;
    let mut decoded = 0usize;
    while let Some(raw) = reader.next_record()? {
        decoded += decoder.decode_owned(raw.bytes, raw.delivery).is_ok() as usize;
    }
    std::hint::black_box(decoded);
    Ok(started.elapsed())
}

fn full(input: &Path, mode: FingerprintMode, work: &Path) -> anyhow::Result<(Duration, Counts)> {
    // Every run starts alike: no output of an earlier run left for the
    // kernel to write back while this one fsyncs its own (each run writes
    // ~150 MB; left in place they made later runs up to 2x slower).
    settle_disk();
    let settings = StoreSettings {
        ttl: Duration::from_secs(24 * 3600),
        lease: Duration::from_secs(30),
        clock: Arc::new(SystemClock),
    };
    let started = Instant::now();
    let store = Arc::new(EmbeddedStore::open(&work.join("store.redb"), settings)?);
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(DirectorySink::open(&work.join("out"), store.instance_id(), false)?)];
    let options = IngestOptions { fingerprint: mode, ..IngestOptions::default() };
    let pipeline = IngestPipeline::new(store, sinks, DeadLetterSink::open(None)?, options);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let summary = runtime.block_on(pipeline.run(&[InputSource::File(input.to_path_buf())]))?;
    let elapsed = started.elapsed();
    assert_eq!(summary.total.read, summary.total.unique + summary.total.duplicates);
    std::fs::remove_dir_all(work)?;
    Ok((elapsed, summary.total))
}

fn settle_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Writes `count` NDJSON CTRs shaped like Amazon Connect's (about 3 KB each,
/// keys sorted as Connect writes them), in the order a stream delivers them:
/// contacts initiated over three days in time order, 30% of the lines a
/// re-delivery of one of the last few thousand lines (a Kinesis or Firehose
/// retry), and 5% a later version of a recent contact (an update).
fn generate(path: &Path, count: usize) -> anyhow::Result<u64> {
    const RECENT: usize = 5000;
    let mut state = 7u64;
    let mut next = move |n: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::with_capacity(RECENT);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut total = 0u64;
    let mut contact = 0u64;
    for _ in 0..count {
        let roll = next(100);
        let line = if !recent.is_empty() && roll < 30 {
            recent[next(recent.len() as u64) as usize].clone()
        } else if contact > 0 && roll < 35 {
            let earlier = contact.saturating_sub(next(2000)).max(1);
            ctr(earlier, 1 + next(5), count as u64, &mut next)
        } else {
            contact += 1;
            ctr(contact, 0, count as u64, &mut next)
        };
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        total += line.len() as u64 + 1;
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(line);
    }
    out.flush()?;
    Ok(total)
}

/// Contact `n`'s CTR at `version` (0 = first delivery; later versions carry
/// a later LastUpdateTimestamp). Contacts spread over three days in order.
fn ctr(n: u64, version: u64, count: u64, next: &mut impl FnMut(u64) -> u64) -> String {
    let id = format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", n, n % 65536, n % 4096, (n * 7) % 4096, n * 2654435761);
    let instance = "arn:aws:connect:us-east-1:123456789012:instance/258252ea-967d-46f9-a510-b7f0bae69eea";
    let day = 1 + n * 3 / count.max(1);
    let minute = n % 60;
    let updated = 35 + version;
    serde_json::json!({
        "AWSAccountId": "123456789012",
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "Agent": {
            "ARN": format!("{instance}/agent/e7c9afb6-b1e1-4afa-b5b5-{:012x}", next(1 << 40)),
            "AfterContactWorkDuration": next(120),
            "AfterContactWorkEndTimestamp": format!("2024-03-{day:02}T10:{minute:02}:17Z"),
            "AfterContactWorkStartTimestamp": format!("2024-03-{day:02}T10:{minute:02}:12Z"),
            "AgentInteractionDuration": next(900),
            "ConnectedToAgentTimestamp": format!("2024-03-{day:02}T10:{minute:02}:32Z"),
            "CustomerHoldDuration": next(300),
            "HierarchyGroups": {
                "Level1": {"ARN": format!("{instance}/agent-group/bf0c4e88-50bd-4bb9-823c-8650c630cf87"), "GroupName": "TCC"},
                "Level2": {"ARN": format!("{instance}/agent-group/647c7f7d-250b-426a-a0a3-1c1b5c43841d"), "GroupName": "TCC ALL"},
                "Level3": null, "Level4": null, "Level5": null
            },
            "LongestHoldDuration": next(200),
            "NumberOfHolds": next(3),
            "RoutingProfile": {"ARN": format!("{instance}/routing-profile/304e0036-2322-45fd-80c4-c97e184c388b"), "Name": "TCC ALL"},
            "Username": format!("agent.{}", next(500))
        },
        "AgentConnectionAttempts": 1,
        "AnsweringMachineDetectionStatus": null,
        "Attributes": {"Acct_Code": "", "AtcResult": "N", "CodeNum": next(10).to_string(), "PathCode": format!("{}_002_00002", next(9_999_999)), "SurveyFlag": "N", "SurveyPlay": "All", "TodayContact": "Y", "Type_Flag": "", "ewtcheck": "Y"},
        "Campaign": {"CampaignId": null},
        "Channel": "VOICE",
        "ConnectedToSystemTimestamp": format!("2024-03-{day:02}T10:{minute:02}:00Z"),
        "ContactDetails": {},
        "ContactId": id,
        "CustomerEndpoint": {"Address": format!("+1900{:07}", next(10_000_000)), "Type": "TELEPHONE_NUMBER"},
        "DisconnectReason": "CUSTOMER_DISCONNECT",
        "DisconnectTimestamp": format!("2024-03-{day:02}T10:{minute:02}:28Z"),
        "InitialContactId": null,
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": format!("2024-03-{day:02}T10:{minute:02}:00Z"),
        "InstanceARN": instance,
        "LastUpdateTimestamp": format!("2024-03-{day:02}T10:{minute:02}:{updated:02}Z"),
        "MediaStreams": [{"Type": "AUDIO"}],
        "NextContactId": null,
        "PreviousContactId": null,
        "Queue": {"ARN": format!("{instance}/queue/078ccbaa-ae69-4bf9-84bc-5c60ca9b1478"), "DequeueTimestamp": format!("2024-03-{day:02}T10:{minute:02}:32Z"), "Duration": next(600), "EnqueueTimestamp": format!("2024-03-{day:02}T10:{minute:02}:05Z"), "Name": "TCC Refrig AC LLA"},
        "Recording": {"DeletionReason": null, "Location": format!("amazon-connect-b278e465e71c/connect/lgeai/CallRecordings/2024/03/{day:02}/{id}_20240301T10:20_UTC.wav"), "Status": "AVAILABLE", "Type": "AUDIO"},
        "Recordings": [{"DeletionReason": null, "FragmentStartNumber": null, "FragmentStopNumber": null, "Location": format!("amazon-connect-b278e465e71c/connect/lgeai/CallRecordings/2024/03/{day:02}/{id}_20240301T10:20_UTC.wav"), "MediaStreamType": "AUDIO", "ParticipantType": null, "StartTimestamp": null, "Status": "AVAILABLE", "StopTimestamp": null, "StorageType": "S3"}],
        "References": [],
        "ScheduledTimestamp": null,
        "SystemEndpoint": {"Address": "+18003335555", "Type": "TELEPHONE_NUMBER"},
        "TransferCompletedTimestamp": null,
        "TransferredToEndpoint": null,
        "VoiceIdResult": null
    })
    .to_string()
}
