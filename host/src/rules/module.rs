//! A compiled rule: the component, its SHA-256, its checked imports and its
//! self-description. Loading refuses anything that is not a well-formed
//! `callqa:rule` component, with a message that names the problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, Func, Resource, TypedFunc};
use wasmtime::{Engine, Store};

use super::bindings::guest::{self, Descriptor, RuleError};
use super::bindings::types::Value;
use super::bindings::QaRulePre;
use super::engine::{MemoryReset, RuleEngine};
use super::error_chain;
use super::host::session::SessionHandle;
use super::limits::Limits;
use super::params;
use super::store::StoreState;
use crate::session::Session;

/// The interfaces a rule may import. Everything else is refused at load.
/// WASI is here because language runtimes link against it; every WASI
/// interface is backed by the deny-by-default sandbox (`host::wasi`).
const ALLOWED_IMPORTS: &[(&str, &str)] = &[
    ("callqa:rule/types", "0.1."),
    ("callqa:rule/helpers", "0.1."),
    ("callqa:rule/log", "0.1."),
    ("callqa:rule/explain", "0.1."),
    ("wasi:cli/environment", "0.2."),
    ("wasi:cli/exit", "0.2."),
    ("wasi:cli/stdin", "0.2."),
    ("wasi:cli/stdout", "0.2."),
    ("wasi:cli/stderr", "0.2."),
    ("wasi:cli/terminal-input", "0.2."),
    ("wasi:cli/terminal-output", "0.2."),
    ("wasi:cli/terminal-stdin", "0.2."),
    ("wasi:cli/terminal-stdout", "0.2."),
    ("wasi:cli/terminal-stderr", "0.2."),
    ("wasi:clocks/wall-clock", "0.2."),
    ("wasi:clocks/monotonic-clock", "0.2."),
    ("wasi:filesystem/types", "0.2."),
    ("wasi:filesystem/preopens", "0.2."),
    ("wasi:io/error", "0.2."),
    ("wasi:io/poll", "0.2."),
    ("wasi:io/streams", "0.2."),
    ("wasi:random/random", "0.2."),
    ("wasi:random/insecure", "0.2."),
    ("wasi:random/insecure-seed", "0.2."),
    ("wasi:sockets/network", "0.2."),
    ("wasi:sockets/instance-network", "0.2."),
    ("wasi:sockets/tcp", "0.2."),
    ("wasi:sockets/tcp-create-socket", "0.2."),
    ("wasi:sockets/udp", "0.2."),
    ("wasi:sockets/udp-create-socket", "0.2."),
    ("wasi:sockets/ip-name-lookup", "0.2."),
];

/// The world a rule must implement (`wit/rule.wit`), for messages.
pub const WORLD: &str = "callqa:rule/qa-rule@0.1.0";

/// Why a module was refused. Each kind is a distinct problem for the author.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("cannot read the module: {0}")]
    Unreadable(String),
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    #[error("a core WebAssembly module, not a component: build for `wasm32-wasip2`, or wrap it with `wasm-tools component new`")]
    CoreModule,
    #[error("not a valid component (truncated or corrupt?): {0}")]
    Invalid(String),
    #[error("imports interfaces outside the allowlist: {}", .0.join(", "))]
    ForbiddenImports(Vec<String>),
    #[error("does not implement the `{WORLD}` world (its export `{RULE_EXPORT}`): {0}")]
    WrongWorld(String),
    #[error("`describe` failed: {0}")]
    DescribeFailed(String),
    #[error("`describe` returned an invalid schema: {0}")]
    BadSchema(String),
}

pub struct RuleModule {
    /// How the ruleset named it: `bundled:greeting` or a path.
    pub source: String,
    pub sha256: String,
    pub size: usize,
    pub descriptor: Descriptor,
    pub imports: Vec<String>,
    /// The module declares that it keeps no state between evaluations
    /// (`callqa:stateless` custom section), so a ruleset may ask for a warm
    /// instance reused across evaluations.
    pub stateless: bool,
    pub(crate) pre: QaRulePre<StoreState>,
    /// How its pooled memory is reset: the engine tier it was compiled for.
    pub reset: MemoryReset,
    /// The linear memory its core modules start with, in total.
    pub initial_memory: u64,
    engine: Engine,
    /// Where `evaluate` sits among the component's exports, found and
    /// type-checked once, when the module loads.
    evaluate: ComponentExportIndex,
}

/// The world's export that holds `describe` and `evaluate`.
const RULE_EXPORT: &str = "callqa:rule/rule@0.1.0";

