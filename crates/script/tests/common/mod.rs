//! Shared by the integration tests.
#![allow(dead_code)]

use callqa_script::{
    Arity, CompileOptions, Functions, Limits, LoadError, NoFunctions, Operators, Program, RunResult, RuntimeError,
    Value,
};

pub const SEED: &str = "上次催单=距离最近时间(@I,@A,false);
承诺催单=A && !E;
催单时间=距离最近时间(@B,@C,true);
创单时间=距离最近时间(@D,@C,true);
重启时间=距离最近时间(@F,@C,true);
备注时间=距离最近时间(@G,@C,true);
if(承诺催单){
if(分钟差(上次催单,@A)>10){
return (!B || (@J < 催单时间 && 分钟差(@J,催单时间)>10)) && !D && !F;
}else{
return (!G || (@J < 备注时间 && 分钟差(@J,备注时间)>10));
}
}
return false;
";

pub const SEED_OPERATORS: &[&str] = &["A", "B", "C", "D", "E", "F", "G", "I", "J"];

/// Test functions: `contains_any(text, list)`, `find_all(pattern, text)` (substring), `upper(s)`.
pub struct TestFunctions;

impl Functions for TestFunctions {
    fn arity(&self, name: &str) -> Option<Arity> {
        match name {
            "contains_any" | "find_all" => Some(Arity::exactly(2)),
            "upper" => Some(Arity { min: 1, max: 1 }),
            "concat" => Some(Arity { min: 0, max: usize::MAX }),
            _ => None,
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        match name {
            "contains_any" => {
                let Value::Str(text) = &args[0] else {
                    return Err(format!("argument 1 is {}, expected a string", args[0].kind()));
                };
                let Value::List(words) = &args[1] else {
                    return Err(format!("argument 2 is {}, expected a list of strings", args[1].kind()));
                };
                Ok(Value::Bool(words.iter().any(|w| matches!(w, Value::Str(w) if text.contains(w.as_str())))))
            }
            "find_all" => {
                let (Value::Str(p), Value::Str(t)) = (&args[0], &args[1]) else {
                    return Err("expected two strings".into());
                };
                Ok(Value::List(t.match_indices(p.as_str()).map(|(i, _)| Value::Int(i as i64)).collect()))
            }
            "upper" => match &args[0] {
                Value::Str(s) => Ok(Value::Str(s.to_uppercase())),
                Value::Null => Ok(Value::Null),
                other => Err(format!("argument 1 is {}, expected a string", other.kind())),
            },
            "concat" => Ok(Value::Str(
                args.iter().map(|a| if let Value::Str(s) = a { s.clone() } else { a.to_string() }).collect(),
            )),
            _ => Err("no such function".into()),
        }
    }
}

pub fn compile(text: &str, ops: &[&str]) -> Result<Program, LoadError> {
    Program::compile(text, &CompileOptions { operators: ops, functions: &TestFunctions })
}

pub fn load_error(text: &str, ops: &[&str]) -> String {
    compile(text, ops).expect_err("the script should not load").to_string()
}

pub fn run_with(text: &str, ops_names: &[&str], ops: &Operators) -> Result<RunResult, RuntimeError> {
    let program = compile(text, ops_names).unwrap_or_else(|e| panic!("{e}"));
    program.run(ops, &TestFunctions, &Limits::default())
}

/// Runs a script with no operators; returns the value it returned, as script text,
/// or `unknown: …` / `error: …`.
pub fn eval(text: &str) -> String {
    let program =
        match Program::compile(text, &CompileOptions { operators: &["A", "B", "N"], functions: &TestFunctions }) {
            Ok(p) => p,
            Err(e) => return format!("load error: {e}"),
        };
    let ops = Operators::new().hit("A", &[1000, 2000]).miss("B").set("N", Value::Null, Value::Null);
    match program.run(&ops, &TestFunctions, &Limits::default()) {
        Ok(r) => match r.outcome {
            callqa_script::Outcome::True => "true".into(),
            callqa_script::Outcome::False => "false".into(),
            callqa_script::Outcome::Unknown { why } => format!("unknown: {why}"),
        },
        Err(e) => format!("error: {e}"),
    }
}

pub fn no_functions() -> NoFunctions {
    NoFunctions
}
