//! `docs/openapi.json` against the router: every route the server serves
//! is documented with its method and the permission (`x-callqa-action`)
//! its route layer demands, and nothing documented is missing from it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common;

/// `ReadSheets` → `read-sheets`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// (method, path, action) of each method of each `.route(...)` in
/// router.rs's `build`.
fn routes() -> BTreeSet<(String, String, Option<String>)> {
    let text = std::fs::read_to_string(common::repo_root().join("host/src/serve/router.rs")).unwrap();
    // `build` ends where `overflow` (the over-capacity router) begins.
    let build = text.split("pub fn overflow").next().unwrap();
    let path = regex::Regex::new(r#"^\s*"([^"]+)""#).unwrap();
    let method = regex::Regex::new(r"\b(get|post|put|delete)\(").unwrap();
    let action = regex::Regex::new(r"needs\(Action::(\w+)\)").unwrap();
    build
        .split(".route(")
        .skip(1)
        .flat_map(|chunk| {
            let p =
                path.captures(chunk).unwrap_or_else(|| panic!("a route without a path literal: {chunk}"))[1].to_owned();
            let a = action.captures(chunk).map(|c| kebab(&c[1]));
            method.captures_iter(chunk).map(move |m| (m[1].to_owned(), p.clone(), a.clone())).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_openapi_document_matches_the_router() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("docs/openapi.json")).unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let action = operation["x-callqa-action"].as_str().map(str::to_owned);
            // Every operation says how it fails: the one error shape.
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.values().any(|r| r["$ref"] == "#/components/responses/Error"), "{method} {path}");
            documented.insert((method.clone(), path.clone(), action));
        }
    }
    let served = routes();
    assert!(served.len() > 20, "the router's routes were not found: {served:?}");
    let missing: Vec<_> = served.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/openapi.json and host/src/serve/router.rs disagree:\n  served, not documented (or with another action): {missing:?}\n  documented, not served: {stale:?}"
    );
}
