//! The embedded sheet store at a month's scale (issue #19's speed section):
//! `cargo bench --bench sheet_store`.
//!
//! 1. **Writes.** Generates `CALLQA_BENCH_SHEETS` evaluations (default
//!    1,000,000) without running rules: sessions of a 500-agent centre (25
//!    teams under a three-level hierarchy: site / department / team), 30
//!    days of contacts over a few queues, 20–40 segments each; a sheet of 12
//!    items each with realistic rule ids, about 10% of items failing (each
//!    rule at its own rate) and some not applicable, findings pointing at
//!    segments. Stores them through `SheetStore::put_all`, 1,000 per
//!    transaction (`CALLQA_BENCH_BATCH`) as `check` stores a run's sheets,
//!    into a file in a temporary directory; prints inserts/s (generation
//!    excluded, JSON encoding included, as `check` pays it) and the size.
//! 2. **Reads.** Over `CALLQA_BENCH_SAMPLES` samples (default 300) with
//!    varied parameters, interleaved: the list query with the common
//!    filters (a team, 7 days, a rule, outcome fail, limit 100), the same
//!    without the rule, the same for a department (level 2 of the
//!    hierarchy), and the fetch of one session's sheet; p50/p95/p99 in ms,
//!    against the 50 ms target for the list.
//! 3. **What storing costs `check`.** The bundled ruleset
//!    (`samples/rules.toml`) over the sample sessions repeated, and over
//!    the generated 10-minute call, in batches of `CALLQA_BENCH_CHECK_BATCH`
//!    (default 1,000) sessions, each with its own session id: inspecting
//!    alone against inspecting and storing the batch with `put_all` into the
//!    store of step 1, interleaved in rounds (`CALLQA_BENCH_ROUNDS`, default
//!    10); sessions/s for both and the ratio, against the target (storing
//!    costs at most 20% of the throughput); beside them `put_all` alone,
//!    the JSON encoding of the sheet and session alone, and their size.
//!
//! 4. **The workbench's sheets page.** `callqa serve` over the same store,
//!    a reviewer signed in, over real HTTP on loopback: the time to the
//!    first byte of `/sheets` with the common filters (as step 2's first
//!    list, with the page's count of matches), with a team and a week, and
//!    unfiltered (the month's latest 50); p50/p95/p99 in ms against the
//!    100 ms target, beside step 2's list p95 measured in the same run.
//!    Then the dashboard (a tenth of the samples): a team's week, and every
//!    team over two weeks.
//!
//! `CALLQA_BENCH_STORE=PATH` keeps the store at PATH instead of a temporary
//! directory, and reuses it when it holds the evaluations already (to try
//! a schema change on the same data: the migration runs at open and is
//! timed); step 3's evaluations are deleted at the end, so it stays as
//! generated. `CALLQA_BENCH_STORE=postgres://USER@HOST:PORT/DB` runs the
//! same steps on PostgreSQL (an empty database, or one this bench filled).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callqa::qa::sheet_store::{SheetFilter, SheetRecord, SheetStore, SheetStoreUrl};
use callqa::qa::{Inspector, ItemStatus, QaSheet, SheetItem};
use callqa::rules::form::{Form, Grade, Section};
use callqa::rules::{Finding, RuleEngine, Ruleset};
use callqa::session::{read_sessions, synthetic, Agent, Channel, Contact, Event, InitiationMethod, Role, Segment};
use callqa::session::{Sentiment, Session};
use chrono::{DateTime, Utc};
use serde_json::json;

/// 2026-11-01T00:00:00Z: 08:00 in Shanghai, the first day of the month.
const MONTH_START: i64 = 1_793_491_200;
const DAYS: i64 = 30;
const AGENTS: usize = 500;
const TEAMS: usize = 25;
const SITES: [&str; 2] = ["杭州客服中心", "成都客服中心"];
const DEPARTMENTS: [&str; 3] = ["售前", "售后", "投诉"];

