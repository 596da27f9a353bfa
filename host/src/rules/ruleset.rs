//! The ruleset file (TOML): which rules make up the QA sheet, where each
//! applies, its weight and its parameters. A ruleset is checked as a whole
//! at load: one bad rule refuses the file, with the rule, the parameter and
//! the problem named.
//!
//! ```toml
//! [limits]                       # optional, for every rule
//! fuel = 50_000_000
//!
//! [[rule]]
//! id = "greeting-hotline"        # the item id on the sheet; unique
//! module = "bundled:greeting"    # or a .wasm path, relative to this file
//! weight = 2.0                   # default 1.0
//! channels = ["voice"]           # default: every channel
//! queues = ["Hotline*"]          # globs on the queue name; default: any
//! scenarios = ["hotline"]        # default: any
//! [rule.params]
//! within-seconds = 8
//! [rule.limits]                  # optional, this rule only
//! timeout-ms = 100
//! ```
//!
//! `[similarity]` chooses the provider of `similar` operators (n-grams by
//! default, or an embeddings endpoint; see [`crate::similarity`]).
//!
//! `instance = "warm"` (with `recycle-after = N`, default 1000) reuses one
//! instance across evaluations instead of a fresh one each time; only a
//! module that declares itself stateless may be run so, and a ruleset that
//! asks it of any other module is refused (see [`super::warm_instance`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::bindings::types::Value;
use super::engine::RuleEngine;
use super::evaluation::{self, Evaluation, EvaluationError};
use super::form::{Form, Grade, Section};
use super::health::RuleHealth;
use super::limits::Limits;
use super::module::RuleModule;
use super::params;
use super::program::{ProgramSource, SpannedTable, PROGRAM_PARAM};
use super::warm_instance::{WarmPool, DEFAULT_RECYCLE_AFTER};
use crate::alerts::Severity;
use crate::session::{Channel, Session};
use crate::similarity::{self, Similarity, SimilarityConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesetFile {
    #[serde(default)]
    limits: Option<toml::Table>,
    #[serde(default, rename = "section")]
    sections: Vec<Section>,
    #[serde(default, rename = "grade")]
    grades: Vec<Grade>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleConfig>,
    #[serde(default)]
    similarity: Option<SimilarityConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    id: String,
    module: String,
    #[serde(default = "default_weight")]
    weight: f64,
    /// The form's section this item belongs to (see [`super::form`]).
    section: Option<String>,
    /// A failed critical item sets the sheet's score to 0.
    #[serde(default)]
    critical: bool,
    /// Evaluated and stored, but left out of the score, the grade,
    /// completeness and alerts: a candidate watched before it is promoted.
    #[serde(default)]
    shadow: bool,
    /// The active rule a shadow rule would replace: each sheet then
    /// compares their outcomes (`serve`: `GET /v1/rules`, `/metrics`).
    shadows: Option<String>,
    /// `true` (a warning), `"warning"` or `"critical"`: a failed item is
    /// sent to the webhooks (`serve --webhooks`). Read as any value so a
    /// wrong one is named by [`Severity::of_rule_setting`].
    #[serde(default)]
    alert: Option<toml::Value>,
    channels: Option<Vec<Channel>>,
    queues: Option<Vec<String>>,
    scenarios: Option<Vec<String>>,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    limits: Option<toml::Table>,
    /// `None`: warm for a scripted item (its module caches the parsed
    /// script), fresh for any other.
    #[serde(default)]
    instance: Option<InstanceMode>,
    #[serde(rename = "recycle-after")]
    recycle_after: Option<u32>,
    /// A scripted item's operators and script (see [`super::program`]).
    #[serde(default)]
    operators: Option<BTreeMap<String, SpannedTable>>,
    #[serde(default)]
    script: Option<SpannedTable>,
}

/// How a rule's evaluations get their instance.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceMode {
    /// A fresh instance per evaluation: nothing carries over (the default).
    #[default]
    Fresh,
    /// One instance reused across evaluations; stateless modules only.
    Warm,
}

fn default_weight() -> f64 {
    1.0
}

