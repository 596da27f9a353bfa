//! Scripted items (`bundled:script`): the seed chase script, unchanged, over
//! sessions that reach each of its branches; the same sessions through the
//! compiled `chase-follow-up` and through the recommended simple script;
//! every kind of load error with its line and column; and the sandbox
//! holding against a runaway loop, a huge string and 100,000 nested
//! parentheses. The sessions and golden cases are `samples/scripted/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use callqa::qa::{Inspector, ItemStatus, QaSheet};
use callqa::rules::golden;
use callqa::rules::Ruleset;
use callqa::session::Session;
use serde_json::Value;

use crate::common;
use crate::serve_support::{evaluate, Server};

fn scripted_dir() -> std::path::PathBuf {
    common::repo_root().join("samples/scripted")
}

fn session(name: &str) -> Arc<Session> {
    let bytes = std::fs::read(scripted_dir().join("sessions").join(format!("{name}.json"))).unwrap();
    Arc::new(Session::from_json(&bytes).unwrap())
}

fn parse(text: &str) -> anyhow::Result<Ruleset> {
    Ruleset::parse(&common::engine(), text, &common::repo_root())
}

fn inspect(ruleset: Ruleset, session: Arc<Session>) -> QaSheet {
    Inspector::new(common::engine(), Arc::new(ruleset)).inspect(session)
}

/// The operators of the seed item, as `samples/scripted/rules.toml` has them.
const SEED_OPERATORS: &str = r#"
[rule.operators.A]
kind = "phrase"
role = "agent"
any = ["马上帮您催", "帮您催一下", "我帮您催"]
[rule.operators.E]
kind = "phrase"
role = "customer"
any = ["不用催了", "不用了"]
[rule.operators.I]
kind = "event"
event = "ticket-chased"
[rule.operators.B]
kind = "event"
event = "ticket-urged"
[rule.operators.C]
kind = "contact"
field = "connected-to-agent-at"
[rule.operators.D]
kind = "event"
event = "ticket-created"
[rule.operators.F]
kind = "event"
event = "ticket-reopened"
[rule.operators.G]
kind = "event"
event = "remark"
[rule.operators.J]
kind = "contact"
field = "ended-at"
"#;

/// One scripted item with the seed's operators and `script`.
fn item(id: &str, script: &str) -> String {
    format!("[[rule]]\nid = \"{id}\"\nmodule = \"bundled:script\"\n{SEED_OPERATORS}\n[rule.script]\ntext = '''\n{script}\n'''\n")
}

#[test]
fn the_seed_script_reaches_every_branch_with_the_expected_outcome_and_return() {
    let rules = scripted_dir().join("rules.toml");
    let ruleset = Ruleset::load(&common::engine(), &rules).unwrap();
    let seed = ruleset.rules.iter().find(|r| &*r.id == "chase-promise-kept").unwrap();
    let cases = golden::load_cases(&[golden::item_cases_dir(&rules, "chase-promise-kept")]).unwrap();
    let mut returns = BTreeMap::new();
    for case in &cases {
        let result = golden::run_case(&common::engine(), &seed.module, &seed.given, case, &seed.limits);
        assert!(result.passed(), "{}: {}", case.name, result.differences.join("; "));
        *returns.entry((case.expect.outcome.name(), case.expect.return_line)).or_insert(0) += 1;
    }
    // No promise and a called-off chase return at line 14; an older chase
    // decides at line 9 (two passes, two fails), a recent one at line 11.
    let expected: BTreeMap<(&str, Option<u64>), i32> = [
        (("pass", Some(14)), 2),
        (("pass", Some(9)), 2),
        (("fail", Some(9)), 2),
        (("pass", Some(11)), 1),
        (("fail", Some(11)), 2),
        (("error", None), 2),
    ]
    .into();
    assert_eq!(returns, expected);
}

