//! A rule built without std, as the bundled rules are: it panics when the
//! session id starts with `panic`, allocates and frees a megabyte per
//! evaluation otherwise (a warm instance must not grow), and passes.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::prelude::*;

struct NoStdPanic;

impl Rule for NoStdPanic {
    fn describe() -> Descriptor {
        Descriptor::new("nostd-panic", "0.1.0", "Panics on request, without std (test only)")
    }

    fn evaluate(session: &Session, _params: &Params) -> Result<Verdict, RuleError> {
        let id = session.id();
        if id.starts_with("panic") {
            panic!("the no_std rule panicked on purpose in {id}");
        }
        let scratch = vec![7u8; 1 << 20];
        Ok(Verdict::pass().reason(format!("{} bytes of scratch", scratch.len())))
    }
}

export_rule!(NoStdPanic, stateless, no_std);
