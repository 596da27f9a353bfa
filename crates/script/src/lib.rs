//! `callqa-script`: the rule language of callqa's scripted items, a
//! QLExpress-compatible subset (lexer, parser, evaluator).
//!
//! QA staff configure an item as a set of **operators** (算子: `A`, `E`, …,
//! any identifier) and a short **script** that combines them. This crate is
//! the language only: it runs inside the `bundled:script` guest component,
//! never in the host, so fuel, deadline and memory caps apply to scripts as
//! to compiled rules. It is `no_std` + `alloc` with no dependencies.
//!
//! ```
//! use callqa_script::{CompileOptions, Limits, NoFunctions, Operators, Outcome, Program};
//!
//! let program = Program::compile(
//!     "承诺催单 = A && !E;\nif (承诺催单) { return 分钟差(@C, @A) > 10; }\nreturn false;",
//!     &CompileOptions { operators: &["A", "C", "E"], functions: &NoFunctions },
//! )
//! .unwrap();
//! let ops = Operators::new().hit("A", &[1_700_000_900_000]).hit("C", &[1_700_000_000_000]).miss("E");
//! let run = program.run(&ops, &NoFunctions, &Limits::default()).unwrap();
//! assert_eq!(run.outcome, Outcome::True);
//! assert_eq!(
//!     run.trace.to_string(),
//!     "A = true, E = false, @C = [1700000000000], @A = [1700000900000]; 承诺催单 = true (line 1); \
//!      if line 2 承诺催单: true → then; return line 2: true"
//! );
//! ```
//!
//! # The language
//!
//! Statements are separated by `;` (optional after the last one and after a
//! `}`): assignment `x = expr` (also `x += e`, `x -= e`, `x++`, `x--`),
//! `if (c) {…} else if (c) {…} else {…}` (aliases `如果 (c) 则 {…} 否则 {…}`),
//! `return expr`, `for (i = 0; i < n; i++) {…}` with `break` / `continue`, and
//! bare expressions (a script without `return` yields its last expression's
//! value). Expressions, loosest first: `c ? a : b`; `||` `or`; `&&` `and`;
//! `==` `!=` `<>`; `<` `>` `<=` `>=` `in` `like`; `+` `-`; `*` `/` `%` `mod`;
//! prefix `!` `not` `-`; `x[i]`. Literals: integers (exact, `i64`; a Java `L`
//! suffix is accepted), decimals (`f64`), strings in `'…'` or `"…"` with
//! `\n \t \r \\ \' \" \uXXXX`, `true`, `false`, `null`, lists `[a, b]`.
//! Comments: `//` and `/* */`. Identifiers are Unicode letters, digits, `_`.
//!
//! * Integer `/` and `%` truncate as in Java (`7 / 2 == 3`); division by
//!   zero is a runtime error; integer overflow is a runtime error.
//! * `+` with a string on either side concatenates.
//! * `x in [a, b]` is `x == a || x == b`; `s like "abc%"`: `%` matches any
//!   run of characters (the only wildcard, as in QLExpress).
//! * `==` between values of different kinds is `false`, never an error;
//!   `1 == 1.0`.
//!
//! # Names
//!
//! An identifier assigned anywhere in the script is a **variable** (reading
//! it before its assignment gives `null`). Every other identifier must be a
//! configured **operator**: bare `A` is whether it hit (a boolean), `@A` the
//! instants of its hits (a list of milliseconds since the epoch, ascending).
//! Anything else is a load error: "`X` is neither assigned in the script nor a
//! configured operator", with line and column.
//!
//! **A list where one value is expected** (an operand of `<`, `+`, `==`
//! against a non-list, an instant argument) stands for its first (earliest)
//! element; an empty list stands for `null`. So `@J < 催单时间` compares the
//! first instant of `J`, and `@A == null` is true when `A` has no hit.
//!
//! # Functions
//!
//! * `分钟差(a, b)` / `minutes_between(a, b)`: whole minutes from `a` to `b`,
//!   `(b - a) / 60000` truncated toward zero, signed: positive when `b` is
//!   later. `分钟差(a, b) > 10` holds when `b` is at least 11 whole minutes
//!   (660 000 ms) after `a`, i.e. more than 10 full minutes later.
//! * `距离最近时间(list, pivot, after)` / `nearest(list, pivot, after)`: the
//!   instant of `list` nearest to `pivot`, at or after it when `after` is
//!   true, at or before it otherwise; `null` when there is none.
//! * `len(x)`: the length of a list or (in characters) a string.
//! * Any other name comes from the embedder's [`Functions`] table
//!   (`contains_any`, `find_all`, …), its arity checked at load time.
//!
//! A function given a value of the wrong kind is a runtime error naming the
//! function and the argument: `分钟差: argument 1 is a string, expected an
//! instant`.
//!
//! # The missing-data rule
//!
//! A missing instant must never silently pass a violation, nor silently
//! raise one. So `null` (a missing operator value, an empty `@X`, a
//! `距离最近时间` that found nothing) follows one rule everywhere:
//!
//! 1. **It propagates** through arithmetic, ordering comparisons, `like`
//!    and the time functions: `null + 1`, `null < 5`, `5 >= null`,
//!    `分钟差(null, t)`, `分钟差(t, null)`, `距离最近时间(@B, null, true)` are
//!    all `null`.
//! 2. **`==`, `!=`, `<>` and `in` compare it as a value**, so a script can
//!    test for it: `x == null` is true when `x` is null, `x != null` false,
//!    `null == 0` false, `null in [1, null]` true.
//! 3. **`&&`, `||`, `!` are three-valued** (Kleene): `false && null` is
//!    `false`, `true || null` is `true`, `true && null`, `false || null`,
//!    `null && null` and `!null` are `null`.
//! 4. **A decision on `null` ends the run as [`Outcome::Unknown`]**: an
//!    `if (null)`, a ternary on `null`, a `for` condition of `null`, or the
//!    script returning `null`. `Unknown` names what was missing — the
//!    operator or variable whose `null` decided it, with line and column —
//!    and the rule turns it into an `error` item, never into pass or fail.
//!
//! Example, with the seed script's `return (!G || (@J < 备注时间 && 分钟差(@J,
//! 备注时间) > 10));` when `G` hit but only before the call (so `备注时间` is
//! null): `!G` is false, `@J < null` is null, `null && …` is null,
//! `false || null` is null, and the run is `Unknown`: "`备注时间` at line 11,
//! column 21 is null: assigned at line 6 from `距离最近时间` …, which found no
//! instant of `@G` at or after the pivot". Were `G` not hit at all, `!G` is
//! true and `true || …` is true: the missing `备注时间` does not matter.
//!
//! # Limits
//!
//! Parsing is bounded by [`MAX_DEPTH`] (256) levels of nesting: deeper is a
//! load error at the position where it was exceeded, never a stack
//! overflow. A run is bounded by [`Limits`]: a step budget (every
//! expression and statement evaluated costs one; a loop without end fails
//! with "step budget exhausted"; `bundled:script` sets none and lets the
//! sandbox's fuel stop a run), a maximum string length and a maximum list
//! length (runtime errors when exceeded).
//!
//! # The trace
//!
//! Each run returns a [`Trace`]: the value of each operator read, each
//! assignment executed (name, value, line), each `if` condition evaluated
//! (line, source text, value, branch), and the `return` that decided. It has a
//! human rendering (`Display`) and a compact JSON form ([`Trace::to_json`]);
//! see README.md.

