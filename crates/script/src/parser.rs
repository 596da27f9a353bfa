//! Tokens → syntax tree, then name resolution (variables, operators,
//! functions). Every recursion of the parser goes through [`Parser::enter`],
//! so nesting is bounded by [`MAX_DEPTH`] and a hostile script gets a load
//! error, not a stack overflow; the tree's height, and with it the
//! evaluator's recursion, is bounded by the same count.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::lexer::{Pos, Tok, Token, TokenStream};
use crate::value::Value;
use crate::{Functions, LoadError};

/// Deepest nesting the parser accepts: parentheses, blocks, lists, call
/// arguments, prefix operators and chains of binary operators all count.
pub const MAX_DEPTH: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Like,
}

#[derive(Clone, Debug)]
pub(crate) enum Res {
    Unresolved,
    Var(usize),
    Op(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum Func {
    Unresolved,
    MinutesBetween,
    Nearest,
    Len,
    External,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Lit(Value, Pos),
    Name { name: String, pos: Pos, res: Res },
    At { name: String, pos: Pos, op: usize },
    Not(Box<Expr>, Pos),
    Neg(Box<Expr>, Pos),
    And(Box<Expr>, Box<Expr>, Pos),
    Or(Box<Expr>, Box<Expr>, Pos),
    Binary { op: BinOp, sym: &'static str, l: Box<Expr>, r: Box<Expr>, pos: Pos },
    Ternary { c: Box<Expr>, t: Box<Expr>, f: Box<Expr>, pos: Pos, text: (usize, usize) },
    Call { name: String, pos: Pos, func: Func, args: Vec<Expr>, texts: Vec<(usize, usize)> },
    List(Vec<Expr>, Pos),
    Index(Box<Expr>, Box<Expr>, Pos),
}

impl Expr {
    pub(crate) fn pos(&self) -> Pos {
        match self {
            Expr::Lit(_, pos)
            | Expr::Name { pos, .. }
            | Expr::At { pos, .. }
            | Expr::Not(_, pos)
            | Expr::Neg(_, pos)
            | Expr::And(_, _, pos)
            | Expr::Or(_, _, pos)
            | Expr::Binary { pos, .. }
            | Expr::Ternary { pos, .. }
            | Expr::Call { pos, .. }
            | Expr::List(_, pos)
            | Expr::Index(_, _, pos) => *pos,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AssignOp {
    Set,
    Add,
    Sub,
}

#[derive(Debug)]
pub(crate) struct Arm {
    pub cond: Expr,
    pub pos: Pos,
    pub text: (usize, usize),
    pub body: Vec<Stmt>,
}

#[derive(Debug)]
pub(crate) enum Stmt {
    Expr {
        e: Expr,
        text: (usize, usize),
    },
    Assign {
        name: String,
        slot: usize,
        pos: Pos,
        op: AssignOp,
        e: Expr,
    },
    Step {
        name: String,
        slot: usize,
        pos: Pos,
        delta: i64,
    },
    If {
        arms: Vec<Arm>,
        els: Option<Vec<Stmt>>,
    },
    For {
        pos: Pos,
        init: Option<Box<Stmt>>,
        cond: Option<(Expr, (usize, usize))>,
        update: Option<Box<Stmt>>,
        body: Vec<Stmt>,
    },
    Return {
        pos: Pos,
        e: Option<Expr>,
        text: (usize, usize),
    },
    Break,
    Continue,
}

pub(crate) struct Parsed {
    pub stmts: Vec<Stmt>,
    /// Variable names, by slot.
    pub vars: Vec<String>,
    /// Operator names the script reads (without `@`), by index.
    pub ops: Vec<String>,
}

struct Parser<'a> {
    src: &'a str,
    configured: &'a [&'a str],
    /// Tokens lexed so far: the current one and one of lookahead at least.
    toks: Vec<Token>,
    stream: TokenStream<'a>,
    /// The lexer's error, when it met one: the tokens end there (with an
    /// `Eof`), and [`parse`] reports it unless the parser failed earlier.
    lex_error: Option<LoadError>,
    i: usize,
    depth: u32,
    loops: u32,
    vars: BTreeMap<String, usize>,
    var_names: Vec<String>,
}

fn describe(src: &str, t: &Token) -> String {
    if t.tok == Tok::Eof {
        return "the end of the script".to_string();
    }
    let text = &src[t.start..t.end];
    let mut short: String = text.chars().take(24).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("`{short}`")
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    /// Consumes the current token and returns it. Its `tok` is moved out
    /// (nothing looks back at a consumed token's kind, only at its end).
    fn bump(&mut self) -> Token {
        let current = &mut self.toks[self.i];
        let t = Token { tok: core::mem::replace(&mut current.tok, Tok::Eof), ..*current };
        if t.tok == Tok::Eof {
            // The end stays the end for whoever peeks next.
            return t;
        }
        self.advance();
        t
    }

    /// Consumes the current token; returns where it was.
    fn advance(&mut self) -> Pos {
        let pos = self.toks[self.i].pos;
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        self.fill();
        pos
    }

    /// Lexes until the current token and the next are at hand (`peek_at(1)`
    /// is the furthest the grammar looks ahead).
    fn fill(&mut self) {
        while self.toks.len() < self.i + 2 && self.toks.last().is_none_or(|t| t.tok != Tok::Eof) {
            match self.stream.next() {
                Ok(token) => self.toks.push(token),
                Err(e) => {
                    let end = self.src.len();
                    self.toks.push(Token {
                        tok: Tok::Eof,
                        pos: Pos { line: e.line, column: e.column },
                        start: end,
                        end,
                    });
                    self.lex_error = Some(e);
                }
            }
        }
    }

    fn start(&self) -> usize {
        self.toks[self.i].start
    }

    /// End (byte) of the last token consumed.
    fn end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.toks[self.i - 1].end
        }
    }

    fn error(&self, expected: &str) -> LoadError {
        let t = &self.toks[self.i];
        LoadError::at(t.pos, format!("expected {expected}, found {}", describe(self.src, t)))
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<Token, LoadError> {
        if *self.peek() == tok {
            Ok(self.bump())
        } else {
            Err(self.error(expected))
        }
    }

    fn enter(&mut self) -> Result<(), LoadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LoadError::at(
                self.pos(),
                format!("the script nests deeper than {MAX_DEPTH} levels (parentheses, blocks, lists, operators)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self, n: u32) {
        self.depth -= n;
    }

    /// The slot of a variable assigned at `pos`. A configured operator's
    /// name cannot be one: the assignment would hide the operator from the
    /// whole script while `@name` still read it.
    fn var_slot(&mut self, name: &str, pos: Pos) -> Result<usize, LoadError> {
        if self.configured.contains(&name) {
            return Err(LoadError::at(
                pos,
                format!("`{name}` is a configured operator: assigning to it would hide the operator; use another name"),
            ));
        }
        if let Some(&slot) = self.vars.get(name) {
            return Ok(slot);
        }
        let slot = self.var_names.len();
        self.vars.insert(name.to_string(), slot);
        self.var_names.push(name.to_string());
        Ok(slot)
    }

    // ---- statements ----

    fn program(&mut self) -> Result<Vec<Stmt>, LoadError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Tok::Eof => return Ok(out),
                Tok::RBrace => return Err(self.error("a statement")),
                _ => {
                    if let Some(s) = self.statement()? {
                        out.push(s);
                    }
                }
            }
        }
    }

    fn block(&mut self, expected: &str) -> Result<Vec<Stmt>, LoadError> {
        let open = self.pos();
        self.expect(Tok::LBrace, expected)?;
        self.enter()?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Tok::RBrace => {
                    self.advance();
                    self.leave(1);
                    return Ok(out);
                }
                Tok::Eof => {
                    return Err(self.error(&format!(
                        "`}}` to close the block opened at line {}, column {}",
                        open.line, open.column
                    )))
                }
                _ => {
                    if let Some(s) = self.statement()? {
                        out.push(s);
                    }
                }
            }
        }
    }

    /// After a simple statement: `;`, or the end of the block or script.
    fn end_simple(&mut self) -> Result<(), LoadError> {
        match self.peek() {
            Tok::Semi => {
                self.advance();
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            _ => Err(self.error("`;` after the statement")),
        }
    }

    fn statement(&mut self) -> Result<Option<Stmt>, LoadError> {
        let stmt = match self.peek() {
            Tok::Semi => {
                self.advance();
                return Ok(None);
            }
            Tok::If => return self.if_statement().map(Some),
            Tok::For => return self.for_statement().map(Some),
            Tok::Else => return Err(self.error("a statement (this `else` follows no `if` block)")),
            Tok::Return => {
                let pos = self.advance();
                let start = self.start();
                let e = match self.peek() {
                    Tok::Semi | Tok::RBrace | Tok::Eof => None,
                    _ => Some(self.expr()?),
                };
                Stmt::Return { pos, e, text: (start, self.end().max(start)) }
            }
            Tok::Break | Tok::Continue => {
                let brk = *self.peek() == Tok::Break;
                if self.loops == 0 {
                    let word = if brk { "break" } else { "continue" };
                    return Err(LoadError::at(self.pos(), format!("`{word}` outside a `for` loop")));
                }
                self.advance();
                if brk {
                    Stmt::Break
                } else {
                    Stmt::Continue
                }
            }
            _ => self.simple()?,
        };
        self.end_simple()?;
        Ok(Some(stmt))
    }

    /// An assignment, `x++`/`x--`, or an expression (no terminator).
    fn simple(&mut self) -> Result<Stmt, LoadError> {
        if let Tok::Ident(name) = self.peek().clone() {
            let op = match self.peek_at(1) {
                Tok::Assign => Some(AssignOp::Set),
                Tok::PlusAssign => Some(AssignOp::Add),
                Tok::MinusAssign => Some(AssignOp::Sub),
                Tok::PlusPlus | Tok::MinusMinus => {
                    let pos = self.advance();
                    let delta = if *self.peek() == Tok::PlusPlus { 1 } else { -1 };
                    self.advance();
                    let slot = self.var_slot(&name, pos)?;
                    return Ok(Stmt::Step { name, slot, pos, delta });
                }
                _ => None,
            };
            if let Some(op) = op {
                let pos = self.advance();
                self.advance();
                let e = self.expr()?;
                let slot = self.var_slot(&name, pos)?;
                return Ok(Stmt::Assign { name, slot, pos, op, e });
            }
        }
        let start = self.start();
        let e = self.expr()?;
        if *self.peek() == Tok::Assign {
            return Err(LoadError::at(self.pos(), "only a name can be assigned to (did you mean `==`?)"));
        }
        Ok(Stmt::Expr { e, text: (start, self.end()) })
    }

    fn if_statement(&mut self) -> Result<Stmt, LoadError> {
        let mut arms = Vec::new();
        let mut els = None;
        loop {
            let pos = self.advance(); // `if` / `如果`
            self.expect(Tok::LParen, "`(` after `if`")?;
            let start = self.start();
            let cond = self.expr()?;
            let text = (start, self.end());
            self.expect(Tok::RParen, "`)` after the condition")?;
            if *self.peek() == Tok::Then {
                self.advance();
            }
            let body = self.block("`{` to open the body of the `if`")?;
            arms.push(Arm { cond, pos, text, body });
            if *self.peek() != Tok::Else {
                break;
            }
            self.advance();
            if *self.peek() == Tok::If {
                continue;
            }
            els = Some(self.block("`{` or `if` after `else`")?);
            break;
        }
        Ok(Stmt::If { arms, els })
    }

    fn for_statement(&mut self) -> Result<Stmt, LoadError> {
        let pos = self.advance();
        self.expect(Tok::LParen, "`(` after `for`")?;
        let init = if *self.peek() == Tok::Semi { None } else { Some(Box::new(self.simple()?)) };
        self.expect(Tok::Semi, "`;` after the loop's start")?;
        let cond = if *self.peek() == Tok::Semi {
            None
        } else {
            let start = self.start();
            let e = self.expr()?;
            Some((e, (start, self.end())))
        };
        self.expect(Tok::Semi, "`;` after the loop's condition")?;
        let update = if *self.peek() == Tok::RParen { None } else { Some(Box::new(self.simple()?)) };
        self.expect(Tok::RParen, "`)` after the loop's step")?;
        self.loops += 1;
        let body = self.block("`{` to open the body of the `for`")?;
        self.loops -= 1;
        Ok(Stmt::For { pos, init, cond, update, body })
    }

    // ---- expressions ----

    pub(crate) fn expr(&mut self) -> Result<Expr, LoadError> {
        self.enter()?;
        let e = self.ternary();
        self.leave(1);
        e
    }

    fn ternary(&mut self) -> Result<Expr, LoadError> {
        let start = self.start();
        let c = self.or()?;
        if *self.peek() != Tok::Question {
            return Ok(c);
        }
        let text = (start, self.end());
        let pos = self.advance();
        let t = self.expr()?;
        self.expect(Tok::Colon, "`:` in `condition ? then : else`")?;
        let f = self.expr()?;
        Ok(Expr::Ternary { c: Box::new(c), t: Box::new(t), f: Box::new(f), pos, text })
    }

    fn or(&mut self) -> Result<Expr, LoadError> {
        let mut l = self.and()?;
        let mut n = 0;
        while matches!(self.peek(), Tok::OrOr | Tok::Or) {
            let pos = self.advance();
            self.enter()?;
            n += 1;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r), pos);
        }
        self.leave(n);
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, LoadError> {
        let mut l = self.equality()?;
        let mut n = 0;
        while matches!(self.peek(), Tok::AndAnd | Tok::And) {
            let pos = self.advance();
            self.enter()?;
            n += 1;
            let r = self.equality()?;
            l = Expr::And(Box::new(l), Box::new(r), pos);
        }
        self.leave(n);
        Ok(l)
    }

    fn binary_loop(
        &mut self,
        next: fn(&mut Self) -> Result<Expr, LoadError>,
        op_of: fn(&Tok) -> Option<(BinOp, &'static str)>,
    ) -> Result<Expr, LoadError> {
        let mut l = next(self)?;
        let mut n = 0;
        while let Some((op, sym)) = op_of(self.peek()) {
            let pos = self.advance();
            self.enter()?;
            n += 1;
            let r = next(self)?;
            l = Expr::Binary { op, sym, l: Box::new(l), r: Box::new(r), pos };
        }
        self.leave(n);
        Ok(l)
    }

    fn equality(&mut self) -> Result<Expr, LoadError> {
        self.binary_loop(Self::relational, |t| match t {
            Tok::EqEq => Some((BinOp::Eq, "==")),
            Tok::NotEq => Some((BinOp::Ne, "!=")),
            _ => None,
        })
    }

    fn relational(&mut self) -> Result<Expr, LoadError> {
        self.binary_loop(Self::additive, |t| match t {
            Tok::Lt => Some((BinOp::Lt, "<")),
            Tok::Gt => Some((BinOp::Gt, ">")),
            Tok::Le => Some((BinOp::Le, "<=")),
            Tok::Ge => Some((BinOp::Ge, ">=")),
            Tok::In => Some((BinOp::In, "in")),
            Tok::Like => Some((BinOp::Like, "like")),
            _ => None,
        })
    }

    fn additive(&mut self) -> Result<Expr, LoadError> {
        self.binary_loop(Self::multiplicative, |t| match t {
            Tok::Plus => Some((BinOp::Add, "+")),
            Tok::Minus => Some((BinOp::Sub, "-")),
            _ => None,
        })
    }

    fn multiplicative(&mut self) -> Result<Expr, LoadError> {
        self.binary_loop(Self::unary, |t| match t {
            Tok::Star => Some((BinOp::Mul, "*")),
            Tok::Slash => Some((BinOp::Div, "/")),
            Tok::Percent => Some((BinOp::Rem, "%")),
            Tok::Mod => Some((BinOp::Rem, "mod")),
            _ => None,
        })
    }

    fn unary(&mut self) -> Result<Expr, LoadError> {
        match self.peek() {
            Tok::Bang | Tok::Not | Tok::Minus | Tok::Plus => {
                let t = self.bump();
                self.enter()?;
                let e = self.unary();
                self.leave(1);
                let e = e?;
                Ok(match t.tok {
                    Tok::Minus => Expr::Neg(Box::new(e), t.pos),
                    Tok::Plus => e,
                    _ => Expr::Not(Box::new(e), t.pos),
                })
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, LoadError> {
        let mut e = self.primary()?;
        let mut n = 0;
        while *self.peek() == Tok::LBracket {
            let pos = self.advance();
            self.enter()?;
            n += 1;
            let i = self.expr()?;
            self.expect(Tok::RBracket, "`]` after the index")?;
            e = Expr::Index(Box::new(e), Box::new(i), pos);
        }
        self.leave(n);
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, LoadError> {
        let pos = self.pos();
        let e = match self.peek().clone() {
            Tok::Int(i) => Expr::Lit(Value::Int(i), pos),
            Tok::Float(f) => Expr::Lit(Value::Float(f), pos),
            Tok::Str(s) => Expr::Lit(Value::Str(s), pos),
            Tok::True => Expr::Lit(Value::Bool(true), pos),
            Tok::False => Expr::Lit(Value::Bool(false), pos),
            Tok::Null => Expr::Lit(Value::Null, pos),
            Tok::At(name) => Expr::At { name, pos, op: usize::MAX },
            Tok::Ident(name) => {
                self.advance();
                if *self.peek() != Tok::LParen {
                    return Ok(Expr::Name { name, pos, res: Res::Unresolved });
                }
                self.advance();
                let mut args = Vec::new();
                let mut texts = Vec::new();
                if *self.peek() != Tok::RParen {
                    loop {
                        let start = self.start();
                        args.push(self.expr()?);
                        texts.push((start, self.end()));
                        match self.peek() {
                            Tok::Comma => {
                                self.advance();
                            }
                            Tok::RParen => break,
                            _ => {
                                return Err(self.error(&format!("`,` or `)` in the arguments of `{name}`")));
                            }
                        }
                    }
                }
                self.advance();
                return Ok(Expr::Call { name, pos, func: Func::Unresolved, args, texts });
            }
            Tok::LParen => {
                self.advance();
                let e = self.expr()?;
                if *self.peek() != Tok::RParen {
                    return Err(
                        self.error(&format!("`)` to close the `(` at line {}, column {}", pos.line, pos.column))
                    );
                }
                e
            }
            Tok::LBracket => {
                self.advance();
                self.enter()?;
                let mut items = Vec::new();
                while *self.peek() != Tok::RBracket {
                    items.push(self.expr()?);
                    match self.peek() {
                        Tok::Comma => {
                            self.advance();
                        }
                        Tok::RBracket => {}
                        _ => return Err(self.error("`,` or `]` in the list")),
                    }
                }
                self.leave(1);
                Expr::List(items, pos)
            }
            _ => return Err(self.error("an expression")),
        };
        self.advance();
        Ok(e)
    }
}

// ---- resolution ----

struct Resolver<'a> {
    vars: &'a BTreeMap<String, usize>,
    configured: &'a [&'a str],
    functions: &'a dyn Functions,
    ops: Vec<String>,
}

impl Resolver<'_> {
    fn op_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.ops.iter().position(|o| o == name) {
            return i;
        }
        self.ops.push(name.to_string());
        self.ops.len() - 1
    }

    fn stmts(&mut self, stmts: &mut [Stmt]) -> Result<(), LoadError> {
        stmts.iter_mut().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, s: &mut Stmt) -> Result<(), LoadError> {
        match s {
            Stmt::Expr { e, .. } | Stmt::Assign { e, .. } => self.expr(e),
            Stmt::Return { e, .. } => e.as_mut().map_or(Ok(()), |e| self.expr(e)),
            Stmt::Step { .. } | Stmt::Break | Stmt::Continue => Ok(()),
            Stmt::If { arms, els } => {
                for arm in arms {
                    self.expr(&mut arm.cond)?;
                    self.stmts(&mut arm.body)?;
                }
                els.as_mut().map_or(Ok(()), |b| self.stmts(b))
            }
            Stmt::For { init, cond, update, body, .. } => {
                if let Some(s) = init {
                    self.stmt(s)?;
                }
                if let Some((e, _)) = cond {
                    self.expr(e)?;
                }
                if let Some(s) = update {
                    self.stmt(s)?;
                }
                self.stmts(body)
            }
        }
    }

    fn expr(&mut self, e: &mut Expr) -> Result<(), LoadError> {
        match e {
            Expr::Lit(..) => Ok(()),
            Expr::Name { name, pos, res } => {
                if let Some(&slot) = self.vars.get(name.as_str()) {
                    *res = Res::Var(slot);
                } else if self.configured.contains(&name.as_str()) {
                    *res = Res::Op(self.op_index(name));
                } else {
                    return Err(LoadError::at(
                        *pos,
                        format!("`{name}` is neither assigned in the script nor a configured operator"),
                    ));
                }
                Ok(())
            }
            Expr::At { name, pos, op } => {
                if !self.configured.contains(&name.as_str()) {
                    let msg = if self.vars.contains_key(name.as_str()) {
                        format!("`@{name}`: `{name}` is a script variable, not a configured operator")
                    } else {
                        format!("`{name}` is neither assigned in the script nor a configured operator")
                    };
                    return Err(LoadError::at(*pos, msg));
                }
                *op = self.op_index(name);
                Ok(())
            }
            Expr::Not(e, _) | Expr::Neg(e, _) => self.expr(e),
            Expr::And(l, r, _) | Expr::Or(l, r, _) | Expr::Binary { l, r, .. } | Expr::Index(l, r, _) => {
                self.expr(l)?;
                self.expr(r)
            }
            Expr::Ternary { c, t, f, .. } => {
                self.expr(c)?;
                self.expr(t)?;
                self.expr(f)
            }
            Expr::List(items, _) => items.iter_mut().try_for_each(|e| self.expr(e)),
            Expr::Call { name, pos, func, args, .. } => {
                let (resolved, min, max) = match name.as_str() {
                    "分钟差" | "minutes_between" => (Func::MinutesBetween, 2, 2),
                    "距离最近时间" | "nearest" => (Func::Nearest, 3, 3),
                    "len" => (Func::Len, 1, 1),
                    other => match self.functions.arity(other) {
                        Some(a) => (Func::External, a.min, a.max),
                        None => return Err(LoadError::at(*pos, format!("unknown function `{name}`"))),
                    },
                };
                let n = args.len();
                if n < min || n > max {
                    let want = if min == max {
                        format!("{min} argument{}", if min == 1 { "" } else { "s" })
                    } else if max == usize::MAX {
                        format!("at least {min} arguments")
                    } else {
                        format!("{min} to {max} arguments")
                    };
                    return Err(LoadError::at(*pos, format!("`{name}` takes {want}, found {n}")));
                }
                *func = resolved;
                args.iter_mut().try_for_each(|e| self.expr(e))
            }
        }
    }
}

pub(crate) fn parse(src: &str, configured: &[&str], functions: &dyn Functions) -> Result<Parsed, LoadError> {
    let mut p = Parser {
        src,
        configured,
        toks: Vec::new(),
        stream: TokenStream::new(src),
        lex_error: None,
        i: 0,
        depth: 0,
        loops: 0,
        vars: BTreeMap::new(),
        var_names: Vec::new(),
    };
    p.fill();
    let parsed = p.program();
    // A character the lexer refused ends the tokens there; the parser then
    // fails at that end, or earlier for a reason of its own.
    let mut stmts = match (parsed, p.lex_error.take()) {
        (Err(parse), Some(lex)) if (parse.line, parse.column) < (lex.line, lex.column) => return Err(parse),
        (_, Some(lex)) => return Err(lex),
        (parsed, None) => parsed?,
    };
    let mut r = Resolver { vars: &p.vars, configured, functions, ops: Vec::new() };
    r.stmts(&mut stmts)?;
    let ops = r.ops;
    Ok(Parsed { stmts, vars: p.var_names, ops })
}
