//! The tree-walking evaluator. Recursion follows the tree, whose height the
//! parser bounds; loops are bounded by the step budget.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt::Write;

use crate::lexer::Pos;
use crate::parser::{AssignOp, BinOp, Expr, Func, Res, Stmt};
use crate::trace::{condition_text, Branch, Step, Trace};
use crate::value::Value;
use crate::{Functions, Limits, Missing, OperatorValues, Outcome, Program, RunResult, RuntimeError};

/// Why a value is null (kept only for null values and empty lists).
#[derive(Debug)]
struct Src {
    name: String,
    pos: Pos,
    kind: SrcKind,
}

#[derive(Debug)]
enum SrcKind {
    Detail(String),
    /// A variable read; `root` is the non-variable source of its null.
    Var {
        assigned: u32,
        root: Rc<Src>,
    },
    Unassigned,
}

impl Src {
    fn detail(&self) -> String {
        match &self.kind {
            SrcKind::Detail(d) => d.clone(),
            SrcKind::Unassigned => "it is read before any assignment".to_string(),
            SrcKind::Var { assigned, root } => format!(
                "assigned at line {assigned} from `{}` (line {}, column {}): {}",
                root.name,
                root.pos.line,
                root.pos.column,
                root.detail()
            ),
        }
    }

    fn missing(&self) -> Missing {
        Missing { name: self.name.clone(), line: self.pos.line, column: self.pos.column, detail: self.detail() }
    }
}

type S = Option<Rc<Src>>;
type V = (Value, S);

enum Halt {
    Error(Pos, String),
    Unknown(Missing),
}

type R<T> = Result<T, Halt>;

enum Flow {
    Next,
    Break,
    Continue,
    Return,
}

struct Slot {
    value: Value,
    src: S,
    line: u32,
    set: bool,
}

struct Run<'a> {
    prog: &'a Program,
    ops: &'a dyn OperatorValues,
    funcs: &'a dyn Functions,
    limits: &'a Limits,
    steps: u64,
    vars: Vec<Slot>,
    bare: Vec<Option<V>>,
    at: Vec<Option<V>>,
    trace: Trace,
    ret: Option<(V, Pos, (usize, usize))>,
    last: Option<(V, Pos, (usize, usize))>,
}

fn err<T>(pos: Pos, msg: impl Into<String>) -> R<T> {
    Err(Halt::Error(pos, msg.into()))
}

fn src(name: &str, pos: Pos, detail: String) -> S {
    Some(Rc::new(Src { name: name.to_string(), pos, kind: SrcKind::Detail(detail) }))
}

/// A list where one value is expected: its first element; `[]` is null.
fn scalar(v: V) -> V {
    match v {
        (Value::List(mut items), s) => {
            if items.is_empty() {
                (Value::Null, s)
            } else {
                (items.swap_remove(0), None)
            }
        }
        other => other,
    }
}

fn num_eq(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x == y),
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => Some(*x as f64 == *y),
        (Value::Float(x), Value::Float(y)) => Some(x == y),
        _ => None,
    }
}

/// `==`: null is a value; a list against a non-list is its first element.
fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_eq(p, q)),
        (Value::List(x), other) | (other, Value::List(x)) => values_eq(x.first().unwrap_or(&Value::Null), other),
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => num_eq(a, b).unwrap_or(false),
    }
}

fn like(text: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn side(left: bool) -> &'static str {
    if left {
        "left"
    } else {
        "right"
    }
}

