//! Typed access to a rule's parameters, and constructors for its schema.

use crate::alloc_types::*;
use crate::{Descriptor, ParamKind, ParamSpec, RuleError, Value};

/// The resolved parameters of one evaluation: every parameter the rule
/// declared, with the ruleset's value or the default.
pub struct Params {
    values: Vec<(String, Value)>,
}

impl Params {
    pub fn new(values: Vec<(String, Value)>) -> Self {
        Self { values }
    }

    /// The raw value, or `None` when the host passed no such parameter.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn require(&self, name: &str) -> Result<&Value, RuleError> {
        self.get(name).ok_or_else(|| RuleError::BadParams(format!("parameter `{name}` is missing")))
    }

    pub fn integer(&self, name: &str) -> Result<i64, RuleError> {
        match self.require(name)? {
            Value::Integer(i) => Ok(*i),
            Value::Number(n) if (*n as i64) as f64 == *n => Ok(*n as i64),
            other => Err(wrong_kind(name, "an integer", other)),
        }
    }

    pub fn number(&self, name: &str) -> Result<f64, RuleError> {
        match self.require(name)? {
            Value::Integer(i) => Ok(*i as f64),
            Value::Number(n) => Ok(*n),
            other => Err(wrong_kind(name, "a number", other)),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<bool, RuleError> {
        match self.require(name)? {
            Value::Boolean(b) => Ok(*b),
            other => Err(wrong_kind(name, "a boolean", other)),
        }
    }

    pub fn text(&self, name: &str) -> Result<String, RuleError> {
        match self.require(name)? {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong_kind(name, "a string", other)),
        }
    }

    pub fn text_list(&self, name: &str) -> Result<Vec<String>, RuleError> {
        match self.require(name)? {
            Value::TextList(list) => Ok(list.clone()),
            Value::Text(s) => Ok(vec![s.clone()]),
            other => Err(wrong_kind(name, "a list of strings", other)),
        }
    }
}

fn wrong_kind(name: &str, wanted: &str, got: &Value) -> RuleError {
    RuleError::BadParams(format!("parameter `{name}` must be {wanted}, got {got:?}"))
}

impl Descriptor {
    pub fn new(id: &str, version: &str, description: &str) -> Self {
        Descriptor { id: id.into(), version: version.into(), description: description.into(), params: Vec::new() }
    }

    pub fn param(mut self, spec: ParamSpec) -> Self {
        self.params.push(spec);
        self
    }
}

impl ParamSpec {
    fn with(name: &str, kind: ParamKind, default: Option<String>, description: &str) -> Self {
        ParamSpec { name: name.into(), kind, default, description: description.into() }
    }

    pub fn integer(name: &str, default: Option<i64>, description: &str) -> Self {
        Self::with(name, ParamKind::Integer, default.map(|d| d.to_string()), description)
    }

    pub fn number(name: &str, default: Option<f64>, description: &str) -> Self {
        Self::with(name, ParamKind::Number, default.map(json_number), description)
    }

    pub fn boolean(name: &str, default: Option<bool>, description: &str) -> Self {
        Self::with(name, ParamKind::Boolean, default.map(|d| d.to_string()), description)
    }

    pub fn text(name: &str, default: Option<&str>, description: &str) -> Self {
        Self::with(name, ParamKind::Text, default.map(json_string), description)
    }

    pub fn text_list(name: &str, default: &[&str], description: &str) -> Self {
        let items: Vec<String> = default.iter().map(|s| json_string(s)).collect();
        let json = format!("[{}]", items.join(","));
        Self::with(name, ParamKind::TextList, Some(json), description)
    }
}

fn json_number(n: f64) -> String {
    if (n as i64) as f64 == n && n < 1e15 && n > -1e15 {
        format!("{n:.1}")
    } else {
        n.to_string()
    }
}

/// JSON string literal; the SDK has no serde so that rules stay small.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