#[test]
fn a_failing_item_carries_its_trace_and_the_evidence_of_the_operators_it_read() {
    let ruleset = Ruleset::load(&common::engine(), &scripted_dir().join("rules.toml")).unwrap();
    let sheet = inspect(ruleset, session("old-chase-urged-late"));
    let item = sheet.items.iter().find(|i| i.rule_id == "chase-promise-kept").unwrap();
    assert_eq!(item.outcome, ItemStatus::Fail, "{item:?}");
    let trace = item.trace.as_ref().expect("a scripted item carries its trace");
    assert_eq!(trace["outcome"], "true");
    let run = &trace["trace"];
    // 06:55 UTC on 2026-11-20: the chase action, 15 minutes after the call ended.
    assert_eq!(run["operators"]["@B"], serde_json::json!([1_795_157_700_000i64]));
    assert_eq!(run["operators"]["A"], true);
    assert_eq!(run["operators"]["E"], false);
    let steps = run["steps"].as_array().unwrap();
    let assigned: BTreeMap<&str, &Value> =
        steps.iter().filter_map(|s| Some((s.get("assign")?.as_str()?, &s["value"]))).collect();
    assert_eq!(assigned["催单时间"], &serde_json::json!(1_795_157_700_000i64));
    assert_eq!(assigned["承诺催单"], &Value::Bool(true));
    assert_eq!(assigned["备注时间"], &Value::Null);
    let ifs: Vec<(u64, &str)> =
        steps.iter().filter_map(|s| Some((s.get("if")?.as_u64()?, s["branch"].as_str()?))).collect();
    assert_eq!(ifs, [(7, "then"), (8, "then")]);
    assert_eq!(steps.last().unwrap()["return"], 9);
    assert_eq!(steps.last().unwrap()["value"], true);

    // Evidence: the promise segment, and the events and instants the script read.
    let segments: Vec<&str> = item.findings.iter().filter_map(|f| f.segment_id.as_deref()).collect();
    assert_eq!(segments, ["seg-03"]);
    let messages: Vec<&str> = item.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(messages.contains(&"B: ticket-urged at 2026-11-20T06:55:00Z"), "{messages:?}");
    assert!(item.reason.as_deref().unwrap().contains("returned true at line 9"), "{:?}", item.reason);

    // A recent chase takes the else branch.
    let ruleset = Ruleset::load(&common::engine(), &scripted_dir().join("rules.toml")).unwrap();
    let sheet = inspect(ruleset, session("recent-chase-remark-late"));
    let steps = sheet.items[0].trace.as_ref().unwrap()["trace"]["steps"].as_array().unwrap().clone();
    let ifs: Vec<(u64, &str)> =
        steps.iter().filter_map(|s| Some((s.get("if")?.as_u64()?, s["branch"].as_str()?))).collect();
    assert_eq!(ifs, [(7, "then"), (8, "else")]);
}

#[test]
fn a_missing_instant_is_a_missing_data_error_that_names_it_and_never_quarantines() {
    let ruleset = Ruleset::load(&common::engine(), &scripted_dir().join("rules.toml")).unwrap();
    let inspector = Inspector::new(common::engine(), Arc::new(ruleset));
    // More sessions in a row than the quarantine threshold (5).
    for _ in 0..8 {
        let sheet = inspector.inspect(session("promise-without-chase"));
        let item = &sheet.items[0];
        assert_eq!(item.outcome, ItemStatus::Error);
        let error = item.error.as_ref().unwrap();
        assert_eq!(error.code, "missing-data");
        assert!(
            error.message.contains("`上次催单` at line 8, column 8 is null")
                && error.message.contains("no instant of `@I` at or before the pivot"),
            "{}",
            error.message
        );
        assert_eq!(item.trace.as_ref().unwrap()["outcome"], "unknown");
        assert!(!sheet.complete);
    }
    let health = inspector.ruleset.rules[0].health.counts();
    assert_eq!((health.errors, health.quarantines), (8, 0), "{health:?}");
    assert!(health.quarantined.is_none());

    // Without a transcript the phrase operators have no value, and the message says so.
    let sheet = inspector.inspect(session("no-transcript"));
    let message = &sheet.items[0].error.as_ref().unwrap().message;
    assert!(message.contains("the session has no transcript"), "{message}");
}