impl RuleModule {
    /// Load `bundled:<name>`, or a path (relative ones against `base_dir`).
    pub fn load(engine: &RuleEngine, source: &str, base_dir: &Path) -> Result<Arc<Self>, ModuleError> {
        Self::load_on(engine, None, source, base_dir)
    }

    /// [`Self::load`], on the given tier instead of the one the rule's
    /// memory calls for: for benchmarks and tests that compare the two.
    #[doc(hidden)]
    pub fn load_on(
        engine: &RuleEngine,
        reset: Option<MemoryReset>,
        source: &str,
        base_dir: &Path,
    ) -> Result<Arc<Self>, ModuleError> {
        let bytes = match source.strip_prefix("bundled:") {
            Some(name) => super::bundled::get(name).map(<[u8]>::to_vec).ok_or_else(|| {
                let known: Vec<_> = super::bundled::names().collect();
                ModuleError::Unreadable(format!("no bundled rule `{name}` (bundled: {})", known.join(", ")))
            })?,
            None => {
                let path: PathBuf = base_dir.join(source);
                std::fs::read(&path).map_err(|e| ModuleError::Unreadable(format!("{}: {e}", path.display())))?
            }
        };
        Self::from_bytes_on(engine, reset, source, &bytes).map(Arc::new)
    }

    /// A store for one instance of this rule (on its engine tier), with the
    /// memory cap in force; fuel and deadline are armed by the caller.
    pub fn new_store(&self, state: StoreState) -> Store<StoreState> {
        new_store(&self.engine, state)
    }

    /// A fresh instance of the rule, ready to evaluate. bindgen's own
    /// `instantiate` type-checks every export again on every instance
    /// (about 3% of a fresh evaluation); the check made at load stands.
    pub fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Evaluate> {
        let instance = self.pre.instance_pre().instantiate(&mut *store)?;
        let func = instance
            .get_func(&mut *store, self.evaluate)
            .ok_or_else(|| wasmtime::format_err!("the rule's instance has no `{RULE_EXPORT}#evaluate` export"))?;
        Ok(Evaluate(func))
    }

    pub fn from_bytes(engine: &RuleEngine, source: &str, bytes: &[u8]) -> Result<Self, ModuleError> {
        Self::from_bytes_on(engine, None, source, bytes)
    }

