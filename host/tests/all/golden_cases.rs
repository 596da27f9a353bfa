//! Each bundled rule against its golden cases (`plugins/<rule>/golden/`),
//! through the real host: the compiled component in the sandbox, not the
//! rule's Rust code called directly.

use crate::common;
use std::collections::HashSet;

use callqa::rules::golden;
use callqa::rules::Limits;

#[test]
fn every_bundled_rule_passes_its_golden_cases() {
    let engine = common::engine();
    let mut checked = 0;
    let mut failures = Vec::new();
    // `bundled:script` runs what a ruleset item gives it: its cases are the
    // scripted items' (`samples/scripted/golden/`, tests/all/scripted_items.rs).
    for name in callqa::rules::bundled::names().filter(|n| *n != "script") {
        let module = common::load_module(&format!("bundled:{name}"));
        let dir = common::repo_root().join("plugins").join(name).join("golden");
        let cases = golden::load_cases(&[dir]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let outcomes: HashSet<&str> = cases.iter().map(|c| c.expect.outcome.name()).collect();
        for wanted in ["pass", "fail", "not-applicable"] {
            assert!(outcomes.contains(wanted), "{name} has no golden case with outcome {wanted}");
        }
        for case in &cases {
            let result = golden::run_case(&engine, &module, &Default::default(), case, &Limits::default());
            if !result.passed() {
                failures.push(format!(
                    "{name}: {} ({}): {}",
                    case.name,
                    case.file.display(),
                    result.differences.join("; ")
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 15, "expected at least three golden cases per rule, ran {checked}");
}