/// One item of the QA sheet: a loaded module with its place and parameters.
pub struct RuleEntry {
    pub id: Arc<str>,
    pub module: Arc<RuleModule>,
    pub weight: f64,
    pub section: Option<Arc<str>>,
    pub critical: bool,
    /// Run in shadow: its items are on the sheet, marked, and never count.
    pub shadow: bool,
    /// The active rule this shadow rule is a candidate replacement for.
    pub shadows: Option<Arc<str>>,
    /// `Some`: a failed item of this rule is an alert of this severity.
    pub alert: Option<Severity>,
    pub params: Vec<(String, Value)>,
    /// The parameters as the ruleset gave them (a scripted item's
    /// `program` included): the base a golden case's `params` override.
    pub given: serde_json::Map<String, serde_json::Value>,
    pub limits: Limits,
    pub health: RuleHealth,
    /// `Some` when the ruleset asked for warm instances.
    pub warm: Option<WarmPool>,
    /// The ruleset's similarity provider, shared by its items.
    pub similarity: Option<Arc<Similarity>>,
    applies: Applicability,
}

struct Applicability {
    channels: Option<Vec<Channel>>,
    queues: Option<GlobSet>,
    scenarios: Option<Vec<String>>,
}

impl Applicability {
    fn matches(&self, session: &Session) -> bool {
        let c = &session.contact;
        self.channels.as_ref().is_none_or(|list| list.contains(&c.channel))
            && self.queues.as_ref().is_none_or(|set| c.queue.as_ref().is_some_and(|q| set.is_match(q)))
            && self.scenarios.as_ref().is_none_or(|list| c.scenario.as_ref().is_some_and(|s| list.contains(s)))
    }
}

impl RuleEntry {
    /// Whether this rule belongs on the session's sheet (channel, queue and
    /// scenario filters).
    pub fn applies_to(&self, session: &Session) -> bool {
        self.applies.matches(session)
    }

    /// Evaluate this rule on a session, in a fresh instance or a warm one as
    /// the ruleset says.
    pub fn evaluate(&self, engine: &RuleEngine, session: Arc<Session>) -> Evaluation {
        let (id, params, limits, similarity) = (self.id.clone(), &self.params, &self.limits, self.similarity.clone());
        match &self.warm {
            Some(pool) => pool.evaluate_with(engine, &self.module, id, session, params, limits, similarity),
            None => evaluation::evaluate_with(engine, &self.module, id, session, params, limits, similarity),
        }
    }
}

pub struct Ruleset {
    pub rules: Vec<RuleEntry>,
    /// SHA-256 of the ruleset's text and of each item's module, in order:
    /// what a stored sheet was evaluated under.
    pub version: String,
    /// Sections, critical items and grades (empty: the plain weighted mean).
    pub form: Form,
    /// `Some` when an item has a `similar` operator or the ruleset has a
    /// `[similarity]` table: the inspector embeds each session's segments
    /// with it before the rules run.
    pub similarity: Option<Arc<Similarity>>,
}

impl Ruleset {
    pub fn load(engine: &RuleEngine, path: &Path) -> anyhow::Result<Self> {
        Self::load_with(engine, path, None)
    }

