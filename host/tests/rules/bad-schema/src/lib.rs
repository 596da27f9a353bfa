//! A rule whose `describe` breaks the schema rules: a parameter declared
//! twice, and a default that is not of its declared kind.

use callqa_sdk::prelude::*;

struct BadSchema;

impl Rule for BadSchema {
    fn describe() -> Descriptor {
        Descriptor::new("bad-schema", "0.1.0", "Declares a parameter twice (test only)")
            .param(ParamSpec::integer("limit", Some(3), "first"))
            .param(ParamSpec::text("limit", Some("three"), "second"))
    }

    fn evaluate(_session: &Session, _params: &Params) -> Result<Verdict, RuleError> {
        Ok(Verdict::pass())
    }
}

export_rule!(BadSchema);
