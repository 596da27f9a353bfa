//! The functions a script may call beyond the language's built-ins
//! (`分钟差`, `距离最近时间`, `len`): the text helpers rule authors already
//! have, run by the host as for compiled rules.

use alloc::string::String;
use alloc::vec::Vec;

use callqa_script::{Arity, Functions, Value};

pub struct ScriptFunctions;

impl Functions for ScriptFunctions {
    fn arity(&self, name: &str) -> Option<Arity> {
        match name {
            "contains_any" | "find_all" => Some(Arity::exactly(2)),
            _ => None,
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        match name {
            // contains_any(text, phrases): whether the text contains one of the phrases.
            "contains_any" => {
                let Some(text) = text(&args[0], 1)? else { return Ok(Value::Null) };
                let phrases = strings(&args[1], 2)?;
                Ok(Value::Bool(callqa_sdk::helpers::contains_any(&text, &phrases).is_some()))
            }
            // find_all(pattern, text): every match of the pattern in the text.
            "find_all" => {
                let Some(pattern) = text(&args[0], 1)? else { return Ok(Value::Null) };
                let Some(text) = text(&args[1], 2)? else { return Ok(Value::Null) };
                let found = callqa_sdk::helpers::find_all(&pattern, &text)
                    .map_err(|e| alloc::format!("argument 1 is not a valid pattern: {e}"))?;
                Ok(Value::List(found.into_iter().map(|m| Value::Str(m.text)).collect()))
            }
            _ => Err(alloc::format!("no function `{name}`")),
        }
    }
}

/// A string argument; `None` for null (which propagates).
fn text(v: &Value, n: usize) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Str(s) => Ok(Some(s.clone())),
        other => Err(alloc::format!("argument {n} is {}, expected a string", other.kind())),
    }
}

fn strings(v: &Value, n: usize) -> Result<Vec<String>, String> {
    match v {
        Value::Str(s) => Ok(alloc::vec![s.clone()]),
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Str(s) => Ok(s.clone()),
                other => Err(alloc::format!("argument {n} holds {}, expected a list of strings", other.kind())),
            })
            .collect(),
        other => Err(alloc::format!("argument {n} is {}, expected a list of strings", other.kind())),
    }
}