#![no_std]

extern crate alloc;

mod eval;
mod lexer;
mod parser;
mod trace;
mod value;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

pub use lexer::Pos;
pub use parser::MAX_DEPTH;
pub use trace::{Branch, Step, Trace};
pub use value::Value;

/// A script that failed to load: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counting characters (not bytes).
    pub column: u32,
    /// What was found and what was expected, for rule authors.
    pub message: String,
}

impl LoadError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> LoadError {
        LoadError { line: pos.line, column: pos.column, message: message.into() }
    }
}

/// `line 7, column 4: expected `)` after the condition, found `{``
impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

/// A run that failed: a wrong kind of value, a limit exceeded.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeError {
    pub line: u32,
    pub column: u32,
    /// `分钟差: argument 1 is a string, expected an instant`
    pub message: String,
    /// What ran before the error.
    pub trace: Trace,
}

/// `line 8, column 4: 分钟差: argument 1 is a string, expected an instant`
impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

/// What was missing when a decision met `null`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The operator (`A`, `@A`), variable or function whose null decided.
    pub name: String,
    /// Where it was read (1-based, in characters).
    pub line: u32,
    pub column: u32,
    /// Why it is null.
    pub detail: String,
}

/// `` `备注时间` at line 11, column 21 is null: assigned at line 6 from … ``
impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` at line {}, column {} is null: {}", self.name, self.line, self.column, self.detail)
    }
}

/// The verdict of a script: `True` means the item found a problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    True,
    False,
    /// A decision met `null` (see the missing-data rule).
    Unknown {
        why: Missing,
    },
}

/// A finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    pub outcome: Outcome,
    pub trace: Trace,
}

impl RunResult {
    /// `{"outcome":"true"|"false"|"unknown","missing":{…}|null,"trace":{…}}`,
    /// `missing` being `{"name":…,"line":…,"column":…,"detail":…}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"outcome\":");
        match &self.outcome {
            Outcome::True => out.push_str("\"true\",\"missing\":null"),
            Outcome::False => out.push_str("\"false\",\"missing\":null"),
            Outcome::Unknown { why } => {
                out.push_str("\"unknown\",\"missing\":{\"name\":");
                value::json_string(&mut out, &why.name);
                out.push_str(&alloc::format!(",\"line\":{},\"column\":{},\"detail\":", why.line, why.column));
                value::json_string(&mut out, &why.detail);
                out.push('}');
            }
        }
        out.push_str(",\"trace\":");
        self.trace.write_json(&mut out);
        out.push('}');
        out
    }
}

/// How many arguments a function takes (`max` may be `usize::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arity {
    pub min: usize,
    pub max: usize,
}