/// Where the seed script, the simple script and the compiled rule agree,
/// and where they differ on purpose (docs/writing-a-rule.md, "The seed
/// script beside the compiled rule").
#[test]
fn the_seed_script_the_simple_script_and_the_compiled_rule_side_by_side() {
    let mut text = std::fs::read_to_string(scripted_dir().join("rules.toml")).unwrap();
    text.push_str("\n[[rule]]\nid = \"chase-follow-up\"\nmodule = \"bundled:chase-follow-up\"\n");
    let ruleset = Arc::new(Ruleset::parse(&common::engine(), &text, &scripted_dir()).unwrap());
    let inspector = Inspector::new(common::engine(), ruleset);
    use ItemStatus::{Error, Fail, NotApplicable as Na, Pass};
    // (session, the seed and the simple script, the compiled rule)
    let expected = [
        // The compiled rule judges only a promise that answers a chase.
        ("no-promise", Pass, Na),
        // The compiled rule has no "called off" operator: no action after the promise fails.
        ("called-off", Pass, Fail),
        ("old-chase-no-action", Fail, Fail),
        // The compiled rule does not count the ticket system's chase action as acting.
        ("old-chase-urged-in-time", Pass, Fail),
        ("old-chase-urged-late", Fail, Fail),
        ("old-chase-ticket-created", Pass, Pass),
        ("recent-chase-no-remark", Fail, Fail),
        ("recent-chase-remark-in-time", Pass, Pass),
        // The script allows 10 minutes after the call ends; the compiled
        // rule 30 minutes after the promise (the remark came at 28).
        ("recent-chase-remark-late", Fail, Pass),
        // No chase to answer: the script cannot decide (its first instant is
        // missing); the compiled rule does not apply.
        ("promise-without-chase", Error, Na),
        ("no-transcript", Error, Na),
    ];
    for (name, script, compiled) in expected {
        let sheet = inspector.inspect(session(name));
        let outcome = |id: &str| sheet.items.iter().find(|i| i.rule_id == id).unwrap().outcome;
        assert_eq!(outcome("chase-promise-kept"), script, "{name}: the seed script");
        assert_eq!(outcome("chase-promise-kept-simple"), script, "{name}: the simple script agrees with the seed");
        assert_eq!(outcome("chase-follow-up"), compiled, "{name}: the compiled rule");
    }
}

/// The refusal of a ruleset, as one line.
fn refusal(text: &str) -> String {
    format!("{:#}", parse(text).err().expect("the ruleset must be refused"))
}

#[test]
fn each_kind_of_load_error_is_refused_with_the_rule_line_and_column() {
    // The script starts on line 44 of `item`'s output (after the operators).
    let script_line = item("x", "").lines().position(|l| l == "text = '''").unwrap() + 2;

    let syntax = refusal(&item("syntax", "x = 1;\nif (A { return true; }"));
    assert!(syntax.contains("rule `syntax`"), "{syntax}");
    assert!(
        syntax.contains(&format!("line {}, column 7 (script line 2, column 7): expected `)`", script_line + 1)),
        "{syntax}"
    );

    let function = refusal(&item("function", "return 分钟数(@A, @C) > 10;"));
    assert!(function.contains(&format!("line {script_line}, column 8 (script line 1, column 8)")), "{function}");
    assert!(function.contains("unknown function `分钟数`"), "{function}");

    let letter = refusal(&item("letter", "return A && K;"));
    assert!(letter.contains(&format!("line {script_line}, column 13 (script line 1, column 13)")), "{letter}");
    assert!(letter.contains("`K` is neither assigned in the script nor a configured operator"), "{letter}");

    // A wrong field of an operator: the line of the field in the ruleset.
    let text = item("field", "return C;").replace("field = \"connected-to-agent-at\"", "field = \"connected_at\"");
    let line = text.lines().position(|l| l == "field = \"connected_at\"").unwrap() + 1;
    let field = refusal(&text);
    assert!(field.contains("rule `field`"), "{field}");
    assert!(
        field.contains(&format!("line {line}, column 9: operators.C.field: unknown contact field `connected_at`")),
        "{field}"
    );
    assert!(field.contains("connected-to-agent-at"), "the fields it could be are listed: {field}");

    let text = item("typo", "return A;").replacen("role = \"agent\"", "rol = \"agent\"", 1);
    let line = text.lines().position(|l| l == "rol = \"agent\"").unwrap() + 1;
    let typo = refusal(&text);
    assert!(
        typo.contains(&format!(
            "line {line}, column 7: operators.A.rol: unknown field `rol`; expected one of: kind, role, any"
        )),
        "{typo}"
    );

    let text = item("kind", "return A;").replacen("kind = \"phrase\"", "kind = \"phrases\"", 1);
    let kind = refusal(&text);
    assert!(kind.contains("operators.A.kind: unknown operator kind \"phrases\""), "{kind}");

    let regex = refusal(&item("regex", "return A;").replacen(
        "any = [\"马上帮您催\"",
        "regex = \"(催\"\nany = [\"马上帮您催\"",
        1,
    ));
    assert!(regex.contains("operators.A.regex: invalid regular expression"), "{regex}");

    let scope = refusal(
        &item("scope", "return A;").replacen("role = \"agent\"", "role = \"agent\"\nafter = \"E\"", 1).replacen(
            "role = \"customer\"",
            "role = \"customer\"\nafter = \"A\"",
            1,
        ),
    );
    assert!(scope.contains("scopes go round in a circle"), "{scope}");

    let compiled =
        refusal("[[rule]]\nid = \"compiled\"\nmodule = \"bundled:greeting\"\n[rule.script]\ntext = \"return true;\"\n");
    assert!(compiled.contains("module `bundled:greeting` takes no `program`"), "{compiled}");

    // A loop that reads no data never ends on any session: refused at load.
    let forever = refusal(&item("forever", "for (i = 0; i >= 0; i++) { }\nreturn false;"));
    assert!(forever.contains("rule `forever`: on an empty session at load, the item fuel exhausted"), "{forever}");

    let no_script = refusal("[[rule]]\nid = \"empty\"\nmodule = \"bundled:script\"\n");
    assert!(no_script.contains("a scripted item needs its script"), "{no_script}");
}

