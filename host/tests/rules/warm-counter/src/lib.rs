//! A rule that declares itself stateless but is not: it counts, in a
//! `static`, the evaluations its instance has seen, and says the count in
//! its reason. The warm-instance tests read it to see when the host reused
//! an instance and when it started a new one. What it does depends on the
//! session id, so one ruleset entry can succeed, trap and fail:
//! - `trap…`: panics (a trap);
//! - `loop…`: loops until its fuel runs out (a limit hit);
//! - `fail…`: returns the rule's own error;
//! - `print…`: writes to stdout, then passes;
//! - anything else: passes.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use callqa_sdk::prelude::*;

static EVALUATIONS: AtomicU32 = AtomicU32::new(0);

struct WarmCounter;

impl Rule for WarmCounter {
    fn describe() -> Descriptor {
        Descriptor::new("warm-counter", "0.1.0", "Counts the evaluations of its instance (test only)")
    }

    fn evaluate(session: &Session, _params: &Params) -> Result<Verdict, RuleError> {
        let n = EVALUATIONS.fetch_add(1, Ordering::Relaxed) + 1;
        let id = session.id();
        if id.starts_with("trap") {
            panic!("the warm counter trapped on purpose");
        }
        if id.starts_with("loop") {
            let mut i: u64 = 0;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        if id.starts_with("fail") {
            return Err(RuleError::Failed(format!("failed on purpose at evaluation {n}")));
        }
        if id.starts_with("print") {
            println!("a line on stdout");
        }
        Ok(Verdict::pass().reason(format!("evaluation {n} of this instance")))
    }
}

export_rule!(WarmCounter, stateless);