impl Arity {
    pub const fn exactly(n: usize) -> Arity {
        Arity { min: n, max: n }
    }
}

/// The embedder's functions (`contains_any`, `find_all`, …). Built-ins
/// (`分钟差`, `minutes_between`, `距离最近时间`, `nearest`, `len`) take
/// precedence over names here.
pub trait Functions {
    /// The arity of `name`, or `None` when there is no such function (a load
    /// error "unknown function").
    fn arity(&self, name: &str) -> Option<Arity>;
    /// Calls `name`. An `Err` is a runtime error; its text should name the
    /// argument ("argument 2 is a number, expected a list of strings"): the
    /// interpreter prefixes the function's name and the position.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String>;
}

/// No functions beyond the built-ins.
pub struct NoFunctions;

impl Functions for NoFunctions {
    fn arity(&self, _: &str) -> Option<Arity> {
        None
    }
    fn call(&self, name: &str, _: &[Value]) -> Result<Value, String> {
        Err(alloc::format!("no function `{name}`"))
    }
}

/// The values of the configured operators for one run.
pub trait OperatorValues {
    /// Bare `name`: normally `Value::Bool(hit)`; `Value::Null` when unknown.
    fn value(&self, name: &str) -> Value;
    /// `@name`: normally a `Value::List` of `Value::Int` instants
    /// (milliseconds since the epoch, ascending); `Value::Null` when unknown.
    fn instants(&self, name: &str) -> Value;
    /// Why `name` (or `@name`) is null, for the `Unknown` message: "the
    /// contact has no connected-to-agent-at".
    fn why_null(&self, _name: &str) -> Option<String> {
        None
    }
}

/// A simple [`OperatorValues`]: a map filled by hand. Names not set are
/// `null` / `null`.
#[derive(Clone, Debug, Default)]
pub struct Operators {
    map: BTreeMap<String, (Value, Value)>,
}

impl Operators {
    pub fn new() -> Operators {
        Operators::default()
    }

    /// `name` hit at these instants: `name` is true, `@name` the instants.
    pub fn hit(mut self, name: &str, instants: &[i64]) -> Operators {
        self.map.insert(name.to_string(), (Value::Bool(true), Value::instants(instants)));
        self
    }

    /// `name` did not hit: `name` is false, `@name` is `[]`.
    pub fn miss(mut self, name: &str) -> Operators {
        self.map.insert(name.to_string(), (Value::Bool(false), Value::List(Vec::new())));
        self
    }

    /// Any values for `name` and `@name`.
    pub fn set(mut self, name: &str, value: Value, instants: Value) -> Operators {
        self.map.insert(name.to_string(), (value, instants));
        self
    }
}

impl OperatorValues for Operators {
    fn value(&self, name: &str) -> Value {
        self.map.get(name).map_or(Value::Null, |v| v.0.clone())
    }
    fn instants(&self, name: &str) -> Value {
        self.map.get(name).map_or(Value::Null, |v| v.1.clone())
    }
}

/// What a run may use. [`Limits::default`]: 1 000 000 steps, 1 MiB strings,
/// 100 000-element lists, 256 trace steps.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Steps a run may take (each expression and statement evaluated is one).
    pub steps: u64,
    /// Longest string a run may build, in bytes.
    pub max_string_bytes: usize,
    /// Longest list a run may build or receive.
    pub max_list_len: usize,
    /// Trace steps kept; later ones are only counted.
    pub max_trace_steps: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { steps: 1_000_000, max_string_bytes: 1 << 20, max_list_len: 100_000, max_trace_steps: 256 }
    }
}

/// What [`Program::compile`] checks names against.
pub struct CompileOptions<'a> {
    /// The operators configured beside the script (without `@`).
    pub operators: &'a [&'a str],
    /// The embedder's functions (arity only, at compile time).
    pub functions: &'a dyn Functions,
}

/// A parsed, name-checked script: compile once, run many times.
#[derive(Debug)]
pub struct Program {
    source: String,
    stmts: Vec<parser::Stmt>,
    vars: Vec<String>,
    ops: Vec<String>,
}

impl Program {
    /// Parses `text` and checks every name: variables, configured operators,
    /// functions and their arity.
    pub fn compile(text: &str, options: &CompileOptions<'_>) -> Result<Program, LoadError> {
        let parsed = parser::parse(text, options.operators, options.functions)?;
        Ok(Program { source: text.to_string(), stmts: parsed.stmts, vars: parsed.vars, ops: parsed.ops })
    }

    /// The operators the script reads (bare or with `@`), in first-use order.
    pub fn operators(&self) -> &[String] {
        &self.ops
    }

    /// The script's variables (names assigned), in first-assignment order.
    pub fn variables(&self) -> &[String] {
        &self.vars
    }

    /// The script's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the script over one set of operator values.
    pub fn run(
        &self,
        operators: &dyn OperatorValues,
        functions: &dyn Functions,
        limits: &Limits,
    ) -> Result<RunResult, RuntimeError> {
        eval::run(self, operators, functions, limits)
    }
}