#[test]
fn a_runaway_loop_and_a_huge_string_end_their_own_item_and_nothing_else() {
    // Each loops only when A hit, so the check at load (an empty session) passes.
    let text = [
        item("loop", "if (A) { for (i = 0; i >= 0; i++) { } }\nreturn false;"),
        // A wall clock far beyond the fuel: fuel is what stops it.
        "[rule.limits]\ntimeout-ms = 10000\n".to_owned(),
        item("string", "s = 'x';\nif (A) { for (i = 0; i < 64; i++) { s = s + s; } }\nreturn false;"),
        item("seed-like", "return A && !E;"),
        item("wrong-kind", "return 分钟差('10:00', @A) > 10;"),
        "[[rule]]\nid = \"greeting\"\nmodule = \"bundled:greeting\"\n".to_owned(),
    ]
    .concat();
    let sheet = inspect(parse(&text).unwrap(), session("old-chase-no-action"));
    let by_id = |id: &str| sheet.items.iter().find(|i| i.rule_id == id).unwrap();
    let looped = by_id("loop");
    assert_eq!(looped.error.as_ref().map(|e| e.code.as_str()), Some("fuel-exhausted"), "{looped:?}");
    let string = by_id("string");
    assert_eq!(string.outcome, ItemStatus::Error);
    let message = &string.error.as_ref().unwrap().message;
    assert!(message.contains("line 2") && message.contains("a string longer than"), "{message}");
    assert_eq!(string.trace.as_ref().unwrap()["outcome"], "error");
    assert_eq!(by_id("seed-like").outcome, ItemStatus::Fail);
    // A value of the wrong kind: an error naming the function and the argument.
    let wrong = by_id("wrong-kind").error.as_ref().unwrap();
    assert_eq!(wrong.code, "failed");
    assert!(
        wrong.message.contains("script line 1, column 8: 分钟差: argument 1 is a string, expected an instant"),
        "{wrong:?}"
    );
    assert_eq!(by_id("greeting").outcome, ItemStatus::Pass);
}

#[test]
fn deep_nesting_is_refused_at_load_and_the_deepest_allowed_script_runs() {
    let deep = format!("return {}A{};", "(".repeat(100_000), ")".repeat(100_000));
    let refused = refusal(&item("deep", &deep));
    assert!(refused.contains("nests deeper than 256 levels"), "{refused}");
    assert!(refused.contains("(script line 1, column "), "{refused}");

    // Just inside the limit: parsed and evaluated on the guest's stack.
    let nested = format!("return {}A{};", "(".repeat(240), ")".repeat(240));
    let sheet = inspect(parse(&item("nested", &nested)).unwrap(), session("old-chase-no-action"));
    assert_eq!(sheet.items[0].outcome, ItemStatus::Fail, "{:?}", sheet.items[0]);
}

