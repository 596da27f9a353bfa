wit_bindgen::generate!({ world: "qa-rule", path: "../../../wit" });
use callqa::rule::types::{Session, Value};
use exports::callqa::rule::rule::{Descriptor, Guest, Outcome, RuleError, Verdict};
struct R;
impl Guest for R {
    fn describe() -> Descriptor {
        Descriptor { id: "tiny".into(), version: "0.1.0".into(), description: "tiny".into(), params: Vec::new() }
    }
    fn evaluate(session: &Session, _params: Vec<(String, Value)>) -> Result<Verdict, RuleError> {
        let n = session.segment_count();
        let outcome = if n > 0 { Outcome::Pass } else { Outcome::NotApplicable };
        Ok(Verdict {
            outcome,
            score: None,
            reason: Some(if n > 0 { "spoke".into() } else { "silent".into() }),
            findings: Vec::new(),
        })
    }
}
export!(R);