    /// [`Self::load`], with the similarity provider of a ruleset that has no
    /// `[similarity]` table (`serve`'s config file).
    pub fn load_with(engine: &RuleEngine, path: &Path, similarity: Option<&SimilarityConfig>) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the ruleset {}", path.display()))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Self::parse_with(engine, &text, base_dir, similarity)
            .with_context(|| format!("ruleset {} refused", path.display()))
    }

    /// Parse and check a ruleset; module paths are relative to `base_dir`.
    pub fn parse(engine: &RuleEngine, text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        Self::parse_with(engine, text, base_dir, None)
    }

    /// [`Self::parse`], with a default for the `[similarity]` table.
    pub fn parse_with(
        engine: &RuleEngine,
        text: &str,
        base_dir: &Path,
        similarity: Option<&SimilarityConfig>,
    ) -> anyhow::Result<Self> {
        let file: RulesetFile = toml::from_str(text).context("not a valid ruleset file")?;
        if file.rules.is_empty() {
            bail!("the ruleset has no [[rule]] entries");
        }
        let form = Form::new(file.sections, file.grades)?;
        check_shadows(&file.rules)?;
        let similarity = ruleset_similarity(file.similarity.as_ref().or(similarity), &file.rules)?;
        let mut modules: HashMap<String, Arc<RuleModule>> = HashMap::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for config in file.rules {
            let id = config.id.clone();
            if rules.iter().any(|r: &RuleEntry| *r.id == *id) {
                bail!("rule `{id}` is declared twice; ids must be unique on a sheet");
            }
            form.check_section(config.section.as_deref()).with_context(|| format!("rule `{id}`"))?;
            let entry =
                build_entry(engine, config, file.limits.as_ref(), base_dir, text, &mut modules, similarity.clone())
                    .with_context(|| format!("rule `{id}`"))?;
            rules.push(entry);
        }
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        for rule in &rules {
            hash.update(rule.module.sha256.as_bytes());
        }
        Ok(Ruleset { rules, form, version: hex::encode(hash.finalize()), similarity })
    }
}

/// The provider `[similarity]` names (n-grams when none is named), fitted on
/// every `similar` operator's examples; `None` when nothing needs one.
fn ruleset_similarity(
    config: Option<&SimilarityConfig>,
    rules: &[RuleConfig],
) -> anyhow::Result<Option<Arc<Similarity>>> {
    let tables: Vec<toml::Table> = rules
        .iter()
        .flat_map(|r| r.operators.iter().flat_map(|ops| ops.values()))
        .map(|op| op.iter().map(|(k, v)| (k.clone(), v.get_ref().clone())).collect())
        .collect();
    let examples = similarity::examples_of(&tables.iter().collect::<Vec<_>>());
    if config.is_none() && examples.is_empty() {
        return Ok(None);
    }
    let config = config.cloned().unwrap_or_default();
    Ok(Some(Arc::new(Similarity::new(&config, &examples)?)))
}

