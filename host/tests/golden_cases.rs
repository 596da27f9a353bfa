//! Each bundled rule against its golden cases (`plugins/<rule>/golden/`),
//! through the real host: the compiled component in the sandbox, not the
//! rule's Rust code called directly.

mod common;

use std::path::Path;
use std::sync::Arc;

use callqa::qa::Outcome;
use callqa::rules::{evaluation, params, Limits};
use callqa::session::Session;
use serde_json::Value;

fn load_session(case_file: &Path, spec: &Value) -> Session {
    let value = match spec {
        Value::String(rel) => {
            let path = case_file.parent().unwrap().join(rel);
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
        }
        inline => inline.clone(),
    };
    let mut session: Session = serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: session: {e}", case_file.display()));
    session.normalise().unwrap();
    session
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotApplicable => "not-applicable",
    }
}

#[test]
fn every_bundled_rule_passes_its_golden_cases() {
    let engine = common::engine();
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in callqa::rules::bundled::names() {
        let module = common::load_module(&format!("bundled:{name}"));
        let dir = common::repo_root().join("plugins").join(name).join("golden");
        let mut cases: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        cases.sort();
        let outcomes: std::collections::HashSet<String> = cases
            .iter()
            .map(|c| serde_json::from_str::<Value>(&std::fs::read_to_string(c).unwrap()).unwrap()["expect"]["outcome"].as_str().unwrap().to_owned())
            .collect();
        for wanted in ["pass", "fail", "not-applicable"] {
            assert!(outcomes.contains(wanted), "{name} has no golden case with outcome {wanted}");
        }
        for case_file in cases {
            let case: Value = serde_json::from_str(&std::fs::read_to_string(&case_file).unwrap()).unwrap();
            let session = Arc::new(load_session(&case_file, &case["session"]));
            let given = case["params"].as_object().cloned().unwrap_or_default();
            let params = params::resolve(&module.descriptor.params, &given).unwrap();
            let eval = evaluation::evaluate(&engine, &module, name.into(), session, &params, &Limits::default());
            let label = format!("{name}: {}", case_file.file_name().unwrap().to_string_lossy());
            let verdict = match eval.result {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{label}: error {e}"));
                    continue;
                }
            };
            let expect = &case["expect"];
            if outcome_name(verdict.outcome) != expect["outcome"] {
                failures.push(format!("{label}: outcome {} != expected {}; verdict {verdict:?}", outcome_name(verdict.outcome), expect["outcome"]));
            }
            if let Some(score) = expect.get("score").and_then(Value::as_f64) {
                if verdict.score.map(f64::from).is_none_or(|s| (s - score).abs() > 1e-3) {
                    failures.push(format!("{label}: score {:?} != expected {score}", verdict.score));
                }
            }
            if let Some(findings) = expect.get("findings").and_then(Value::as_array) {
                let got: Vec<Value> = verdict.findings.iter().map(|f| f.segment_id.clone().map_or(Value::Null, Value::String)).collect();
                if &got != findings {
                    failures.push(format!("{label}: finding segments {got:?} != expected {findings:?}"));
                }
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 15, "expected at least three golden cases per rule, ran {checked}");
}
