//! The rules: the loaded ruleset with each rule's state, release of a
//! quarantined rule, shadow rules and their agreement, the operators and
//! script of each scripted item, and a validate form that loads items the
//! way a reload would and shows a refusal at its line and column, with
//! nothing saved.

use std::path::Path as FilePath;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Visitor;
use crate::rules::Ruleset;
use crate::serve::app_state::AppState;
use crate::serve::role::Action;
use crate::serve::rules_routes;

/// The most text the validate form takes.
const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// The scripted items of the ruleset file, each as its own `[[rule]]` TOML.
fn scripted_items(path: &FilePath) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let Ok(file) = toml::from_str::<toml::Table>(&text) else { return Vec::new() };
    let Some(rules) = file.get("rule").and_then(|r| r.as_array()) else { return Vec::new() };
    rules
        .iter()
        .filter(|rule| rule.get("module").and_then(|m| m.as_str()) == Some("bundled:script"))
        .filter_map(|rule| {
            let id = rule.get("id").and_then(|i| i.as_str())?.to_owned();
            let mut one = toml::Table::new();
            one.insert("rule".into(), toml::Value::Array(vec![rule.clone()]));
            Some(json!({"id": id, "toml": toml::to_string(&one).ok()?}))
        })
        .collect()
}

fn page(
    app: &AppState,
    visitor: &Visitor,
    source: Option<String>,
    validation: Value,
    flash: Option<String>,
) -> Response {
    let scripted = scripted_items(app.rules.ruleset_path());
    let source = source.unwrap_or_else(|| scripted.first().and_then(|s| s["toml"].as_str()).unwrap_or("").to_owned());
    let lines: Vec<&str> = source.lines().collect();
    let can_manage = visitor.caller.as_ref().is_some_and(|c| c.role.permits(Action::ManageRules));
    let status = if validation.get("ok") == Some(&Value::Bool(false)) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    visitor.render(
        status,
        "rules.html",
        "rules",
        json!({
            "status": rules_routes::status(app),
            "scripted": scripted,
            "can_manage": can_manage,
            "source": source,
            "source_lines": lines,
            "validation": validation,
            "flash": flash,
        }),
    )
}

pub async fn show(State(app): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    if let Err(to_login) = visitor.signed_in(&uri) {
        return to_login;
    }
    page(&app, &visitor, None, Value::Null, None)
}

#[derive(Deserialize)]
pub struct ValidateForm {
    csrf: String,
    source: String,
}

/// The line and column a refusal names (`line 12, column 8: …`, or the
/// TOML parser's `… at line 3, column 5`).
fn position(message: &str) -> Option<(usize, usize)> {
    static AT: OnceLock<Regex> = OnceLock::new();
    let at = AT.get_or_init(|| Regex::new(r"line (\d+), column (\d+)").expect("a valid pattern"));
    let found = at.captures(message)?;
    Some((found[1].parse().ok()?, found[2].parse().ok()?))
}

/// Why `source` would be refused, or `None` when it loads. Only bundled
/// modules: a path would have the server read any file it can.
fn check(engine: &crate::rules::RuleEngine, source: &str) -> Option<String> {
    let table: toml::Table = match toml::from_str(source) {
        Ok(table) => table,
        Err(e) => return Some(format!("not a valid ruleset file: {e}")),
    };
    let rules = table.get("rule").and_then(|r| r.as_array()).map(Vec::as_slice).unwrap_or_default();
    for rule in rules {
        let module = rule.get("module").and_then(|m| m.as_str()).unwrap_or("");
        if !module.starts_with("bundled:") {
            return Some(format!(
                "rule `{}`: only bundled modules (`bundled:script`, …) are validated here, not `{module}`; \
                 validate a module file with `callqa validate`",
                rule.get("id").and_then(|i| i.as_str()).unwrap_or("?")
            ));
        }
    }
    Ruleset::parse(engine, source, FilePath::new(".")).err().map(|e| format!("{e:#}"))
}

pub async fn validate(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<ValidateForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    if let Err(refused) = visitor.may(&uri, &form.csrf, Action::ManageRules) {
        return refused;
    }
    if form.source.len() > MAX_SOURCE_BYTES {
        let message = format!("at most {MAX_SOURCE_BYTES} bytes are validated at once");
        return visitor.error(StatusCode::PAYLOAD_TOO_LARGE, &message, "/rules");
    }
    // Browsers send CRLF line ends from a textarea.
    let source = form.source.replace("\r\n", "\n");
    let engine = app.rules.engine().clone();
    let checked = source.clone();
    let refusal = match tokio::task::spawn_blocking(move || check(&engine, &checked)).await {
        Ok(refusal) => refusal,
        Err(e) => Some(format!("the check failed: {e}")),
    };
    let validation = match refusal {
        None => json!({"ok": true}),
        Some(message) => {
            let (line, column) = position(&message).unzip();
            json!({"ok": false, "message": message, "line": line, "column": column})
        }
    };
    page(&app, &visitor, Some(source), validation, None)
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    csrf: String,
}

pub async fn release(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    let visitor = Visitor::of(&app, &headers, &uri);
    if let Err(refused) = visitor.may(&uri, &form.csrf, Action::ManageRules) {
        return refused;
    }
    let outcome = rules_routes::release(State(app.clone()), Path(id)).await;
    visitor.finish(outcome, "/rules")
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_name_their_position() {
        assert_eq!(super::position("rule `x`: line 8, column 8 (script line 2, column 8): bad"), Some((8, 8)));
        assert_eq!(super::position("TOML parse error at line 3, column 5\n  |"), Some((3, 5)));
        assert_eq!(super::position("no position"), None);
    }
}