fn build_entry(
    engine: &RuleEngine,
    config: RuleConfig,
    shared_limits: Option<&toml::Table>,
    base_dir: &Path,
    ruleset_text: &str,
    modules: &mut HashMap<String, Arc<RuleModule>>,
    similarity: Option<Arc<Similarity>>,
) -> anyhow::Result<RuleEntry> {
    if !(config.weight.is_finite() && config.weight >= 0.0) {
        bail!("weight {} must be a non-negative number", config.weight);
    }
    let module = match modules.get(&config.module) {
        Some(m) => m.clone(),
        None => {
            let m = RuleModule::load(engine, &config.module, base_dir)
                .with_context(|| format!("module `{}` refused", config.module))?;
            modules.insert(config.module.clone(), m.clone());
            m
        }
    };
    let given = serde_json::to_value(&config.params)?;
    let mut given = given.as_object().cloned().unwrap_or_default();
    let program = ProgramSource { operators: config.operators, script: config.script };
    let scripted = module.descriptor.params.iter().any(|p| p.name == PROGRAM_PARAM);
    match (scripted, program.is_empty()) {
        (false, false) => bail!(
            "[rule.operators] and [rule.script] need a module that runs scripts (module = \"bundled:script\"); \
             module `{}` takes no `{PROGRAM_PARAM}`",
            config.module
        ),
        (true, true) if !given.contains_key(PROGRAM_PARAM) => bail!(
            "a scripted item needs its script: add [rule.script] with `text`, and its operators as [rule.operators.NAME]"
        ),
        (true, false) if given.contains_key(PROGRAM_PARAM) => {
            bail!("give the program once: as [rule.operators] and [rule.script], or as the parameter `{PROGRAM_PARAM}`")
        }
        (true, false) => {
            given.insert(PROGRAM_PARAM.into(), serde_json::Value::String(program.encode()?));
        }
        _ => {}
    }
    let params = params::resolve(&module.descriptor.params, &given).map_err(anyhow::Error::msg)?;
    let limits = merge_limits(shared_limits, config.limits.as_ref())?;
    let instance =
        config.instance.unwrap_or(if scripted && module.stateless { InstanceMode::Warm } else { InstanceMode::Fresh });
    let warm = match (instance, config.recycle_after) {
        (InstanceMode::Fresh, Some(_)) => bail!("`recycle-after` applies to warm instances only: add `instance = \"warm\"` or remove it"),
        (InstanceMode::Fresh, None) => None,
        (InstanceMode::Warm, _) if !module.stateless => bail!(
            "`instance = \"warm\"` reuses one instance across sessions, but module `{}` does not declare itself stateless \
             (a Rust rule declares it with `export_rule!(MyRule, stateless)`; other components with a `{}` custom section); \
             remove `instance` to give it a fresh instance per evaluation",
            config.module,
            super::module::STATELESS_SECTION
        ),
        (InstanceMode::Warm, Some(0)) => bail!("`recycle-after` must be at least 1"),
        (InstanceMode::Warm, n) => Some(WarmPool::new(n.unwrap_or(DEFAULT_RECYCLE_AFTER))),
    };
    let queues = match config.queues {
        Some(globs) => {
            let mut set = GlobSetBuilder::new();
            for g in &globs {
                set.add(Glob::new(g).with_context(|| format!("queue pattern `{g}`"))?);
            }
            Some(set.build()?)
        }
        None => None,
    };
    let entry = RuleEntry {
        id: config.id.into(),
        module,
        weight: config.weight,
        section: config.section.map(Into::into),
        critical: config.critical,
        shadow: config.shadow,
        shadows: config.shadows.map(Into::into),
        alert: config.alert.as_ref().map(Severity::of_rule_setting).transpose()?.flatten(),
        params,
        given,
        limits,
        health: RuleHealth::default(),
        warm,
        similarity,
        applies: Applicability { channels: config.channels, queues, scenarios: config.scenarios },
    };
    if scripted {
        // The rule checks its program before it reads the session: one
        // evaluation on an empty session finds every load error (and leaves
        // a warm instance with the script compiled).
        let check = entry.evaluate(engine, Arc::new(Session::placeholder()));
        match check.result {
            Err(EvaluationError::BadParams(message)) => bail!("{}", program.locate(ruleset_text, &message)),
            // Fuel is deterministic: a script that cannot finish on an empty
            // session (a loop that reads no data) fails on every session.
            Err(e @ EvaluationError::FuelExhausted { .. }) => {
                bail!("on an empty session at load, the item {e}: a loop that does not end?")
            }
            _ => {}
        }
    }
    Ok(entry)
}

/// `shadows` names an active rule of this ruleset, and only a shadow rule
/// says it: checked before any module is loaded.
fn check_shadows(rules: &[RuleConfig]) -> anyhow::Result<()> {
    for rule in rules {
        let Some(target) = &rule.shadows else { continue };
        let id = &rule.id;
        if !rule.shadow {
            bail!(
                "rule `{id}`: `shadows = \"{target}\"` is for a shadow rule; add `shadow = true` to run it beside \
                 `{target}` without counting, or remove `shadows`"
            );
        }
        match rules.iter().find(|r| r.id == *target) {
            None => {
                let active: Vec<&str> = rules.iter().filter(|r| !r.shadow).map(|r| r.id.as_str()).collect();
                bail!("rule `{id}`: `shadows = \"{target}\"` names no rule of this ruleset (active rules: {active:?})")
            }
            Some(other) if other.shadow => bail!(
                "rule `{id}`: `shadows = \"{target}\"` names a shadow rule; a shadow rule is compared with the active \
                 rule it would replace"
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Defaults, then the ruleset's `[limits]`, then the rule's own.
fn merge_limits(shared: Option<&toml::Table>, own: Option<&toml::Table>) -> anyhow::Result<Limits> {
    let mut table = toml::Table::try_from(Limits::default())?;
    for layer in [shared, own].into_iter().flatten() {
        for (k, v) in layer {
            if !table.contains_key(k) {
                let known: Vec<&String> = table.keys().collect();
                bail!("unknown limit `{k}` (known: {known:?})");
            }
            table.insert(k.clone(), v.clone());
        }
    }
    table.try_into().context("invalid limits")
}
