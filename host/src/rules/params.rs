//! Rule parameters: the ruleset's values checked against the rule's
//! `describe` schema, defaults applied, converted to WIT values.

use super::bindings::guest::{ParamKind, ParamSpec};
use super::bindings::types::Value;

/// Every declared parameter, from `given` or its default. The error names
/// the parameter and the problem.
pub fn resolve(
    specs: &[ParamSpec],
    given: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, Value)>, String> {
    for name in given.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("unknown parameter `{name}` (the rule declares: {})", known.join(", ")));
        }
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let json = match (given.get(&spec.name), &spec.default) {
            (Some(v), _) => v.clone(),
            (None, Some(default)) => serde_json::from_str(default)
                .map_err(|e| format!("parameter `{}`: the rule's default is not JSON: {e}", spec.name))?,
            (None, None) => {
                return Err(format!(
                    "parameter `{}` is required ({}): {}",
                    spec.name,
                    kind_name(spec.kind),
                    spec.description
                ))
            }
        };
        let value = check_json(&json, spec.kind).map_err(|e| format!("parameter `{}` {e}", spec.name))?;
        out.push((spec.name.clone(), value));
    }
    Ok(out)
}

/// The JSON value as the declared kind, or why it is not one.
pub fn check_json(json: &serde_json::Value, kind: ParamKind) -> Result<Value, String> {
    use serde_json::Value as J;
    let value = match (kind, json) {
        (ParamKind::Boolean, J::Bool(b)) => Some(Value::Boolean(*b)),
        (ParamKind::Integer, J::Number(n)) => n.as_i64().map(Value::Integer),
        (ParamKind::Number, J::Number(n)) => n.as_f64().map(Value::Number),
        (ParamKind::Text, J::String(s)) => Some(Value::Text(s.clone())),
        (ParamKind::TextList, J::Array(items)) => {
            items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().map(Value::TextList)
        }
        _ => None,
    };
    value.ok_or_else(|| format!("must be {}, got {json}", describe_kind(kind)))
}

fn describe_kind(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Boolean => "a boolean",
        ParamKind::Integer => "an integer",
        ParamKind::Number => "a number",
        ParamKind::Text => "a string",
        ParamKind::TextList => "a list of strings",
    }
}

/// A parameter kind as the WIT names it, for messages.
pub fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Boolean => "boolean",
        ParamKind::Integer => "integer",
        ParamKind::Number => "number",
        ParamKind::Text => "text",
        ParamKind::TextList => "text-list",
    }
}
