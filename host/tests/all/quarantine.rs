//! A rule that errors K times in a row is quarantined: skipped with a
//! `quarantined` item carrying the last error, until released.

use crate::common;
use std::sync::Arc;

use callqa::qa::{Inspector, ItemStatus};
use callqa::rules::Ruleset;
use callqa::session::Session;

fn sessions(n: usize) -> Vec<Arc<Session>> {
    (0..n)
        .map(|i| {
            let mut s: Session = serde_json::from_str(&format!(
                r#"{{"id":"s{i}","contact":{{"contact_id":"c{i}","channel":"voice"}},
                    "segments":[{{"id":"t1","role":"agent","text":"hello, thank you for calling","begin_ms":0,"end_ms":900}}]}}"#
            ))
            .unwrap();
            s.normalise().unwrap();
            Arc::new(s)
        })
        .collect()
}

#[test]
fn k_errors_in_a_row_quarantine_the_rule_until_released() {
    let hostile = common::test_rule("hostile");
    let ruleset = format!(
        "[[rule]]\nid = \"greeting\"\nmodule = \"bundled:greeting\"\n\
         [[rule]]\nid = \"panicky\"\nmodule = {:?}\n[rule.params]\nmode = \"panic\"\n[rule.limits]\nquarantine-after = 3\n",
        hostile.display().to_string()
    );
    let engine = common::engine();
    let ruleset = Arc::new(Ruleset::parse(&engine, &ruleset, &common::repo_root()).unwrap());
    let inspector = Inspector::new(engine, ruleset.clone());

    // Sequentially, so "in a row" is well defined.
    let statuses: Vec<(ItemStatus, ItemStatus)> = sessions(5)
        .into_iter()
        .map(|s| inspector.inspect(s))
        .map(|sheet| (sheet.items[0].outcome, sheet.items[1].outcome))
        .collect();
    use ItemStatus::*;
    assert_eq!(statuses, vec![(Pass, Error), (Pass, Error), (Pass, Error), (Pass, Quarantined), (Pass, Quarantined)]);

    let sheet = inspector.inspect(sessions(1).remove(0));
    let item = &sheet.items[1];
    assert!(
        item.error.as_ref().unwrap().message.contains("3 errors in a row")
            && item.error.as_ref().unwrap().message.contains("panicked"),
        "{item:?}"
    );
    assert_eq!(item.fuel_used, 0, "a quarantined rule does not run");

    let counts = ruleset.rules[1].health.counts();
    assert_eq!((counts.errors, counts.quarantines), (3, 1));

    assert!(ruleset.rules[1].health.release());
    let sheet = inspector.inspect(sessions(1).remove(0));
    assert_eq!(sheet.items[1].outcome, Error, "released: it runs (and fails) again");
}