impl Run<'_> {
    fn tick(&mut self, pos: Pos) -> R<()> {
        if self.steps == 0 {
            return err(pos, format!("step budget exhausted ({} steps)", self.limits.steps));
        }
        self.steps -= 1;
        Ok(())
    }

    fn record(&mut self, step: Step) {
        if self.trace.steps.len() < self.limits.max_trace_steps {
            self.trace.steps.push(step);
        } else {
            self.trace.truncated += 1;
        }
    }

    fn text(&self, span: (usize, usize)) -> &str {
        self.prog.source.get(span.0..span.1).unwrap_or("")
    }

    fn check_size(&self, v: &Value, pos: Pos, what: &str) -> R<()> {
        match v {
            Value::Str(s) if s.len() > self.limits.max_string_bytes => {
                err(pos, format!("{what}: a string longer than {} bytes", self.limits.max_string_bytes))
            }
            Value::List(items) if items.len() > self.limits.max_list_len => {
                err(pos, format!("{what}: a list longer than {} elements", self.limits.max_list_len))
            }
            _ => Ok(()),
        }
    }

    /// A missing value at a decision point: its source, or the expression.
    fn unknown(&self, s: &S, pos: Pos, span: (usize, usize)) -> Halt {
        Halt::Unknown(match s {
            Some(s) => s.missing(),
            None => Missing {
                name: condition_text(self.text(span)),
                line: pos.line,
                column: pos.column,
                detail: "the expression evaluates to null".to_string(),
            },
        })
    }

    fn truth(&self, v: &Value, pos: Pos, what: &str) -> R<Option<bool>> {
        match v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Null => Ok(None),
            other => err(pos, format!("{what} is {}, expected true or false", other.kind())),
        }
    }

    fn operator(&mut self, idx: usize, at: bool, pos: Pos) -> R<V> {
        let cache = if at { &self.at } else { &self.bare };
        if let Some(v) = &cache[idx] {
            let v = v.clone();
            return Ok((
                v.0,
                v.1.map(|s| Rc::new(Src { name: s.name.clone(), pos, kind: SrcKind::Detail(s.detail()) })),
            ));
        }
        let name = &self.prog.ops[idx];
        let value = if at { self.ops.instants(name) } else { self.ops.value(name) };
        let shown = if at { format!("@{name}") } else { name.clone() };
        let s = match &value {
            Value::Null => src(
                &shown,
                pos,
                match self.ops.why_null(name) {
                    Some(why) => format!("operator `{name}` has no value: {why}"),
                    None => format!("operator `{name}` has no value"),
                },
            ),
            Value::List(items) if items.is_empty() => src(&shown, pos, format!("operator `{name}` has no hit")),
            _ => None,
        };
        self.check_size(&value, pos, &shown)?;
        self.trace.operators.push((shown, value.abbreviated()));
        let v = (value, s);
        if at {
            self.at[idx] = Some(v.clone());
        } else {
            self.bare[idx] = Some(v.clone());
        }
        Ok(v)
    }

    fn expr(&mut self, e: &Expr) -> R<V> {
        self.tick(e.pos())?;
        match e {
            Expr::Lit(v, _) => Ok((v.clone(), None)),
            Expr::Name { name, pos, res } => match res {
                Res::Var(slot) => Ok(self.read_var(*slot, name, *pos)),
                Res::Op(idx) => self.operator(*idx, false, *pos),
                Res::Unresolved => err(*pos, "internal: unresolved name"),
            },
            Expr::At { op, pos, .. } => self.operator(*op, true, *pos),
            Expr::Not(e, pos) => {
                let v = self.expr(e)?;
                match self.truth(&v.0, *pos, "the operand of `!`")? {
                    Some(b) => Ok((Value::Bool(!b), None)),
                    None => Ok((Value::Null, v.1)),
                }
            }
            Expr::Neg(e, pos) => {
                let v = scalar(self.expr(e)?);
                match v.0 {
                    Value::Null => Ok(v),
                    Value::Int(i) => match i.checked_neg() {
                        Some(n) => Ok((Value::Int(n), None)),
                        None => err(*pos, "`-`: integer overflow"),
                    },
                    Value::Float(f) => Ok((Value::Float(-f), None)),
                    other => err(*pos, format!("`-`: the operand is {}, expected a number", other.kind())),
                }
            }
            Expr::And(l, r, pos) | Expr::Or(l, r, pos) => {
                let and = matches!(e, Expr::And(..));
                let sym = if and { "&&" } else { "||" };
                let lv = self.expr(l)?;
                let lb = self.truth(&lv.0, *pos, &format!("`{sym}`: the left operand"))?;
                // false && … = false; true || … = true, without evaluating the right.
                if lb == Some(!and) {
                    return Ok((Value::Bool(!and), None));
                }
                let rv = self.expr(r)?;
                let rb = self.truth(&rv.0, *pos, &format!("`{sym}`: the right operand"))?;
                Ok(match (lb, rb) {
                    (_, Some(b)) if b != and => (Value::Bool(b), None),
                    (Some(_), Some(b)) => (Value::Bool(b), None),
                    (None, _) => (Value::Null, lv.1),
                    (_, None) => (Value::Null, rv.1),
                })
            }
            Expr::Binary { op, sym, l, r, pos } => {
                let lv = self.expr(l)?;
                let rv = self.expr(r)?;
                self.binary(*op, sym, lv, rv, *pos)
            }
            Expr::Ternary { c, t, f, pos, text } => {
                let cv = self.expr(c)?;
                match self.truth(&cv.0, *pos, "the condition of `?`")? {
                    Some(true) => self.expr(t),
                    Some(false) => self.expr(f),
                    None => Err(self.unknown(&cv.1, c.pos(), *text)),
                }
            }
            Expr::List(items, pos) => {
                if items.len() > self.limits.max_list_len {
                    return err(*pos, format!("a list longer than {} elements", self.limits.max_list_len));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.expr(item)?.0);
                }
                let s = if out.is_empty() { src("[]", *pos, "the list is empty".to_string()) } else { None };
                Ok((Value::List(out), s))
            }
            Expr::Index(l, i, pos) => {
                let lv = self.expr(l)?;
                let iv = scalar(self.expr(i)?);
                let items = match lv.0 {
                    Value::Null => return Ok(lv),
                    Value::List(items) => items,
                    other => return err(*pos, format!("`[]`: indexing {}, expected a list", other.kind())),
                };
                let n = match iv.0 {
                    Value::Null => return Ok(iv),
                    Value::Int(n) => n,
                    other => return err(*pos, format!("`[]`: the index is {}, expected an integer", other.kind())),
                };
                match usize::try_from(n).ok().and_then(|n| items.into_iter().nth(n)) {
                    Some(v) => Ok((v, None)),
                    None => Ok((Value::Null, src("[]", *pos, format!("index {n} is outside the list")))),
                }
            }
            Expr::Call { name, pos, func, args, texts } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                self.call(name, *pos, func, vals, texts)
            }
        }
    }

    fn binary(&mut self, op: BinOp, sym: &str, l: V, r: V, pos: Pos) -> R<V> {
        match op {
            BinOp::Eq => return Ok((Value::Bool(values_eq(&l.0, &r.0)), None)),
            BinOp::Ne => return Ok((Value::Bool(!values_eq(&l.0, &r.0)), None)),
            BinOp::In => {
                return match &r.0 {
                    Value::Null => Ok(r),
                    Value::List(items) => Ok((Value::Bool(items.iter().any(|x| values_eq(&l.0, x))), None)),
                    other => err(pos, format!("`in`: the right operand is {}, expected a list", other.kind())),
                };
            }
            BinOp::Add => {
                if let (Value::List(a), Value::List(b)) = (&l.0, &r.0) {
                    if a.len() + b.len() > self.limits.max_list_len {
                        return err(pos, format!("`+`: a list longer than {} elements", self.limits.max_list_len));
                    }
                    let mut out = a.clone();
                    out.extend(b.iter().cloned());
                    let s = if out.is_empty() { l.1.or(r.1) } else { None };
                    return Ok((Value::List(out), s));
                }
            }
            _ => {}
        }
        let (l, r) = (scalar(l), scalar(r));
        if l.0 == Value::Null {
            return Ok(l);
        }
        if r.0 == Value::Null {
            return Ok(r);
        }
        let (a, b) = (l.0, r.0);
        let cmp = |o: Ordering| -> Value {
            Value::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            })
        };
        match op {
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                let o = match (&a, &b) {
                    (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
                    (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
                    (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                        as_f64(&a).partial_cmp(&as_f64(&b))
                    }
                    _ => {
                        return err(pos, format!("`{sym}`: cannot compare {} with {}", a.kind(), b.kind()));
                    }
                };
                // NaN compares false every way.
                Ok((o.map_or(Value::Bool(false), cmp), None))
            }
            BinOp::Like => match (&a, &b) {
                (Value::Str(t), Value::Str(p)) => Ok((Value::Bool(like(t, p)), None)),
                (Value::Str(_), other) => {
                    err(pos, format!("`like`: the pattern is {}, expected a string", other.kind()))
                }
                (other, _) => err(pos, format!("`like`: the left operand is {}, expected a string", other.kind())),
            },
            _ => {
                if op == BinOp::Add && (matches!(a, Value::Str(_)) || matches!(b, Value::Str(_))) {
                    let (x, y) = (text_of(&a), text_of(&b));
                    if x.len() + y.len() > self.limits.max_string_bytes {
                        return err(pos, format!("`+`: a string longer than {} bytes", self.limits.max_string_bytes));
                    }
                    let mut s = x;
                    s.push_str(&y);
                    return Ok((Value::Str(s), None));
                }
                for (v, left) in [(&a, true), (&b, false)] {
                    if !matches!(v, Value::Int(_) | Value::Float(_)) {
                        return err(
                            pos,
                            format!("`{sym}`: the {} operand is {}, expected a number", side(left), v.kind()),
                        );
                    }
                }
                let v = match (&a, &b) {
                    (Value::Int(x), Value::Int(y)) => {
                        let (x, y) = (*x, *y);
                        if matches!(op, BinOp::Div | BinOp::Rem) && y == 0 {
                            return err(pos, format!("`{sym}`: division by zero"));
                        }
                        let r = match op {
                            BinOp::Add => x.checked_add(y),
                            BinOp::Sub => x.checked_sub(y),
                            BinOp::Mul => x.checked_mul(y),
                            BinOp::Div => x.checked_div(y),
                            _ => x.checked_rem(y),
                        };
                        match r {
                            Some(r) => Value::Int(r),
                            None => return err(pos, format!("`{sym}`: integer overflow")),
                        }
                    }
                    _ => {
                        let (x, y) = (as_f64(&a), as_f64(&b));
                        if matches!(op, BinOp::Div | BinOp::Rem) && y == 0.0 {
                            return err(pos, format!("`{sym}`: division by zero"));
                        }
                        Value::Float(match op {
                            BinOp::Add => x + y,
                            BinOp::Sub => x - y,
                            BinOp::Mul => x * y,
                            BinOp::Div => x / y,
                            _ => x % y,
                        })
                    }
                };
                Ok((v, None))
            }
        }
    }

    /// An instant argument: a number (a list: its first element), or null.
    fn instant(&self, v: V, fname: &str, n: usize, pos: Pos) -> R<Result<i64, S>> {
        let (v, s) = scalar(v);
        match v {
            Value::Null => Ok(Err(s)),
            Value::Int(i) => Ok(Ok(i)),
            Value::Float(f) if f.is_finite() => Ok(Ok(f as i64)),
            other => err(pos, format!("{fname}: argument {n} is {}, expected an instant", other.kind())),
        }
    }

    fn call(&mut self, name: &str, pos: Pos, func: &Func, args: Vec<V>, texts: &[(usize, usize)]) -> R<V> {
        match func {
            Func::MinutesBetween => {
                let mut it = args.into_iter();
                let a = self.instant(it.next().unwrap_or((Value::Null, None)), name, 1, pos)?;
                let b = self.instant(it.next().unwrap_or((Value::Null, None)), name, 2, pos)?;
                let (a, b) = match (a, b) {
                    (Err(s), _) | (_, Err(s)) => return Ok((Value::Null, s)),
                    (Ok(a), Ok(b)) => (a, b),
                };
                match b.checked_sub(a) {
                    Some(d) => Ok((Value::Int(d / 60_000), None)),
                    None => err(pos, format!("{name}: the instants are too far apart")),
                }
            }
            Func::Nearest => {
                let mut it = args.into_iter();
                let (list, list_src) = it.next().unwrap_or((Value::Null, None));
                let pivot = it.next().unwrap_or((Value::Null, None));
                let (after, after_src) = it.next().unwrap_or((Value::Null, None));
                let candidates: Option<Vec<i64>> = match list {
                    Value::Null => None,
                    Value::List(items) => {
                        let mut out = Vec::with_capacity(items.len());
                        for item in items {
                            match item {
                                Value::Int(i) => out.push(i),
                                Value::Float(f) if f.is_finite() => out.push(f as i64),
                                Value::Null => {}
                                other => {
                                    return err(
                                        pos,
                                        format!("{name}: argument 1 holds {}, expected instants", other.kind()),
                                    )
                                }
                            }
                        }
                        Some(out)
                    }
                    Value::Int(i) => Some(alloc::vec![i]),
                    Value::Float(f) if f.is_finite() => Some(alloc::vec![f as i64]),
                    other => {
                        return err(pos, format!("{name}: argument 1 is {}, expected a list of instants", other.kind()))
                    }
                };
                let pivot = self.instant(pivot, name, 2, pos)?;
                let after = match after {
                    Value::Bool(b) => Some(b),
                    Value::Null => None,
                    other => {
                        return err(pos, format!("{name}: argument 3 is {}, expected true or false", other.kind()))
                    }
                };
                let Some(candidates) = candidates else { return Ok((Value::Null, list_src)) };
                let pivot = match pivot {
                    Ok(p) => p,
                    Err(s) => return Ok((Value::Null, s)),
                };
                let Some(after) = after else { return Ok((Value::Null, after_src)) };
                let best = if after {
                    candidates.iter().copied().filter(|&t| t >= pivot).min()
                } else {
                    candidates.iter().copied().filter(|&t| t <= pivot).max()
                };
                match best {
                    Some(t) => Ok((Value::Int(t), None)),
                    None => {
                        let list_text = texts.first().map_or("", |&t| self.text(t));
                        let side = if after { "after" } else { "before" };
                        let mut detail = String::new();
                        let _ = write!(detail, "no instant of `{list_text}` at or {side} the pivot");
                        Ok((Value::Null, src(name, pos, detail)))
                    }
                }
            }
            Func::Len => {
                let (v, s) = args.into_iter().next().unwrap_or((Value::Null, None));
                match v {
                    Value::Null => Ok((Value::Null, s)),
                    Value::List(items) => Ok((Value::Int(items.len() as i64), None)),
                    Value::Str(t) => Ok((Value::Int(t.chars().count() as i64), None)),
                    other => err(pos, format!("{name}: argument 1 is {}, expected a list or a string", other.kind())),
                }
            }
            Func::External => {
                let first_null = args.iter().find(|a| a.0 == Value::Null).and_then(|a| a.1.clone());
                let vals: Vec<Value> = args.into_iter().map(|a| a.0).collect();
                match self.funcs.call(name, &vals) {
                    Ok(v) => {
                        self.check_size(&v, pos, name)?;
                        let s = if v == Value::Null {
                            first_null.or_else(|| src(name, pos, "the function returned null".to_string()))
                        } else {
                            None
                        };
                        Ok((v, s))
                    }
                    Err(msg) => err(pos, format!("{name}: {msg}")),
                }
            }
            Func::Unresolved => err(pos, "internal: unresolved function"),
        }
    }

    fn assign(&mut self, slot: usize, name: &str, pos: Pos, v: V) {
        let keep = matches!(&v.0, Value::Null) || matches!(&v.0, Value::List(l) if l.is_empty());
        self.record(Step::Assign { name: name.to_string(), value: v.0.abbreviated(), line: pos.line });
        self.vars[slot] = Slot { value: v.0, src: if keep { v.1 } else { None }, line: pos.line, set: true };
    }

    fn read_var(&self, slot: usize, name: &str, pos: Pos) -> V {
        let s = &self.vars[slot];
        if !s.set {
            return (Value::Null, Some(Rc::new(Src { name: name.to_string(), pos, kind: SrcKind::Unassigned })));
        }
        let root = s.src.as_ref().map(|r| match &r.kind {
            SrcKind::Var { root, .. } => root.clone(),
            _ => r.clone(),
        });
        let out = root
            .map(|root| Rc::new(Src { name: name.to_string(), pos, kind: SrcKind::Var { assigned: s.line, root } }));
        (s.value.clone(), out)
    }

    fn block(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            match self.stmt(s)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Expr { e, text } => {
                let v = self.expr(e)?;
                self.last = Some((v, e.pos(), *text));
            }
            Stmt::Assign { name, slot, pos, op, e } => {
                self.tick(*pos)?;
                let v = self.expr(e)?;
                let v = match op {
                    AssignOp::Set => v,
                    AssignOp::Add | AssignOp::Sub => {
                        let cur = self.read_var(*slot, name, *pos);
                        let (bop, sym) = if *op == AssignOp::Add { (BinOp::Add, "+=") } else { (BinOp::Sub, "-=") };
                        self.binary(bop, sym, cur, v, *pos)?
                    }
                };
                self.assign(*slot, name, *pos, v);
            }
            Stmt::Step { name, slot, pos, delta } => {
                self.tick(*pos)?;
                let cur = self.read_var(*slot, name, *pos);
                let sym = if *delta > 0 { "++" } else { "--" };
                let v = self.binary(BinOp::Add, sym, cur, (Value::Int(*delta), None), *pos)?;
                self.assign(*slot, name, *pos, v);
            }
            Stmt::If { arms, els } => {
                for (i, arm) in arms.iter().enumerate() {
                    self.tick(arm.pos)?;
                    let c = self.expr(&arm.cond)?;
                    let b = self.truth(&c.0, arm.cond.pos(), "the condition of `if`")?;
                    let branch = match b {
                        Some(true) => Branch::Then,
                        Some(false) if i + 1 < arms.len() || els.is_some() => Branch::Else,
                        Some(false) => Branch::Skip,
                        None => Branch::Unknown,
                    };
                    let condition = condition_text(self.text(arm.text));
                    self.record(Step::If {
                        line: arm.pos.line,
                        column: arm.pos.column,
                        condition,
                        value: c.0.abbreviated(),
                        branch,
                    });
                    match b {
                        Some(true) => return self.block(&arm.body),
                        Some(false) => {}
                        None => return Err(self.unknown(&c.1, arm.cond.pos(), arm.text)),
                    }
                }
                if let Some(body) = els {
                    return self.block(body);
                }
            }
            Stmt::For { pos, init, cond, update, body } => {
                if let Some(s) = init {
                    self.stmt(s)?;
                }
                loop {
                    self.tick(*pos)?;
                    if let Some((c, text)) = cond {
                        let v = self.expr(c)?;
                        match self.truth(&v.0, c.pos(), "the condition of `for`")? {
                            Some(true) => {}
                            Some(false) => break,
                            None => return Err(self.unknown(&v.1, c.pos(), *text)),
                        }
                    }
                    match self.block(body)? {
                        Flow::Break => break,
                        Flow::Return => return Ok(Flow::Return),
                        Flow::Next | Flow::Continue => {}
                    }
                    if let Some(s) = update {
                        self.stmt(s)?;
                    }
                }
            }
            Stmt::Return { pos, e, text } => {
                self.tick(*pos)?;
                let v = match e {
                    Some(e) => self.expr(e)?,
                    None => (Value::Null, src("return", *pos, "`return` without a value".to_string())),
                };
                self.ret = Some((v, *pos, *text));
                return Ok(Flow::Return);
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Next)
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

pub(crate) fn run(
    prog: &Program,
    ops: &dyn OperatorValues,
    funcs: &dyn Functions,
    limits: &Limits,
) -> Result<RunResult, RuntimeError> {
    let mut r = Run {
        prog,
        ops,
        funcs,
        limits,
        steps: limits.steps,
        vars: prog.vars.iter().map(|_| Slot { value: Value::Null, src: None, line: 0, set: false }).collect(),
        bare: prog.ops.iter().map(|_| None).collect(),
        at: prog.ops.iter().map(|_| None).collect(),
        trace: Trace::default(),
        ret: None,
        last: None,
    };
    let result = r.block(&prog.stmts).and_then(|_| {
        let Some(((value, s), pos, text)) = r.ret.take().or_else(|| r.last.take()) else {
            return err(Pos { line: 1, column: 1 }, "the script ended without `return`");
        };
        r.trace.steps.push(Step::Return { line: pos.line, column: pos.column, value: value.abbreviated() });
        match value {
            Value::Bool(true) => Ok(Outcome::True),
            Value::Bool(false) => Ok(Outcome::False),
            Value::Null => Err(r.unknown(&s, pos, text)),
            other => err(pos, format!("the script returned {}, expected true or false", other.kind())),
        }
    });
    match result {
        Ok(outcome) => Ok(RunResult { outcome, trace: r.trace }),
        Err(Halt::Unknown(why)) => Ok(RunResult { outcome: Outcome::Unknown { why }, trace: r.trace }),
        Err(Halt::Error(pos, message)) => {
            Err(RuntimeError { line: pos.line, column: pos.column, message, trace: r.trace })
        }
    }
}