/// The 12 items of the generated ruleset: id, section, weight, critical,
/// the share of sessions where the item fails and where it does not apply.
const RULES: [(&str, &str, f64, bool, f64, f64); 12] = [
    ("greeting", "courtesy", 1.0, false, 0.04, 0.0),
    ("identity-check", "process", 1.0, false, 0.06, 0.25),
    ("forbidden-phrases", "courtesy", 2.0, true, 0.02, 0.0),
    ("silence", "process", 1.0, false, 0.12, 0.05),
    ("talk-speed", "courtesy", 0.5, false, 0.08, 0.05),
    ("interruptions", "courtesy", 0.5, false, 0.15, 0.05),
    ("empathy", "courtesy", 1.0, false, 0.18, 0.10),
    ("hold-etiquette", "process", 0.5, false, 0.07, 0.50),
    ("chase-follow-up", "resolution", 2.0, false, 0.22, 0.55),
    ("ticket-remark", "resolution", 1.0, false, 0.10, 0.10),
    ("closing", "courtesy", 1.0, false, 0.09, 0.0),
    ("sentiment-recovery", "resolution", 1.0, false, 0.12, 0.30),
];

const AGENT_LINES: [&str; 10] = [
    "您好，欢迎致电售后服务中心，工号{}很高兴为您服务，请问有什么可以帮您？",
    "好的，我帮您查询一下订单，请稍等",
    "您的订单目前在配送站，预计明天上午送达",
    "这边看到维修工单已经派给师傅了，师傅会提前电话联系您",
    "请问您方便提供一下收货地址和联系电话吗？",
    "好的，已经为您登记了，稍后会有短信通知",
    "非常理解您的心情，给您添麻烦了，我马上帮您催一下",
    "请您稍等，我这边需要核实一下，大概一分钟",
    "明白，这个情况我记录下来了，会在24小时内给您回复",
    "请问还有其他可以帮您的吗？感谢您的来电，祝您生活愉快",
];
const CUSTOMER_LINES: [&str; 8] = [
    "我的冰箱不制冷了，上周刚买的",
    "我已经催了好几次了，一直没人上门",
    "订单号是 2026110112345",
    "地址是幸福路 88 号 3 单元 502",
    "那大概什么时候能到？",
    "好的，谢谢",
    "能不能快一点，家里东西都要坏了",
    "上次说今天给我回电话，到现在也没人联系我",
];

/// SplitMix64: deterministic, so every run stores the same month.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn team_path(team: usize) -> [String; 3] {
    let site = SITES[team * SITES.len() / TEAMS];
    let department = DEPARTMENTS[team % DEPARTMENTS.len()];
    [site.to_owned(), department.to_owned(), format!("{department}{}组", team + 1)]
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// What the generated month is made of, shared by every session.
struct Month {
    agents: Vec<Agent>,
    modules: Vec<String>,
    form: Form,
}

impl Month {
    fn new() -> Month {
        let mut rng = Rng(7);
        let agents = (0..AGENTS)
            .map(|i| Agent {
                id: format!("agent-{:04}", 1000 + i),
                username: Some(format!("agent.{i}")),
                hierarchy: team_path(i * TEAMS / AGENTS).to_vec(),
            })
            .collect();
        let modules = RULES.iter().map(|_| rng.hex(64)).collect();
        let sections = ["courtesy", "process", "resolution"]
            .iter()
            .map(|id| Section { id: (*id).to_owned(), title: None, weight: 1.0 })
            .collect();
        let grades = [("excellent", 0.9), ("good", 0.8), ("pass", 0.6), ("fail", 0.0)]
            .iter()
            .map(|(name, min)| Grade { name: (*name).to_owned(), min: *min })
            .collect();
        Month { agents, modules, form: Form::new(sections, grades).unwrap() }
    }

