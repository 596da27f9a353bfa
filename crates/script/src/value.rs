//! Script values and their text forms (human and JSON).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// A value in a script.
///
/// Numbers are `Int` (exact, `i64`; instants are milliseconds since the
/// epoch) or `Float` (`f64`). An operator's `@X` is a `List` of `Int`s.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// The kind of value, with its article, for messages: "a string".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
        }
    }

    /// A list of instants (milliseconds since the epoch), as `@X` is.
    pub fn instants(instants: &[i64]) -> Value {
        Value::List(instants.iter().map(|&t| Value::Int(t)).collect())
    }

    /// The value as a trace keeps it: strings cut at 200 characters, lists
    /// at 32 elements (with a last element saying how many more), so a run
    /// that builds a huge value cannot make its trace huge.
    pub fn abbreviated(&self) -> Value {
        const CHARS: usize = 200;
        const ELEMENTS: usize = 32;
        match self {
            Value::Str(s) if s.chars().nth(CHARS).is_some() => {
                let mut short: String = s.chars().take(CHARS).collect();
                let _ = write!(short, "… ({} bytes)", s.len());
                Value::Str(short)
            }
            Value::List(items) if items.len() > ELEMENTS => {
                let mut short: Vec<Value> = items[..ELEMENTS].iter().map(Value::abbreviated).collect();
                short.push(Value::Str(alloc::format!("… {} more", items.len() - ELEMENTS)));
                Value::List(short)
            }
            Value::List(items) if items.iter().any(|i| matches!(i, Value::Str(_) | Value::List(_))) => {
                Value::List(items.iter().map(Value::abbreviated).collect())
            }
            other => other.clone(),
        }
    }

    /// The value as JSON text (non-finite floats become `null`).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:?}");
            }
            Value::Float(_) => out.push_str("null"),
            Value::Str(s) => json_string(out, s),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
        }
    }
}

/// `null`, `true`, `42`, `1.5`, `"text"`, `[1, 2]`: the script's own notation.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
