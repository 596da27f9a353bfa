//! The `program` parameter protocol: how a scripted item's operators and
//! script travel from the ruleset to the rule that runs them
//! (`bundled:script`, `plugins/script/src/program.rs` on the other side).
//!
//! The host has no script engine. It encodes `[rule.operators.X]` and
//! `[rule.script]` as one JSON text parameter, `program`:
//!
//! ```json
//! {"operators": {"A": {"kind": "phrase", "any": ["马上帮您催"]}},
//!  "script": {"language": "qlexpress", "text": "return A;"}}
//! ```
//!
//! and evaluates the item once at load. A program the rule refuses comes
//! back as `bad-params` with a JSON object naming the field
//! (`{"at": ["operators", "A", "role"], "message": …}`, for the script also
//! `line` and `column` within it), which [`ProgramSource::locate`] turns into
//! the ruleset's own line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The parameter a module must declare to take operators and a script.
pub const PROGRAM_PARAM: &str = "program";

/// A table whose fields keep where they were written.
pub type SpannedTable = BTreeMap<String, Spanned<toml::Value>>;

/// `[rule.operators.*]` and `[rule.script]` as written, each field with its
/// place. (Only values carry places: a table TOML creates implicitly, as
/// `[rule.operators.A]` creates `rule.operators`, has none.)
#[derive(Deserialize, Default)]
pub struct ProgramSource {
    #[serde(default)]
    pub operators: Option<BTreeMap<String, SpannedTable>>,
    #[serde(default)]
    pub script: Option<SpannedTable>,
}

/// A refusal from the rule, as it sent it.
#[derive(Deserialize)]
struct ProgramError {
    at: Vec<String>,
    line: Option<u32>,
    column: Option<u32>,
    message: String,
}

impl ProgramSource {
    pub fn is_empty(&self) -> bool {
        self.operators.is_none() && self.script.is_none()
    }

    /// The `program` parameter's value.
    pub fn encode(&self) -> anyhow::Result<String> {
        let table = |t: &SpannedTable| -> anyhow::Result<serde_json::Value> {
            let mut object = serde_json::Map::new();
            for (key, value) in t {
                object.insert(key.clone(), serde_json::to_value(value.get_ref())?);
            }
            Ok(serde_json::Value::Object(object))
        };
        let mut program = serde_json::Map::new();
        if let Some(operators) = &self.operators {
            let mut all = serde_json::Map::new();
            for (name, config) in operators {
                all.insert(name.clone(), table(config)?);
            }
            program.insert("operators".into(), serde_json::Value::Object(all));
        }
        if let Some(script) = &self.script {
            program.insert("script".into(), table(script)?);
        }
        Ok(serde_json::Value::Object(program).to_string())
    }

    /// Turns the rule's `bad-params` message into one that names the
    /// ruleset's line and column: `line 52, column 5 (script line 9, column
    /// 5): …` or `line 12, column 8: operators.A.role: …`. A message that is
    /// not a program error is returned as it came.
    pub fn locate(&self, ruleset: &str, message: &str) -> String {
        let Ok(error) = serde_json::from_str::<ProgramError>(message) else {
            return message.to_owned();
        };
        let at: Vec<&str> = error.at.iter().map(String::as_str).collect();
        let field = if at.is_empty() { String::new() } else { format!("{}: ", at.join(".")) };
        if let (["script", "text"], Some(line), Some(column)) = (at.as_slice(), error.line, error.column) {
            let text = self.script.as_ref().and_then(|s| s.get("text"));
            return match text.map(|t| script_position(ruleset, t.span(), line, column)) {
                Some((l, c)) => {
                    format!("line {l}, column {c} (script line {line}, column {column}): {}", error.message)
                }
                None => format!("script line {line}, column {column}: {}", error.message),
            };
        }
        match self.span_of(&at) {
            Some(span) => {
                let (line, column) = position(ruleset, span.start);
                format!("line {line}, column {column}: {field}{}", error.message)
            }
            None => format!("{field}{}", error.message),
        }
    }

    /// The span of the field a path names; for a table, or a field not
    /// written, the table's first field written.
    fn span_of(&self, at: &[&str]) -> Option<std::ops::Range<usize>> {
        let first = |t: &SpannedTable| t.values().map(Spanned::span).min_by_key(|s| s.start);
        let operators = self.operators.as_ref();
        match at {
            ["operators", name, field, ..] => {
                let op = operators?.get(*name)?;
                op.get(*field).map(Spanned::span).or_else(|| first(op))
            }
            ["operators", name] => first(operators?.get(*name)?),
            ["script", field, ..] => {
                let script = self.script.as_ref()?;
                script.get(*field).map(Spanned::span).or_else(|| first(script))
            }
            _ => operators.and_then(|o| o.values().filter_map(first).min_by_key(|s| s.start)),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a script's line and column sit in the ruleset: the script's text
/// starts after its opening quotes (and, for `"""` / `'''`, the newline
/// TOML trims right after them). Exact for literal strings and for basic
/// strings without escapes, which is how scripts are written.
fn script_position(ruleset: &str, span: std::ops::Range<usize>, line: u32, column: u32) -> (usize, usize) {
    let literal = ruleset.get(span.clone()).unwrap_or("");
    let mut start = span.start;
    if literal.starts_with("\"\"\"") || literal.starts_with("'''") {
        start += 3;
        if ruleset[start..].starts_with("\r\n") {
            start += 2;
        } else if ruleset[start..].starts_with('\n') {
            start += 1;
        }
    } else if literal.starts_with('"') || literal.starts_with('\'') {
        start += 1;
    }
    let (first_line, first_column) = position(ruleset, start);
    let line = line.max(1) as usize;
    let column = column.max(1) as usize;
    if line == 1 {
        (first_line, first_column + column - 1)
    } else {
        (first_line + line - 1, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str =
        "[operators.A]\nkind = \"phrase\"\nrole = \"agnt\"\n\n[script]\ntext = \"\"\"\nx = 1;\nreturn K;\n\"\"\"\n";

    fn source() -> ProgramSource {
        toml::from_str::<ProgramSource>(RULESET).unwrap()
    }

    #[test]
    fn encodes_operators_and_script_as_json() {
        let program: serde_json::Value = serde_json::from_str(&source().encode().unwrap()).unwrap();
        assert_eq!(program["operators"]["A"]["role"], "agnt");
        assert_eq!(program["script"]["text"], "x = 1;\nreturn K;\n");
    }

    #[test]
    fn locates_a_field_and_a_script_position_in_the_ruleset() {
        let source = source();
        let field = source.locate(RULESET, r#"{"at":["operators","A","role"],"message":"unknown role"}"#);
        assert_eq!(field, "line 3, column 8: operators.A.role: unknown role");
        let script =
            source.locate(RULESET, r#"{"at":["script","text"],"line":2,"column":8,"message":"`K` is not configured"}"#);
        assert_eq!(script, "line 8, column 8 (script line 2, column 8): `K` is not configured");
        assert_eq!(source.locate(RULESET, "parameter `x` is missing"), "parameter `x` is missing");
    }
}