    /// The `k`th of `n` contacts of the month: its day from its position,
    /// the time within the day's service hours (08:00–22:00 in Shanghai).
    fn session(&self, rng: &mut Rng, k: usize, n: usize) -> Session {
        let day = (k as i64 * DAYS) / n as i64;
        let initiated = MONTH_START + day * 86_400 + rng.below(14 * 3600) as i64;
        let agent = &self.agents[rng.below(AGENTS as u64) as usize];
        let chat = rng.below(4) == 0;
        let queue = if chat {
            "Chat-ZH"
        } else {
            ["Hotline-ZH", "Aftersales-ZH", "Billing-ZH", "Complaints-ZH", "Outbound-ZH"][rng.below(5) as usize]
        };
        let id = rng.uuid();
        let count = 20 + rng.below(21) as usize;
        let mut clock = 1_000u32;
        let segments: Vec<Segment> = (0..count)
            .map(|i| {
                let role = if i % 2 == 0 { Role::Agent } else { Role::Customer };
                let text = match role {
                    Role::Agent => {
                        AGENT_LINES[if i == 0 { 0 } else { 1 + rng.below(9) as usize }].replace("{}", &agent.id[6..])
                    }
                    _ => CUSTOMER_LINES[rng.below(8) as usize].to_owned(),
                };
                let begin = clock;
                let end = begin + 1_500 + rng.below(8_000) as u32;
                clock = end + 300 + rng.below(4_000) as u32;
                let (sentiment, score) = match rng.below(10) {
                    0..=5 => (Sentiment::Neutral, 0.0),
                    6 | 7 => (Sentiment::Positive, 1.2),
                    _ => (Sentiment::Negative, -1.6),
                };
                Segment {
                    id: format!("seg-{:02}", i + 1),
                    role,
                    text,
                    begin_ms: begin,
                    end_ms: end,
                    sentiment: (!chat).then_some(sentiment),
                    sentiment_score: (!chat).then_some(score),
                    loudness: None,
                    agent_id: None,
                }
            })
            .collect();
        let connected = initiated + 10 + rng.below(60) as i64;
        let ended = connected + i64::from(clock / 1000) + 5;
        let ticket = format!("T-{}", 100_000 + rng.below(900_000));
        let events: Vec<Event> = (0..rng.below(4))
            .map(|e| Event {
                kind: ["ticket-chased", "remark", "callback-scheduled"][e as usize].to_owned(),
                at: at(initiated - 3600 + e as i64 * 1800),
                attributes: json!({"ticket": ticket, "by": agent.id}).as_object().unwrap().clone(),
            })
            .collect();
        let attributes = json!({"order": {"id": format!("2026{}", rng.below(10_000_000_000))}, "tier": "gold"});
        Session {
            id: id.clone(),
            contact: Contact {
                contact_id: id,
                channel: if chat { Channel::Chat } else { Channel::Voice },
                initiation_method: Some(if queue == "Outbound-ZH" {
                    InitiationMethod::Outbound
                } else {
                    InitiationMethod::Inbound
                }),
                queue: Some(queue.to_owned()),
                agent: Some(agent.clone()),
                scenario: None,
                language: Some("zh-CN".to_owned()),
                initiated_at: Some(at(initiated)),
                connected_to_agent_at: Some(at(connected)),
                ended_at: Some(at(ended)),
            },
            agents: vec![agent.clone()],
            segments: Some(segments),
            events,
            attributes: attributes.as_object().unwrap().clone(),
            characteristics: None,
            notes: Vec::new(),
        }
    }

