//! The `program` parameter: the item's operators and script as the host
//! encodes them from the ruleset (`[rule.operators.X]`, `[rule.script]`),
//! checked and compiled once.
//!
//! ```json
//! {"operators": {"A": {"kind": "phrase", "role": "agent", "any": ["马上帮您催"]}},
//!  "script": {"language": "qlexpress", "text": "return A;"}}
//! ```
//!
//! A program that cannot run is refused with a [`ProgramError`]: the path of
//! the offending field (`["operators", "A", "role"]`, `["script", "text"]`),
//! for a script the line and column within it, and the problem. The host maps
//! the path to the ruleset's line and column (`host/src/rules/program.rs`).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use callqa_script::{CompileOptions, Program as Script};
use serde_json::{Map, Value as Json};

use crate::functions::ScriptFunctions;
use crate::operator::{Kind, Operator};

/// An item ready to run: its operators and its compiled script.
pub struct Program {
    pub operators: Vec<Operator>,
    pub script: Script,
}

/// Why a program was refused, in the form the host maps to the ruleset.
#[derive(Debug)]
pub struct ProgramError {
    /// Field names from the program's root.
    pub at: Vec<String>,
    /// Within the script text, 1-based, in characters.
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl ProgramError {
    pub fn at(path: &[&str], message: impl Into<String>) -> ProgramError {
        ProgramError {
            at: path.iter().map(|p| p.to_string()).collect(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// `{"at": [...], "line": 9, "column": 5, "message": "..."}`: what the
    /// rule returns as `bad-params`.
    pub fn to_json(&self) -> String {
        let mut object = Map::new();
        object.insert("at".into(), Json::Array(self.at.iter().cloned().map(Json::String).collect()));
        if let (Some(line), Some(column)) = (self.line, self.column) {
            object.insert("line".into(), line.into());
            object.insert("column".into(), column.into());
        }
        object.insert("message".into(), Json::String(self.message.clone()));
        Json::Object(object).to_string()
    }
}

impl Program {
    pub fn parse(text: &str) -> Result<Program, ProgramError> {
        let root: Json = serde_json::from_str(text)
            .map_err(|e| ProgramError::at(&[], alloc::format!("the `program` parameter is not JSON: {e}")))?;
        let mut root = Fields::of(&root, &[])?;
        let operators = match root.take("operators") {
            None => Vec::new(),
            Some(Json::Object(map)) => {
                let mut operators = Vec::with_capacity(map.len());
                for (name, config) in map {
                    let path = ["operators", name.as_str()];
                    check_name(name).map_err(|m| ProgramError::at(&path, m))?;
                    operators.push(Operator { name: name.clone(), kind: Kind::parse(config, &path)? });
                }
                operators
            }
            Some(other) => return Err(wrong(&["operators"], "a table of operators", other)),
        };
        check_references(&operators)?;
        let Some(script) = root.take("script") else {
            return Err(ProgramError::at(&[], "`script` is missing: add a [rule.script] table with `text`"));
        };
        root.done()?;
        let mut script = Fields::of(script, &["script"])?;
        match script.take("language") {
            None => {}
            Some(Json::String(l)) if l.eq_ignore_ascii_case("qlexpress") => {}
            Some(other) => {
                return Err(ProgramError::at(
                    &["script", "language"],
                    alloc::format!("unknown language {other}; the one language is \"qlexpress\""),
                ))
            }
        }
        let text = match script.take("text") {
            Some(Json::String(t)) => t.clone(),
            Some(other) => return Err(wrong(&["script", "text"], "the script as a string", other)),
            None => return Err(ProgramError::at(&["script"], "`text` is missing: the script itself")),
        };
        script.done()?;
        let names: Vec<&str> = operators.iter().map(|o| o.name.as_str()).collect();
        let script = Script::compile(&text, &CompileOptions { operators: &names, functions: &ScriptFunctions })
            .map_err(|e| ProgramError {
                at: ["script", "text"].iter().map(|p| p.to_string()).collect(),
                line: Some(e.line),
                column: Some(e.column),
                message: e.message,
            })?;
        Ok(Program { operators, script })
    }

    pub fn operator(&self, name: &str) -> Option<(usize, &Operator)> {
        self.operators.iter().enumerate().find(|(_, o)| o.name == name)
    }
}

/// Operator names are script identifiers: letters (any script), digits and
/// `_`, not starting with a digit.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !first_ok || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(alloc::format!(
            "operator name `{name}` is not an identifier: use letters (any script), digits and `_`, not starting with a digit"
        ));
    }
    Ok(())
}

