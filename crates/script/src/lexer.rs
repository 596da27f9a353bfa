//! Source text → tokens. Lines and columns are 1-based and count Unicode
//! characters (a Chinese character is one column), as a rule author sees them.

use alloc::format;
use alloc::string::{String, ToString};

use crate::LoadError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// `@X`: the instants of operator X's hits.
    At(String),
    Int(i64),
    Float(f64),
    Str(String),
    If,
    /// `则`: optional after an `if` condition.
    Then,
    Else,
    Return,
    For,
    Break,
    Continue,
    True,
    False,
    Null,
    And,
    Or,
    Not,
    In,
    Like,
    Mod,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Question,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    AndAnd,
    OrOr,
    EqEq,
    NotEq,
    Lt,
    Gt,
    Le,
    Ge,
    Assign,
    PlusPlus,
    MinusMinus,
    PlusAssign,
    MinusAssign,
    Eof,
}

/// A position in the script: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Byte range in the source.
    pub start: usize,
    pub end: usize,
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "if" | "如果" => Tok::If,
        "则" => Tok::Then,
        "else" | "否则" => Tok::Else,
        "return" => Tok::Return,
        "for" => Tok::For,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "true" => Tok::True,
        "false" => Tok::False,
        "null" => Tok::Null,
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "like" => Tok::Like,
        "mod" => Tok::Mod,
        _ => return None,
    })
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    at: usize,
    line: u32,
    column: u32,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.at..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn skip_trivia(&mut self) -> Result<(), LoadError> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() || c == '\u{feff}' => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(LoadError::at(start, "comment not closed: expected `*/`")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn string(&mut self, quote: char, start: Pos) -> Result<Tok, LoadError> {
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => return Err(LoadError::at(start, format!("string not closed: expected a closing `{quote}`"))),
                Some(c) if c == quote => return Ok(Tok::Str(out)),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('0') => '\0',
                        Some('\\') => '\\',
                        Some('\'') => '\'',
                        Some('"') => '"',
                        Some('u') => {
                            let mut code = 0u32;
                            for _ in 0..4 {
                                let d = self.peek().and_then(|c| c.to_digit(16));
                                match d {
                                    Some(d) => {
                                        self.bump();
                                        code = code * 16 + d;
                                    }
                                    None => return Err(LoadError::at(pos, "expected four hex digits after `\\u`")),
                                }
                            }
                            match char::from_u32(code) {
                                Some(c) => c,
                                None => return Err(LoadError::at(pos, format!("`\\u{code:04x}` is not a character"))),
                            }
                        }
                        Some(other) => {
                            return Err(LoadError::at(pos, format!("unknown escape `\\{other}` in a string")));
                        }
                        None => {
                            return Err(LoadError::at(
                                start,
                                format!("string not closed: expected a closing `{quote}`"),
                            ))
                        }
                    };
                    out.push(c);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn number(&mut self, start: Pos, begin: usize) -> Result<Tok, LoadError> {
        while matches!(self.peek(), Some('0'..='9')) {
            self.bump();
        }
        let mut float = false;
        if self.peek() == Some('.') && matches!(self.peek2(), Some('0'..='9')) {
            float = true;
            self.bump();
            while matches!(self.peek(), Some('0'..='9')) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let mut it = self.src[self.at..].chars().skip(1);
            let next = it.next();
            let ok = match next {
                Some('0'..='9') => true,
                Some('+' | '-') => matches!(it.next(), Some('0'..='9')),
                _ => false,
            };
            if ok {
                float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                while matches!(self.peek(), Some('0'..='9')) {
                    self.bump();
                }
            }
        }
        let text = &self.src[begin..self.at];
        let tok = if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Tok::Float(f),
                _ => return Err(LoadError::at(start, format!("number `{text}` is out of range"))),
            }
        } else {
            match text.parse::<i64>() {
                Ok(i) => Tok::Int(i),
                Err(_) => return Err(LoadError::at(start, format!("number `{text}` is too large"))),
            }
        };
        // QLExpress (Java) accepts a `L` suffix on long literals.
        if !float && matches!(self.peek(), Some('L' | 'l')) && !self.peek2().is_some_and(is_ident_continue) {
            self.bump();
        }
        if self.peek().is_some_and(is_ident_start) {
            return Err(LoadError::at(
                self.pos(),
                format!("unexpected `{}` right after the number `{text}`", self.peek().unwrap_or(' ')),
            ));
        }
        Ok(tok)
    }

    fn next(&mut self) -> Result<Token, LoadError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let begin = self.at;
        let Some(c) = self.bump() else {
            return Ok(Token { tok: Tok::Eof, pos, start: begin, end: begin });
        };
        let two = |l: &mut Self, next: char, yes: Tok, no: Tok| {
            if l.peek() == Some(next) {
                l.bump();
                yes
            } else {
                no
            }
        };
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            ';' => Tok::Semi,
            '?' => Tok::Question,
            ':' => Tok::Colon,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '+' => match self.peek() {
                Some('+') => {
                    self.bump();
                    Tok::PlusPlus
                }
                Some('=') => {
                    self.bump();
                    Tok::PlusAssign
                }
                _ => Tok::Plus,
            },
            '-' => match self.peek() {
                Some('-') => {
                    self.bump();
                    Tok::MinusMinus
                }
                Some('=') => {
                    self.bump();
                    Tok::MinusAssign
                }
                _ => Tok::Minus,
            },
            '!' => two(self, '=', Tok::NotEq, Tok::Bang),
            '=' => two(self, '=', Tok::EqEq, Tok::Assign),
            '<' => match self.peek() {
                Some('=') => {
                    self.bump();
                    Tok::Le
                }
                Some('>') => {
                    self.bump();
                    Tok::NotEq
                }
                _ => Tok::Lt,
            },
            '>' => two(self, '=', Tok::Ge, Tok::Gt),
            '&' => {
                if self.peek() == Some('&') {
                    self.bump();
                    Tok::AndAnd
                } else {
                    return Err(LoadError::at(pos, "unexpected `&`: did you mean `&&`?"));
                }
            }
            '|' => {
                if self.peek() == Some('|') {
                    self.bump();
                    Tok::OrOr
                } else {
                    return Err(LoadError::at(pos, "unexpected `|`: did you mean `||`?"));
                }
            }
            '"' | '\'' => self.string(c, pos)?,
            '0'..='9' => self.number(pos, begin)?,
            '@' => {
                if !self.peek().is_some_and(is_ident_start) {
                    return Err(LoadError::at(pos, "expected an operator name after `@`"));
                }
                let from = self.at;
                while self.peek().is_some_and(is_ident_continue) {
                    self.bump();
                }
                Tok::At(self.src[from..self.at].to_string())
            }
            c if is_ident_start(c) => {
                while self.peek().is_some_and(is_ident_continue) {
                    self.bump();
                }
                let word = &self.src[begin..self.at];
                keyword(word).unwrap_or_else(|| Tok::Ident(word.to_string()))
            }
            other => return Err(LoadError::at(pos, format!("unexpected character `{other}`"))),
        };
        Ok(Token { tok, pos, start: begin, end: self.at })
    }
}

/// The script's tokens, produced as the parser asks for them, so a script
/// refused early (nested too deep at column 264) is never lexed to its end.
pub(crate) struct TokenStream<'a> {
    lexer: Lexer<'a>,
    /// The `if` half of a `否则如果` already returned as `else`.
    pending: Option<Token>,
}

impl<'a> TokenStream<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        TokenStream { lexer: Lexer { src, at: 0, line: 1, column: 1 }, pending: None }
    }

    /// The next token; `Tok::Eof` at the end (and after it).
    pub(crate) fn next(&mut self) -> Result<Token, LoadError> {
        if let Some(token) = self.pending.take() {
            return Ok(token);
        }
        let token = self.lexer.next()?;
        // `否则如果` written without a space: `else if`.
        if let Tok::Ident(word) = &token.tok {
            if word == "否则如果" {
                let mid = token.start + "否则".len();
                let if_pos = Pos { line: token.pos.line, column: token.pos.column + 2 };
                self.pending = Some(Token { tok: Tok::If, pos: if_pos, start: mid, end: token.end });
                return Ok(Token { tok: Tok::Else, pos: token.pos, start: token.start, end: mid });
            }
        }
        Ok(token)
    }
}