    fn sheet(&self, rng: &mut Rng, session: &Session) -> QaSheet {
        let segments = session.segments();
        let items = RULES
            .iter()
            .zip(&self.modules)
            .map(|((rule, section, weight, critical, fail, not_applicable), module)| {
                let u = rng.unit();
                let outcome = if u < *fail {
                    ItemStatus::Fail
                } else if u < fail + not_applicable {
                    ItemStatus::NotApplicable
                } else {
                    ItemStatus::Pass
                };
                let finding = |rng: &mut Rng, message: &str| {
                    let s = &segments[rng.below(segments.len() as u64) as usize];
                    Finding {
                        message: message.to_owned(),
                        segment_id: Some(s.id.clone()),
                        begin_ms: Some(s.begin_ms),
                        end_ms: Some(s.end_ms),
                    }
                };
                let (reason, findings) = match outcome {
                    ItemStatus::Fail => (
                        Some(format!("{rule}: the agent did not meet the standard")),
                        (0..1 + rng.below(3)).map(|_| finding(rng, "未达标：见此句")).collect(),
                    ),
                    ItemStatus::NotApplicable => (Some(format!("{rule}: nothing to check in this contact")), vec![]),
                    _ if rng.below(3) == 0 => (None, vec![finding(rng, "达标")]),
                    _ => (None, vec![]),
                };
                SheetItem {
                    rule_id: (*rule).to_owned(),
                    rule_version: "0.4.1".to_owned(),
                    module_sha256: module.clone(),
                    outcome,
                    weight: *weight,
                    section: Some((*section).to_owned()),
                    critical: *critical,
                    shadow: false,
                    score: None,
                    reason,
                    error: None,
                    findings,
                    trace: None,
                    fuel_used: 40_000 + rng.below(400_000),
                    micros: 20 + rng.below(300),
                }
            })
            .collect();
        QaSheet::new(
            session.id.clone(),
            session.contact.contact_id.clone(),
            session.contact.channel.as_str().to_owned(),
            items,
            &self.form,
        )
    }
}

/// Where the store is: a SQLite file, or a PostgreSQL database.
enum Place {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Place {
    fn url(&self) -> SheetStoreUrl {
        match self {
            Place::Sqlite(path) => SheetStoreUrl::Sqlite(path.clone()),
            Place::Postgres(url) => SheetStoreUrl::Postgres(url.clone()),
        }
    }

    /// The data's size on disk: the file with its WAL, or the database.
    fn size(&self) -> String {
        match self {
            Place::Sqlite(path) => {
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                gb([path.to_path_buf(), wal].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum())
            }
            Place::Postgres(url) => {
                let url = url.clone();
                // Its own thread: the blocking client cannot nest in another's runtime.
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    let row = client.query_one("SELECT pg_database_size(current_database())", &[]).unwrap();
                    gb(row.get::<_, i64>(0) as u64)
                })
                .join()
                .unwrap()
            }
        }
    }

    /// Deletes the evaluations after the first `generated` (step 3's).
    fn truncate(&self, generated: i64) {
        let statements = ["DELETE FROM items WHERE evaluation_id > $1", "DELETE FROM evaluations WHERE id > $1"];
        match self {
            Place::Sqlite(path) => {
                let db = rusqlite::Connection::open(path).unwrap();
                db.busy_timeout(Duration::from_secs(10)).unwrap();
                for sql in statements {
                    db.execute(&sql.replace("$1", "?1"), [generated]).unwrap();
                }
            }
            Place::Postgres(url) => {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    for sql in statements {
                        client.execute(sql, &[&generated]).unwrap();
                    }
                })
                .join()
                .unwrap();
            }
        }
    }
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// Stores `n` generated evaluations; prints the rate as it goes.
fn fill(store: &SheetStore, place: &Place, n: usize, batch: usize) {
    let month = Month::new();
    let mut rng = Rng(42);
    let version = Rng(1).hex(64);
    let (mut storing, mut generating) = (Duration::ZERO, Duration::ZERO);
    let (mut sheet_bytes, mut session_bytes, mut measured) = (0usize, 0usize, 0usize);
    let report_every = (n / 10).max(batch);
    let (mut since_report, mut time_since_report) = (0usize, Duration::ZERO);
    println!("storing {n} evaluations, {batch} per transaction:");
    let mut k = 0;
    while k < n {
        let size = batch.min(n - k);
        let started = Instant::now();
        let sessions: Vec<Session> = (k..k + size).map(|i| month.session(&mut rng, i, n)).collect();
        let sheets: Vec<QaSheet> = sessions.iter().map(|s| month.sheet(&mut rng, s)).collect();
        let latest = sessions.iter().filter_map(|s| s.contact.initiated_at).max().unwrap();
        let evaluated_at = latest + chrono::Duration::minutes(90);
        if k % (batch * 50) == 0 {
            sheet_bytes += serde_json::to_string(&sheets[0]).unwrap().len();
            session_bytes += serde_json::to_string(&sessions[0]).unwrap().len();
            measured += 1;
        }
        let records: Vec<SheetRecord<'_>> = sheets
            .iter()
            .zip(&sessions)
            .map(|(sheet, session)| SheetRecord { sheet, session, ruleset_version: &version, evaluated_at })
            .collect();
        generating += started.elapsed();
        let started = Instant::now();
        store.put_all(&records).unwrap();
        let took = started.elapsed();
        storing += took;
        time_since_report += took;
        since_report += size;
        k += size;
        if since_report >= report_every || k == n {
            let rate = since_report as f64 / time_since_report.as_secs_f64();
            println!("  {k:>9} stored   {rate:>8.0}/s over the last {since_report}   {} on disk", place.size());
            (since_report, time_since_report) = (0, Duration::ZERO);
        }
    }
    println!(
        "inserts: {:.0}/s over {n} ({:.1} s storing, {:.1} s generating, not counted); a sheet ≈ {:.1} KB, \
         a session ≈ {:.1} KB of JSON",
        n as f64 / storing.as_secs_f64(),
        storing.as_secs_f64(),
        generating.as_secs_f64(),
        sheet_bytes as f64 / measured as f64 / 1e3,
        session_bytes as f64 / measured as f64 / 1e3,
    );
}

