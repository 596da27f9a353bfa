//! The two rules as one Extism plugin (`extism-plugin/`), JSON bytes in and
//! out, used the way Extism's documentation shows: compile the plugin once,
//! create a `Plugin` and call it again and again. The input is the session
//! document (the host's own serde form) and the resolved parameters.
//!
//! For the comparison with callqa's fresh instances the benchmark also
//! measures a new `Plugin` per evaluation from the `CompiledPlugin`.

use callqa::rules::Verdict;
use callqa::session::Session;
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde::{Deserialize, Serialize};

use crate::{Rule, RuleFailure};

/// The plugin, built for wasm32-unknown-unknown by `build.rs`.
pub const PLUGIN_WASM: &[u8] = include_bytes!(env!("EXTISM_PLUGIN_WASM"));

#[derive(Serialize)]
struct Input<'a> {
    session: &'a Session,
    params: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Output {
    Verdict(Verdict),
    BadParams(String),
    Failed(String),
}

/// Compile the plugin (no WASI: the plugin needs none).
pub fn compile() -> anyhow::Result<CompiledPlugin> {
    let manifest = Manifest::new([Wasm::data(PLUGIN_WASM)]);
    PluginBuilder::new(manifest).with_wasi(false).compile()
}

pub fn instantiate(compiled: &CompiledPlugin) -> anyhow::Result<Plugin> {
    Plugin::new_from_compiled(compiled)
}

/// Serialise the input, call the rule's function, parse the output.
pub fn evaluate(
    plugin: &mut Plugin,
    rule: Rule,
    session: &Session,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Verdict, RuleFailure> {
    let function = match rule {
        Rule::ForbiddenPhrases => "forbidden_phrases",
        Rule::ChaseFollowUp => "chase_follow_up",
    };
    let input = serde_json::to_vec(&Input { session, params }).map_err(|e| RuleFailure::Failed(e.to_string()))?;
    let output: &[u8] = plugin.call(function, input).map_err(|e| RuleFailure::Failed(format!("{e:#}")))?;
    match serde_json::from_slice(output).map_err(|e| RuleFailure::Failed(format!("unreadable plugin output: {e}")))? {
        Output::Verdict(v) => Ok(v),
        Output::BadParams(m) => Err(RuleFailure::BadParams(m)),
        Output::Failed(m) => Err(RuleFailure::Failed(m)),
    }
}
