//! Each bundled rule against its golden cases (`plugins/<rule>/golden/`),
//! through the real host: the compiled component in the sandbox, not the
//! rule's Rust code called directly.

use crate::common;
use std::collections::HashSet;

use callqa::rules::golden::{self, outcome_name};
use callqa::rules::Limits;

#[test]
fn every_bundled_rule_passes_its_golden_cases() {
    let engine = common::engine();
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in callqa::rules::bundled::names() {
        let module = common::load_module(&format!("bundled:{name}"));
        let dir = common::repo_root().join("plugins").join(name).join("golden");
        let cases = golden::load_cases(&[dir]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let outcomes: HashSet<&str> = cases.iter().map(|c| outcome_name(c.expect.outcome)).collect();
        for wanted in ["pass", "fail", "not-applicable"] {
            assert!(outcomes.contains(wanted), "{name} has no golden case with outcome {wanted}");
        }
        for case in &cases {
            let result = golden::run_case(&engine, &module, case, &Limits::default());
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