fn percentiles(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.50), at(0.95), at(0.99))
}

fn verdict(holds: bool) -> &'static str {
    if holds {
        "holds"
    } else {
        "MISSES"
    }
}

/// The list and fetch timings; returns the p95 of the common filter.
fn reads(store: &SheetStore, samples: usize) -> f64 {
    let count = store.count().unwrap();
    // Sessions to fetch, spread over the month: the last before a random hour.
    let ids: Vec<String> = {
        let mut rng = Rng(99);
        (0..samples)
            .filter_map(|_| {
                let hour = MONTH_START + rng.below(DAYS as u64 * 24) as i64 * 3600;
                let filter = SheetFilter { until: Some(at(hour)), limit: 1, ..SheetFilter::default() };
                store.list(&filter).unwrap().pop().map(|r| r.session_id)
            })
            .collect()
    };
    let mut rng = Rng(2026);
    let filters: Vec<(SheetFilter, SheetFilter, SheetFilter)> = (0..samples)
        .map(|_| {
            let team = team_path(rng.below(TEAMS as u64) as usize);
            let since = MONTH_START + rng.below((DAYS - 6) as u64) as i64 * 86_400;
            let week = SheetFilter {
                since: Some(at(since)),
                until: Some(at(since + 7 * 86_400)),
                outcome: Some(ItemStatus::Fail),
                limit: 100,
                ..SheetFilter::default()
            };
            let rule = RULES[rng.below(RULES.len() as u64) as usize].0;
            (
                SheetFilter { team: Some(team[2].clone()), rule: Some(rule.to_owned()), ..week.clone() },
                SheetFilter { team: Some(team[2].clone()), ..week.clone() },
                SheetFilter { team: Some(team[1].clone()), rule: Some(rule.to_owned()), ..week },
            )
        })
        .collect();
    // Warm the page cache and the statements as a long-running reader would be.
    for (a, b, c) in filters.iter().take(10) {
        for f in [a, b, c] {
            store.list(f).unwrap();
        }
    }
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut rows = [0usize; 3];
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    for ((a, b, c), id) in filters.iter().zip(&ids) {
        for (i, f) in [a, b, c].into_iter().enumerate() {
            let t = Instant::now();
            rows[i] += store.list(f).unwrap().len();
            times[i].push(ms(t));
        }
        let t = Instant::now();
        assert!(store.sheet(id).unwrap().is_some());
        times[3].push(ms(t));
    }
    println!("\nreads over {count} evaluations, {samples} samples each, interleaved (ms):");
    println!("  {:<52} {:>8} {:>8} {:>8} {:>10}", "", "p50", "p95", "p99", "rows/query");
    let labels = [
        "list: team, 7 days, rule, fail, limit 100",
        "list: team, 7 days, any item failed, limit 100",
        "list: department (level 2), 7 days, rule, fail",
        "fetch one session's sheet",
    ];
    let mut p95s = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let (p50, p95, p99) = percentiles(&mut times[i]);
        p95s.push(p95);
        let per = if i < 3 { format!("{:.1}", rows[i] as f64 / samples as f64) } else { "1".into() };
        println!("  {label:<52} {p50:>8.2} {p95:>8.2} {p99:>8.2} {per:>10}");
    }
    p95s[0].max(p95s[1])
}

