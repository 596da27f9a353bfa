//! "Which clause decided": what a run read, assigned, tested and returned.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::value::{json_string, Value};

/// Which way an `if` went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// The condition was true: the body ran.
    Then,
    /// The condition was false and an `else` / `else if` follows.
    Else,
    /// The condition was false and there is no `else`: nothing ran.
    Skip,
    /// The condition was null: the run ended with [`crate::Outcome::Unknown`].
    Unknown,
}

impl Branch {
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Then => "then",
            Branch::Else => "else",
            Branch::Skip => "skip",
            Branch::Unknown => "unknown",
        }
    }
}

/// One step of a run, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `name = value` executed at `line`.
    Assign { name: String, value: Value, line: u32 },
    /// An `if` (or `else if`) condition evaluated. `condition` is its source
    /// text, whitespace collapsed, at most 80 characters.
    If { line: u32, column: u32, condition: String, value: Value, branch: Branch },
    /// The `return` (or, with none, the last expression) that decided.
    Return { line: u32, column: u32, value: Value },
}

/// The trace of one run.
///
/// * `operators`: each operator the run read, in the order first read, with
///   its value: `A` is whether it hit, `@A` the instants of its hits.
/// * `steps`: assignments, `if` conditions and the deciding `return`, at most
///   [`crate::Limits::max_trace_steps`]; `truncated` counts the steps left
///   out after that (a loop assigning many times).
///
/// Values are kept [abbreviated](Value::abbreviated): strings to 200
/// characters, lists to 32 elements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub operators: Vec<(String, Value)>,
    pub steps: Vec<Step>,
    pub truncated: u64,
}

fn short(text: &str, out: &mut String) {
    let mut n = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if n >= 80 {
            out.push('…');
            return;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        n += 1;
    }
}

/// Source text of a condition as the trace shows it: whitespace collapsed to
/// one space, cut at 80 characters.
pub(crate) fn condition_text(text: &str) -> String {
    let mut out = String::new();
    short(text, &mut out);
    out
}

impl Trace {
    /// The trace as compact JSON:
    ///
    /// ```text
    /// {"operators":{"A":true,"@A":[1700000060000]},
    ///  "steps":[{"assign":"承诺催单","line":2,"value":true},
    ///           {"if":7,"column":1,"condition":"承诺催单","value":true,"branch":"then"},
    ///           {"return":9,"column":1,"value":false}],
    ///  "truncated":0}
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        out.push_str("{\"operators\":{");
        for (i, (name, value)) in self.operators.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(out, name);
            out.push(':');
            value.write_json(out);
        }
        out.push_str("},\"steps\":[");
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match step {
                Step::Assign { name, value, line } => {
                    out.push_str("{\"assign\":");
                    json_string(out, name);
                    let _ = write!(out, ",\"line\":{line},\"value\":");
                    value.write_json(out);
                }
                Step::If { line, column, condition, value, branch } => {
                    let _ = write!(out, "{{\"if\":{line},\"column\":{column},\"condition\":");
                    json_string(out, condition);
                    out.push_str(",\"value\":");
                    value.write_json(out);
                    let _ = write!(out, ",\"branch\":\"{}\"", branch.as_str());
                }
                Step::Return { line, column, value } => {
                    let _ = write!(out, "{{\"return\":{line},\"column\":{column},\"value\":");
                    value.write_json(out);
                }
            }
            out.push('}');
        }
        let _ = write!(out, "],\"truncated\":{}}}", self.truncated);
    }
}

/// One line for people:
///
/// ```text
/// A = true, @A = [1700000060000], E = false; 上次催单 = 1699999400000 (line 1); 承诺催单 = true (line 2);
/// if line 7 承诺催单: true → then; if line 8 分钟差(上次催单,@A)>10: false → else; return line 11: false
/// ```
///
/// (on one line; wrapped here). Operators come first, then the steps in
/// order, separated by `; `.
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, (name, value)) in self.operators.iter().enumerate() {
            f.write_str(if i > 0 { ", " } else { "" })?;
            write!(f, "{name} = {value}")?;
            first = false;
        }
        for step in &self.steps {
            f.write_str(if first { "" } else { "; " })?;
            first = false;
            match step {
                Step::Assign { name, value, line } => write!(f, "{name} = {value} (line {line})")?,
                Step::If { line, condition, value, branch, .. } => {
                    write!(f, "if line {line} {condition}: {value} → {}", branch.as_str())?
                }
                Step::Return { line, value, .. } => write!(f, "return line {line}: {value}")?,
            }
        }
        if self.truncated > 0 {
            write!(f, "; … {} more steps", self.truncated)?;
        }
        Ok(())
    }
}