    fn from_bytes_on(
        engine: &RuleEngine,
        reset: Option<MemoryReset>,
        source: &str,
        bytes: &[u8],
    ) -> Result<Self, ModuleError> {
        match bytes.get(0..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(ModuleError::CoreModule),
            Some([0, b'a', b's', b'm', ..]) => {}
            _ => return Err(ModuleError::NotWasm),
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        let facts = ComponentFacts::read(bytes);
        let tier = engine.tier(reset.unwrap_or_else(|| MemoryReset::for_memory(facts.initial_memory)));
        let component =
            tier.compile(bytes, &sha256, engine.cache_dir()).map_err(|e| ModuleError::Invalid(error_chain(&e)))?;

        let mut imports = Vec::new();
        let mut forbidden = Vec::new();
        for (name, item) in component.component_type().imports(&tier.engine) {
            let allowed = matches!(item.ty, ComponentItem::ComponentInstance(_)) && is_allowed(name);
            if !allowed {
                forbidden.push(name.to_owned());
            }
            imports.push(name.to_owned());
        }
        if !forbidden.is_empty() {
            return Err(ModuleError::ForbiddenImports(forbidden));
        }

        let instance_pre =
            tier.linker.instantiate_pre(&component).map_err(|e| ModuleError::WrongWorld(error_chain(&e)))?;
        // Type-checks the world's exports against the WIT, once.
        let pre = QaRulePre::new(instance_pre).map_err(|e| ModuleError::WrongWorld(error_chain(&e)))?;
        let evaluate = component
            .get_export_index(None, RULE_EXPORT)
            .and_then(|rule| component.get_export_index(Some(&rule), "evaluate"))
            .ok_or_else(|| ModuleError::WrongWorld(format!("no `{RULE_EXPORT}#evaluate` export")))?;
        let descriptor = describe(engine, &tier.engine, &pre)?;
        validate_schema(&descriptor)?;
        Ok(RuleModule {
            source: source.to_owned(),
            sha256,
            size: bytes.len(),
            descriptor,
            imports,
            stateless: facts.stateless,
            pre,
            reset: tier.reset,
            initial_memory: facts.initial_memory,
            engine: tier.engine.clone(),
            evaluate,
        })
    }
}

/// The `evaluate` export of one instance.
#[derive(Clone, Copy)]
pub struct Evaluate(Func);

impl Evaluate {
    /// Evaluate the session under the resolved parameters. The outer error
    /// is a trap; the inner one the rule's own refusal.
    pub fn call(
        &self,
        store: &mut Store<StoreState>,
        session: Resource<SessionHandle>,
        params: &[(String, Value)],
    ) -> wasmtime::Result<Result<guest::Verdict, RuleError>> {
        // SAFETY: the signature is the one bindgen generated from the WIT,
        // and `QaRulePre::new` checked the component's `evaluate` against it
        // when the module loaded; a compiled component's types do not change.
        let typed = unsafe {
            TypedFunc::<(Resource<SessionHandle>, &[(String, Value)]), (Result<guest::Verdict, RuleError>,)>::new_unchecked(self.0)
        };
        Ok(typed.call(&mut *store, (session, params))?.0)
    }
}

/// The custom section by which a module declares itself stateless; the SDK's
/// `export_rule!(MyRule, stateless)` emits it, other toolchains can add it
/// to any core module of the component (`wasm-tools metadata add` or their
/// own linker options). Its content is a version byte, 1.
pub const STATELESS_SECTION: &str = "callqa:stateless";

/// What loading needs to know from the component's bytes, read in one pass
/// over its section headers (nested modules included), so it costs
/// microseconds even for a large component.
struct ComponentFacts {
    /// A module carries the `callqa:stateless` section.
    stateless: bool,
    /// The initial size of every memory its core modules define, summed.
    initial_memory: u64,
}

impl ComponentFacts {
    /// Malformed bytes stop the reading where they start; compiling the
    /// component then reports them, with wasmtime's message.
    fn read(bytes: &[u8]) -> Self {
        let mut facts = ComponentFacts { stateless: false, initial_memory: 0 };
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else { break };
            match payload {
                wasmparser::Payload::CustomSection(section) => {
                    facts.stateless |= section.name() == STATELESS_SECTION && section.data().first() == Some(&1);
                }
                wasmparser::Payload::MemorySection(memories) => {
                    for memory in memories.into_iter().flatten() {
                        let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                        facts.initial_memory = facts.initial_memory.saturating_add(memory.initial.saturating_mul(page));
                    }
                }
                _ => {}
            }
        }
        facts
    }
}

fn is_allowed(name: &str) -> bool {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    ALLOWED_IMPORTS.iter().any(|(i, v)| *i == interface && version.starts_with(v))
}

fn new_store(engine: &Engine, state: StoreState) -> Store<StoreState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store
}

/// Ask the rule who it is, under the default limits.
fn describe(engine: &RuleEngine, wasmtime: &Engine, pre: &QaRulePre<StoreState>) -> Result<Descriptor, ModuleError> {
    let limits = Limits::default();
    let state = StoreState::new("describe".into(), Arc::new(Session::placeholder()), &limits, engine.patterns.clone());
    let mut store = new_store(wasmtime, state);
    if engine.metered {
        store.set_fuel(limits.fuel).map_err(|e| ModuleError::DescribeFailed(e.to_string()))?;
        store.set_epoch_deadline(limits.deadline_ticks());
    }
    let failed = |e: wasmtime::Error| ModuleError::DescribeFailed(error_chain(&e));
    let rule = pre.instantiate(&mut store).map_err(failed)?;
    rule.callqa_rule_rule().call_describe(&mut store).map_err(failed)
}

fn validate_schema(d: &Descriptor) -> Result<(), ModuleError> {
    let bad = |m: String| Err(ModuleError::BadSchema(m));
    if d.id.is_empty() || !d.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return bad(format!("id `{}` must be non-empty lower-case kebab-case", d.id));
    }
    if d.version.trim().is_empty() {
        return bad("version is empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    for p in &d.params {
        if p.name.is_empty() || !seen.insert(p.name.as_str()) {
            return bad(format!("parameter name `{}` is empty or declared twice", p.name));
        }
        if let Some(default) = &p.default {
            let json: serde_json::Value = serde_json::from_str(default).map_err(|e| {
                ModuleError::BadSchema(format!("parameter `{}`: default `{default}` is not JSON: {e}", p.name))
            })?;
            params::check_json(&json, p.kind)
                .map_err(|e| ModuleError::BadSchema(format!("parameter `{}`: default {e}", p.name)))?;
        }
    }
    Ok(())
}