#[test]
fn check_rule_run_rule_test_and_validate_work_on_scripted_items() {
    let dir = scripted_dir();
    let out = tempfile::tempdir().unwrap();
    let sheets = out.path().join("sheets.ndjson");
    let status = common::callqa()
        .args(["check", "--rules"])
        .arg(dir.join("rules.toml"))
        .arg(dir.join("sessions"))
        .arg("--out")
        .arg(&sheets)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let sheets: Vec<Value> =
        std::fs::read_to_string(&sheets).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(sheets.len(), 11);
    assert!(sheets.iter().all(|s| s["items"].as_array().unwrap().iter().all(|i| i["trace"].is_object())));

    let run = common::callqa()
        .args(["rule", "run", "--rules"])
        .arg(dir.join("rules.toml"))
        .args(["--item", "chase-promise-kept", "--session"])
        .arg(dir.join("sessions/old-chase-urged-late.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}");
    for line in [
        "verdict   fail",
        "trace     the script's result: true",
        "line 8    if (分钟差(上次催单,@A)>10) is true → then",
        "line 9    return true",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }

    let test = common::callqa().args(["rule", "test", "--rules"]).arg(dir.join("rules.toml")).output().unwrap();
    let text = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{text}");
    assert!(text.contains("11 passed, 0 failed"), "{text}");

    let validate = common::callqa().args(["validate", "--rules"]).arg(dir.join("rules.toml")).output().unwrap();
    let text = String::from_utf8_lossy(&validate.stdout);
    assert_eq!(validate.status.code(), Some(0), "{text}");
    assert!(text.contains("ruleset of 2 rules (2 scripted)"), "{text}");

    // A broken script: exit 7 (invalid ruleset) with the line and column.
    let broken = out.path().join("broken.toml");
    std::fs::write(&broken, item("broken", "return A &&;")).unwrap();
    let validate = common::callqa().args(["validate", "--rules"]).arg(&broken).output().unwrap();
    let text = String::from_utf8_lossy(&validate.stdout);
    assert_eq!(validate.status.code(), Some(7), "{text}");
    assert!(text.contains("(script line 1, column 12)"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_broken_script_and_keeps_serving_the_previous_ruleset() {
    let rules = tempfile::tempdir().unwrap();
    let ruleset = rules.path().join("rules.toml");
    std::fs::write(&ruleset, item("chase", "return A && !E;")).unwrap();
    let server = Server::start(&["--rules", rules.path().to_str().unwrap(), "--rules-poll", "30s"]);
    let client = server.client();

    std::fs::write(&ruleset, item("chase", "return A &&& !E;")).unwrap();
    let response = client.post(server.url("/v1/rules/reload")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.unwrap();
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("rule `chase`") && reason.contains("(script line 1, column 12)"), "{answer}");

    let session = std::fs::read(scripted_dir().join("sessions/old-chase-no-action.json")).unwrap();
    let sheet = evaluate(&server, &server.token, session).await;
    assert_eq!(sheet["items"][0]["rule_id"], "chase");
    assert_eq!(sheet["items"][0]["outcome"], "fail", "the previous script still serves: {sheet}");
    assert_eq!(sheet["items"][0]["trace"]["trace"]["steps"][0]["return"], 1, "{sheet}");
}

/// A voice session with something for every operator kind.
fn operator_session() -> Arc<Session> {
    let at = |t: &str| format!("2026-11-20T{t}Z");
    let document = serde_json::json!({
        "id": "operators", "contact": {
            "contact_id": "operators", "channel": "voice", "queue": "Hotline-ZH", "scenario": "hotline",
            "initiated_at": at("06:29:30"), "connected_to_agent_at": at("06:30:00"), "ended_at": at("06:40:00")},
        "segments": [
            {"id": "s1", "role": "agent", "text": "您好，请问有什么可以帮您", "begin_ms": 0, "end_ms": 3000},
            {"id": "s2", "role": "customer", "text": "我要退款，订单号 E123456", "begin_ms": 10000, "end_ms": 14000},
            {"id": "s3", "role": "agent", "text": "好的，我帮您查一下 Hello there", "begin_ms": 30000, "end_ms": 34000},
            {"id": "s4", "role": "agent", "text": "这个不是我们的问题", "begin_ms": 200000, "end_ms": 203000},
            {"id": "s5", "role": "customer", "text": "我要投诉你们", "begin_ms": 400000, "end_ms": 402000},
            {"id": "s6", "role": "agent", "text": "感谢来电，再见", "begin_ms": 580000, "end_ms": 582000}],
        "events": [
            {"kind": "ticket-created", "at": at("06:35:00"), "attributes": {"priority": "high"}},
            {"kind": "ticket-created", "at": at("06:36:00"), "attributes": {"priority": "low"}},
            {"kind": "remark", "at": at("06:45:00")}],
        "attributes": {"order": {"amount": 399.0, "tags": ["vip"]}},
        "characteristics": {
            "total_conversation_ms": 600000,
            "non_talk": [{"begin_ms": 40000, "end_ms": 60000}, {"begin_ms": 300000, "end_ms": 305000}],
            "interruptions": [
                {"by": "agent", "begin_ms": 100000, "end_ms": 101000},
                {"by": "customer", "begin_ms": 200000, "end_ms": 201000},
                {"by": "agent", "begin_ms": 250000, "end_ms": 251000}],
            "roles": [
                {"role": "agent", "words_per_minute": 210, "overall_sentiment": 0.5, "sentiment_by_quarter": [1.0, 1.0, 0.0, -1.0]},
                {"role": "customer", "words_per_minute": 150, "overall_sentiment": -1.0, "sentiment_by_quarter": [0.0, -1.0, -2.0, -3.0]}]}
    });
    Arc::new(Session::from_json(&serde_json::to_vec(&document).unwrap()).unwrap())
}

#[test]
fn every_operator_kind_reads_the_session_as_documented() {
    use ItemStatus::{Error, Fail, Pass};
    // (item id, the operator `X` as a TOML table, expected status)
    let items: &[(&str, &str, ItemStatus)] = &[
        ("phrase-first-seconds", "kind = 'phrase'\nrole = 'agent'\nany = ['您好']\nfirst-seconds = 5", Fail),
        ("phrase-last-seconds", "kind = 'phrase'\nrole = 'agent'\nany = ['您好']\nlast-seconds = 30", Pass),
        ("phrase-regex", "kind = 'phrase'\nrole = 'customer'\nregex = 'E\\d{6}'", Fail),
        ("phrase-exclude", "kind = 'phrase'\nrole = 'agent'\nany = ['我们']\nexclude = ['不是']", Pass),
        ("phrase-exclude-regex", "kind = 'phrase'\nany = ['退款']\nexclude-regex = 'E\\d+'", Pass),
        ("phrase-all", "kind = 'phrase'\nall = ['退款', '投诉']", Fail),
        ("phrase-n", "kind = 'phrase'\nrole = 'customer'\nany = ['退款', '投诉', '发货']\nn = 3", Pass),
        ("phrase-word-boundary", "kind = 'phrase'\nrole = 'agent'\nany = ['hell']", Pass),
        ("phrase-case", "kind = 'phrase'\nrole = 'agent'\nany = ['HELLO']", Fail),
        ("event-where", "kind = 'event'\nevent = 'ticket-created'\nwhere = { priority = 'high' }", Fail),
        ("event-kinds", "kind = 'event'\nevent = ['refund', 'compensation']", Pass),
        ("contact-in", "kind = 'contact'\nfield = 'queue'\nop = 'in'\nvalue = ['Hotline-ZH', 'Hotline-EN']", Fail),
        ("contact-absent", "kind = 'contact'\nfield = 'language'\nvalue = 'zh-CN'", Error),
        ("attribute-compare", "kind = 'attribute'\npath = 'order.amount'\nop = '>'\nvalue = 300", Fail),
        ("attribute-exists", "kind = 'attribute'\npath = 'order.coupon'\nop = 'exists'", Pass),
        ("attribute-absent", "kind = 'attribute'\npath = 'order.coupon'\nvalue = 'X'", Error),
        ("silence", "kind = 'silence'\nlonger-than-seconds = 10", Fail),
        ("talk-speed-fast", "kind = 'talk-speed'\nabove = 180", Fail),
        ("talk-speed-slow", "kind = 'talk-speed'\nbelow = 100", Pass),
        ("interruptions-over-1", "kind = 'interruptions'\nmore-than = 1", Fail),
        ("interruptions-over-2", "kind = 'interruptions'\nmore-than = 2", Pass),
        ("sentiment-end", "kind = 'sentiment'\nbelow = -2", Fail),
        ("sentiment-overall", "kind = 'sentiment'\nbelow = -2\nat = 'overall'", Pass),
    ];
    let mut text = String::new();
    for (id, operator, _) in items {
        text.push_str(&format!(
            "[[rule]]\nid = '{id}'\nmodule = 'bundled:script'\n[rule.operators.X]\n{operator}\n[rule.script]\ntext = 'return X;'\n"
        ));
    }
    // Scopes: the goodbye after (and before) the customer's complaint.
    for (id, scope) in [("phrase-after", "after"), ("phrase-before", "before")] {
        text.push_str(&format!(
            "[[rule]]\nid = '{id}'\nmodule = 'bundled:script'\n\
             [rule.operators.COMPLAINT]\nkind = 'phrase'\nrole = 'customer'\nany = ['投诉']\n\
             [rule.operators.X]\nkind = 'phrase'\nrole = 'agent'\nany = ['再见']\n{scope} = 'COMPLAINT'\n\
             [rule.script]\ntext = 'return X;'\n"
        ));
    }
    let sheet = inspect(parse(&text).unwrap(), operator_session());
    let by_id = |id: &str| sheet.items.iter().find(|i| i.rule_id == id).unwrap();
    for (id, _, expected) in items.iter().chain(&[("phrase-after", "", Fail), ("phrase-before", "", Pass)]) {
        let item = by_id(id);
        assert_eq!(item.outcome, *expected, "{id}: {item:?}");
        if *expected == Error {
            assert_eq!(item.error.as_ref().unwrap().code, "missing-data", "{id}: {item:?}");
        }
    }
    // What the hits carry: instants and evidence.
    let connected = 1_795_156_200_000i64;
    assert_eq!(by_id("phrase-first-seconds").findings[0].segment_id.as_deref(), Some("s1"));
    assert_eq!(by_id("phrase-regex").findings[0].message, "X: \u{201c}E123456\u{201d}");
    let all: Vec<_> = by_id("phrase-all").findings.iter().filter_map(|f| f.segment_id.clone()).collect();
    assert_eq!(all, ["s2", "s5"]);
    assert_eq!(by_id("phrase-after").findings[0].segment_id.as_deref(), Some("s6"));
    assert_eq!(by_id("event-where").findings.len(), 1, "only the high-priority ticket");
    assert_eq!(by_id("event-where").findings[0].message, "X: ticket-created at 2026-11-20T06:35:00Z");
    assert_eq!(by_id("silence").findings.len(), 1, "only the 20 s silence");
    assert_eq!(by_id("silence").findings[0].begin_ms, Some(40_000));
    assert_eq!(by_id("interruptions-over-1").findings.len(), 2, "the agent's two interruptions");
    let message = &by_id("contact-absent").error.as_ref().unwrap().message;
    assert!(message.contains("the contact has no language"), "{message}");
    let message = &by_id("attribute-absent").error.as_ref().unwrap().message;
    assert!(message.contains("the session has no attribute `order.coupon`"), "{message}");
    // `@X` only for the operators read with `@`: check one that is, through a second script.
    let text = "[[rule]]\nid = 'at'\nmodule = 'bundled:script'\n[rule.operators.X]\nkind = 'phrase'\nrole = 'agent'\nany = ['您好']\n\
                [rule.operators.C]\nkind = 'contact'\nfield = 'connected-to-agent-at'\n\
                [rule.script]\ntext = 'return 分钟差(@C, @X) > 0 || len(@X) > 1;'\n";
    let sheet = inspect(parse(text).unwrap(), operator_session());
    let ops = &sheet.items[0].trace.as_ref().unwrap()["trace"]["operators"];
    assert_eq!(ops["@C"], serde_json::json!([connected]));
    assert_eq!(ops["@X"], serde_json::json!([connected]), "a phrase hit's instant: connected + begin_ms");
    assert_eq!(sheet.items[0].outcome, Pass);
}