/// `after` / `before` name another operator, and scopes do not go round in
/// a circle.
fn check_references(operators: &[Operator]) -> Result<(), ProgramError> {
    let index: BTreeMap<&str, usize> = operators.iter().enumerate().map(|(i, o)| (o.name.as_str(), i)).collect();
    for op in operators {
        for (field, target) in op.kind.scope_references() {
            let path = ["operators", op.name.as_str(), field];
            if !index.contains_key(target) {
                return Err(ProgramError::at(&path, alloc::format!("`{target}` is not a configured operator")));
            }
            // Follow the references from the target: reaching `op` again is a cycle.
            let mut seen = Vec::new();
            let mut stack = alloc::vec![target];
            while let Some(name) = stack.pop() {
                if name == op.name {
                    return Err(ProgramError::at(
                        &path,
                        alloc::format!(
                            "scopes go round in a circle: `{}` depends on itself through `{target}`",
                            op.name
                        ),
                    ));
                }
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                if let Some(&i) = index.get(name) {
                    stack.extend(operators[i].kind.scope_references().into_iter().map(|(_, t)| t));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn wrong(path: &[&str], expected: &str, got: &Json) -> ProgramError {
    ProgramError::at(path, alloc::format!("expected {expected}, found {}", describe(got)))
}

fn describe(value: &Json) -> String {
    match value {
        Json::Null => "nothing".into(),
        Json::Bool(b) => alloc::format!("the boolean {b}"),
        Json::Number(n) => alloc::format!("the number {n}"),
        Json::String(s) => alloc::format!("the string \"{s}\""),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "a table".into(),
    }
}

/// The fields of one table, taken one by one; whatever is left at
/// [`Fields::done`] is an unknown field, named with what was expected.
pub(crate) struct Fields<'a> {
    path: Vec<String>,
    map: &'a Map<String, Json>,
    taken: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Json, path: &[&str]) -> Result<Fields<'a>, ProgramError> {
        match value {
            Json::Object(map) => {
                Ok(Fields { path: path.iter().map(|p| p.to_string()).collect(), map, taken: Vec::new() })
            }
            other => Err(wrong(path, "a table", other)),
        }
    }

    fn path_to(&self, field: &str) -> Vec<String> {
        let mut path = self.path.clone();
        path.push(field.to_string());
        path
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> ProgramError {
        ProgramError { at: self.path_to(field), line: None, column: None, message: message.into() }
    }

    pub fn take(&mut self, field: &'static str) -> Option<&'a Json> {
        self.taken.push(field);
        self.map.get(field)
    }

    pub fn string(&mut self, field: &'static str) -> Result<Option<String>, ProgramError> {
        match self.take(field) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(field, "a string", other)),
        }
    }

    /// A string or a list of strings, as a list; empty strings refused.
    pub fn strings(&mut self, field: &'static str) -> Result<Vec<String>, ProgramError> {
        let list = match self.take(field) {
            None => return Ok(Vec::new()),
            Some(Json::String(s)) => alloc::vec![s.clone()],
            Some(Json::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Json::String(s) => list.push(s.clone()),
                        other => return Err(self.wrong(field, "a list of strings", other)),
                    }
                }
                list
            }
            Some(other) => return Err(self.wrong(field, "a string or a list of strings", other)),
        };
        if list.iter().any(|s| s.trim().is_empty()) {
            return Err(self.error(field, "an empty phrase would match everything; remove it"));
        }
        Ok(list)
    }

    pub fn number(&mut self, field: &'static str) -> Result<Option<f64>, ProgramError> {
        match self.take(field) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.wrong(field, "a number", other)),
        }
    }

    /// A non-negative whole number.
    pub fn count(&mut self, field: &'static str) -> Result<Option<u32>, ProgramError> {
        match self.take(field) {
            None => Ok(None),
            Some(Json::Number(n)) => match n.as_u64() {
                Some(v) if v <= u32::MAX as u64 => Ok(Some(v as u32)),
                _ => Err(self.error(field, alloc::format!("expected a whole number ≥ 0, found {n}"))),
            },
            Some(other) => Err(self.wrong(field, "a whole number", other)),
        }
    }

    /// Seconds as milliseconds (fractions allowed), positive.
    pub fn seconds(&mut self, field: &'static str) -> Result<Option<u32>, ProgramError> {
        match self.number(field)? {
            None => Ok(None),
            Some(s) if s > 0.0 && s <= 86_400.0 => Ok(Some((s * 1000.0) as u32)),
            Some(s) => Err(self.error(field, alloc::format!("expected seconds in (0, 86400], found {s}"))),
        }
    }

    fn wrong(&self, field: &str, expected: &str, got: &Json) -> ProgramError {
        self.error(field, alloc::format!("expected {expected}, found {}", describe(got)))
    }

    /// Refuses the first field nobody took, listing the ones that exist.
    pub fn done(self) -> Result<(), ProgramError> {
        if let Some(unknown) = self.map.keys().find(|k| !self.taken.contains(&k.as_str())) {
            let mut expected: Vec<&str> = self.taken.clone();
            expected.dedup();
            return Err(self.error(
                unknown,
                alloc::format!("unknown field `{unknown}`; expected one of: {}", expected.join(", ")),
            ));
        }
        Ok(())
    }
}