/// Step 4: the sheets page's time to first byte over HTTP; returns the
/// slowest p95.
fn pages(place: &Place, samples: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // `CALLQA_BIN`: another build of the binary (the one beside this bench by default).
    let callqa = std::env::var("CALLQA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_callqa").to_owned());
    let callqa = callqa.as_str();
    let data = dir.path().join("data");
    let mut add = std::process::Command::new(callqa)
        .args(["users", "add", "bench", "--role", "reviewer", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    add.stdin.take().unwrap().write_all(b"bench-password-1234\n").unwrap();
    assert!(add.wait().unwrap().success());
    let store = match place {
        Place::Sqlite(path) => format!("sqlite:{}", path.display()),
        Place::Postgres(url) => url.clone(),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let ready = dir.path().join("ready");
    let mut serve = std::process::Command::new(callqa)
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-cookies", "--sheets", &store, "--rules"])
        .arg(root.join("samples/rules.toml"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--data-dir")
        .arg(&data)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&ready) {
            break address.trim().to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(600), "callqa serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut rng = Rng(4242);
    let urls: Vec<[String; 3]> = (0..samples)
        .map(|_| {
            let team = team_path(rng.below(TEAMS as u64) as usize);
            let since = MONTH_START + rng.below((DAYS - 6) as u64) as i64 * 86_400;
            let (from, to) = (at(since).format("%Y-%m-%d"), at(since + 6 * 86_400).format("%Y-%m-%d"));
            let rule = RULES[rng.below(RULES.len() as u64) as usize].0;
            let team = callqa_url_escape(&team[2]);
            [
                format!("/sheets?team={team}&since={from}&until={to}&rule={rule}&outcome=fail"),
                format!("/sheets?team={team}&since={from}&until={to}"),
                "/sheets".to_owned(),
            ]
        })
        .collect();
    let times = runtime.block_on(async {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let base = format!("http://{address}");
        let login = client
            .post(format!("{base}/login"))
            .header("origin", &base)
            .form(&[("username", "bench"), ("password", "bench-password-1234"), ("next", "/sheets")])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 303, "the bench user could not sign in");
        let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        // The dashboard: a team's week, and the whole centre's two weeks
        // (what it opens on), fewer samples (each is the full aggregate).
        let mut dashboard: [Vec<f64>; 2] = Default::default();
        for (i, set) in urls.iter().enumerate().take(samples / 10 + 1) {
            let team_week = set[1].replacen("/sheets", "/dashboard", 1);
            let days = "/dashboard?since=2026-11-10&until=2026-11-23".to_owned();
            for (j, path) in [team_week, days].iter().enumerate() {
                let t = Instant::now();
                let response = client.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
                let first_byte = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(response.status(), 200, "{path}");
                assert!(response.text().await.unwrap().contains("chart-score-trend"), "{path} is not the dashboard");
                if i > 0 {
                    dashboard[j].push(first_byte);
                }
            }
        }
        let mut times: [Vec<f64>; 3] = Default::default();
        for (i, set) in urls.iter().enumerate() {
            for (j, path) in set.iter().enumerate() {
                let t = Instant::now();
                let response = client.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
                // Headers in: the first byte. The body is read but not timed.
                let first_byte = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(response.status(), 200, "{path}");
                let body = response.text().await.unwrap();
                assert!(body.contains("sheet-count"), "{path} is not the sheets page");
                // The first ten warm the page cache, as step 2's warm-up does.
                if i >= 10 {
                    times[j].push(first_byte);
                }
            }
        }
        (times, dashboard)
    });
    let (times, dashboard) = times;
    let _ = serve.kill();
    let _ = serve.wait();
    println!("\nthe workbench's sheets page over HTTP, time to first byte, {} samples each (ms):", samples - 10);
    println!("  {:<52} {:>8} {:>8} {:>8}", "", "p50", "p95", "p99");
    let labels =
        ["page: team, 7 days, rule, fail (+ count)", "page: team, 7 days (+ count)", "page: no filter (+ count)"];
    let mut slowest: f64 = 0.0;
    for (label, mut t) in labels.iter().zip(times) {
        let (p50, p95, p99) = percentiles(&mut t);
        slowest = slowest.max(p95);
        println!("  {label:<52} {p50:>8.2} {p95:>8.2} {p99:>8.2}");
    }
    let labels = ["dashboard: team, 7 days", "dashboard: every team, 14 days"];
    for (label, mut t) in labels.iter().zip(dashboard) {
        let n = t.len();
        let (p50, p95, p99) = percentiles(&mut t);
        println!("  {label:<40} ({n:>3} samples) {p50:>8.2} {p95:>8.2} {p99:>8.2}");
    }
    slowest
}

/// A query value as the browser's form sends it.
fn callqa_url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sessions/s of inspecting `batch` sessions, without and with storing
/// each batch's sheets, interleaved in rounds.
fn check_cost(
    label: &str,
    inspector: &Inspector,
    store: &SheetStore,
    sessions: &[Session],
    batch: usize,
    rounds: usize,
) -> f64 {
    let version = inspector.ruleset.version.clone();
    // Every stored session a new id, as a new day's contacts have.
    let mut serial = 0usize;
    let mut make = || -> Vec<Arc<Session>> {
        (0..batch)
            .map(|i| {
                let mut s = sessions[i % sessions.len()].clone();
                serial += 1;
                s.id = format!("{}-{label}-{serial}", s.id);
                s.contact.contact_id = s.id.clone();
                Arc::new(s)
            })
            .collect()
    };
    // Warm the instance pools and caches.
    inspector.inspect_all(make());
    let (mut plain, mut stored) = (Duration::ZERO, Duration::ZERO);
    let (mut storing, mut encoding, mut bytes) = (Duration::ZERO, Duration::ZERO, 0usize);
    for round in 0..rounds {
        for with_store in if round % 2 == 0 { [false, true] } else { [true, false] } {
            let input = make();
            let started = Instant::now();
            let sheets = inspector.inspect_all(input.clone());
            if with_store {
                let put = Instant::now();
                let evaluated_at = Utc::now();
                let records: Vec<SheetRecord<'_>> = sheets
                    .iter()
                    .zip(&input)
                    .map(|(sheet, session)| SheetRecord { sheet, session, ruleset_version: &version, evaluated_at })
                    .collect();
                store.put_all(&records).unwrap();
                storing += put.elapsed();
                stored += started.elapsed();
                // Of which JSON: the sheet and the session encoded again,
                // outside the timings above.
                let json = Instant::now();
                for r in &records {
                    bytes +=
                        serde_json::to_string(r.sheet).unwrap().len() + serde_json::to_string(r.session).unwrap().len();
                }
                encoding += json.elapsed();
            } else {
                plain += started.elapsed();
            }
        }
    }
    let n = (batch * rounds) as f64;
    let (a, b) = (n / plain.as_secs_f64(), n / stored.as_secs_f64());
    println!(
        "  {label:<40} {a:>10.0} {b:>12.0} {:>8.3} {:>10.0} {:>10.0} {:>9.1}",
        b / a,
        n / storing.as_secs_f64(),
        n / encoding.as_secs_f64(),
        bytes as f64 / n / 1e3
    );
    b / a
}

fn main() {
    let n: usize = env("CALLQA_BENCH_SHEETS", 1_000_000);
    let batch: usize = env("CALLQA_BENCH_BATCH", 1_000);
    let samples: usize = env("CALLQA_BENCH_SAMPLES", 300);
    let check_batch: usize = env("CALLQA_BENCH_CHECK_BATCH", 1_000);
    let rounds: usize = env("CALLQA_BENCH_ROUNDS", 10);
    let temp = tempfile::tempdir().unwrap();
    let place = match std::env::var("CALLQA_BENCH_STORE") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Place::Postgres(url),
        Ok(path) => Place::Sqlite(PathBuf::from(path)),
        Err(_) => Place::Sqlite(temp.path().join("sheets.db")),
    };
    match &place {
        Place::Sqlite(path) => println!("the embedded sheet store (SQLite, WAL) at {}", path.display()),
        Place::Postgres(_) => println!("the shared sheet store at {}", place.url()),
    }

    let opened = Instant::now();
    let store = place.url().open().unwrap();
    let existing = store.count().unwrap();
    if existing >= n as u64 {
        println!("reusing {existing} evaluations; open (migrations included) took {:.2?}", opened.elapsed());
    } else {
        assert_eq!(existing, 0, "{} holds some evaluations but fewer than {n}", place.url());
        fill(&store, &place, n, batch);
    }
    println!("on disk: {}", place.size());

    let list_p95 = reads(&store, samples);
    let page_p95 = pages(&place, samples);

    let engine = Arc::new(RuleEngine::new(None).unwrap());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let ruleset = Arc::new(Ruleset::load(&engine, &root.join("samples/rules.toml")).unwrap());
    let inspector = Inspector::new(engine, ruleset);
    let samples: Vec<Session> =
        read_sessions(&[root.join("samples/sessions")]).unwrap().into_iter().map(|(_, s)| s.unwrap()).collect();
    println!(
        "\ncheck with the bundled ruleset (samples/rules.toml), {check_batch} sessions a batch, {rounds} rounds, \
         into the store above (sessions/s):"
    );
    println!(
        "  {:<40} {:>10} {:>12} {:>8} {:>10} {:>10} {:>9}",
        "", "inspect", "+ put_all", "ratio", "put_all/s", "JSON/s", "KB/record"
    );
    let a = check_cost(
        &format!("{} sample sessions, repeated", samples.len()),
        &inspector,
        &store,
        &samples,
        check_batch,
        rounds,
    );
    let b = check_cost(
        "the generated 10-minute call",
        &inspector,
        &store,
        &[synthetic::ten_minute_call()],
        check_batch,
        rounds,
    );
    // Leave the store as generated, for a reuse with `CALLQA_BENCH_STORE`.
    place.truncate(i64::try_from(n.max(existing as usize)).unwrap());

    println!("\ntargets:");
    println!(
        "  list p95 {list_p95:.2} ms (the slower of with and without the rule) vs 50 ms: {}",
        verdict(list_p95 < 50.0)
    );
    println!(
        "  sheets page first byte p95 {page_p95:.2} ms (the slowest filter; {:.1}x the list's p95) vs 100 ms: {}",
        page_p95 / list_p95,
        verdict(page_p95 < 100.0)
    );
    for (label, ratio) in [("sample sessions", a), ("10-minute call", b)] {
        println!(
            "  storing costs check {:.1}% of its throughput ({label}) vs at most 20%: {}",
            (1.0 - ratio) * 100.0,
            verdict(ratio >= 0.8)
        );
    }
}
