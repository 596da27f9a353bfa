//! The ruleset in service, swapped whole on reload.
//!
//! A reload builds a complete new [`Ruleset`] beside the active one (each
//! module compiled, or taken from the on-disk cache, its imports checked,
//! `describe` called, the parameters checked against its schema), runs the
//! golden cases of the rules directory, and only then swaps it in with one
//! atomic pointer store. An evaluation holds an `Arc` of the version it
//! started with, so it finishes on that version whatever happens meanwhile.
//! A change that fails any check is refused: the active version keeps
//! serving and the refusal, with its reason, shows in `GET /v1/rules`.
//!
//! Golden cases: `<rules dir>/golden/<rule id>/*.json` (the format of
//! `callqa rule test`), run against that rule's module and limits with the
//! case's parameters over the module's defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::metrics::Metrics;
use crate::rules::golden::{load_cases, run_case_with};
use crate::rules::{RuleEngine, RuleHealth, Ruleset};
use crate::similarity::SimilarityConfig;

/// One version of the rules, as swapped in.
pub struct ActiveRuleset {
    pub ruleset: Arc<Ruleset>,
    /// 1 for the ruleset loaded at start, +1 per applied reload.
    pub generation: u64,
    pub loaded_at: DateTime<Utc>,
    /// SHA-256 over the ruleset file, the module files and golden cases it
    /// was built from: a reload that finds the same content does nothing.
    pub content: String,
    /// How many rules ran their golden cases, and how many cases.
    pub golden_cases: usize,
}

#[derive(Clone, Debug)]
pub struct Refusal {
    pub at: DateTime<Utc>,
    pub reason: String,
    /// The rule the refusal is about, when one can be named.
    pub rule: Option<String>,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied { generation: u64 },
    Unchanged,
    Refused { reason: String },
}

impl ReloadOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            ReloadOutcome::Applied { .. } => "applied",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Refused { .. } => "refused",
        }
    }
}

pub struct LiveRules {
    engine: Arc<RuleEngine>,
    ruleset_path: PathBuf,
    active: ArcSwap<ActiveRuleset>,
    refusal: Mutex<Option<Refusal>>,
    /// One reload at a time; compiling is the slow part and two at once
    /// would only race to the same result.
    reloading: Mutex<()>,
    metrics: Arc<Metrics>,
    /// The serve config's `[similarity]`, for rulesets that name none.
    similarity: Option<SimilarityConfig>,
}

impl LiveRules {
    /// Loads the ruleset at start. Unlike a reload, a failure here is
    /// fatal: there is no earlier version to keep serving.
    pub fn load(engine: Arc<RuleEngine>, ruleset_path: &Path, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        Self::load_with(engine, ruleset_path, metrics, None)
    }

    /// [`Self::load`], with the similarity provider of rulesets that name none.
    pub fn load_with(
        engine: Arc<RuleEngine>,
        ruleset_path: &Path,
        metrics: Arc<Metrics>,
        similarity: Option<SimilarityConfig>,
    ) -> anyhow::Result<Self> {
        let content = content_hash(ruleset_path);
        let (ruleset, golden_cases) = build(&engine, ruleset_path, None, similarity.as_ref()).map_err(|(_, e)| e)?;
        let active =
            ActiveRuleset { ruleset: Arc::new(ruleset), generation: 1, loaded_at: Utc::now(), content, golden_cases };
        metrics.start_generation(&active.ruleset, 1);
        Ok(LiveRules {
            engine,
            ruleset_path: ruleset_path.to_path_buf(),
            active: ArcSwap::from_pointee(active),
            refusal: Mutex::new(None),
            reloading: Mutex::new(()),
            metrics,
            similarity,
        })
    }

    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    /// The directory to watch.
    pub fn dir(&self) -> PathBuf {
        self.ruleset_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
    }

    /// The ruleset file this server loads.
    pub fn ruleset_path(&self) -> &Path {
        &self.ruleset_path
    }

    pub fn current(&self) -> Arc<ActiveRuleset> {
        self.active.load_full()
    }

    /// Rebuilds and swaps the ruleset when its content changed (always,
    /// with `force`). Blocking: compiles modules and runs golden cases.
    pub fn reload(&self, force: bool) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock();
        let started = std::time::Instant::now();
        let content = content_hash(&self.ruleset_path);
        let active = self.current();
        if !force {
            let refused_already = self.refusal.lock().as_ref().is_some_and(|r| r.content == content);
            if content == active.content || refused_already {
                return ReloadOutcome::Unchanged;
            }
        }
        let outcome = match build(&self.engine, &self.ruleset_path, Some(&active.ruleset), self.similarity.as_ref()) {
            Ok((ruleset, golden_cases)) => {
                let generation = active.generation + 1;
                // Quarantines seen so far belong to the outgoing generation.
                self.metrics.observe_quarantines(&active.ruleset, active.generation);
                self.metrics.start_generation(&ruleset, generation);
                self.active.store(Arc::new(ActiveRuleset {
                    ruleset: Arc::new(ruleset),
                    generation,
                    loaded_at: Utc::now(),
                    content,
                    golden_cases,
                }));
                *self.refusal.lock() = None;
                tracing::info!(generation, golden_cases, elapsed_ms = started.elapsed().as_millis() as u64, ruleset = %self.ruleset_path.display(), "rules reloaded");
                ReloadOutcome::Applied { generation }
            }
            Err((rule, error)) => {
                let reason = format!("{error:#}");
                tracing::error!(
                    rule = rule.as_deref().unwrap_or("-"),
                    "rule change refused, the previous version keeps serving: {reason}"
                );
                *self.refusal.lock() = Some(Refusal { at: Utc::now(), reason: reason.clone(), rule, content });
                ReloadOutcome::Refused { reason }
            }
        };
        self.metrics.record_reload(outcome.label());
        outcome
    }

    /// Ends a rule's quarantine; `None` when no active rule has that id.
    pub fn release(&self, id: &str) -> Option<bool> {
        let active = self.current();
        let rule = active.ruleset.rules.iter().find(|r| &*r.id == id)?;
        let released = rule.health.release();
        self.metrics.observe_quarantines(&active.ruleset, active.generation);
        Some(released)
    }

    /// The body of `GET /v1/rules`.
    /// Paths in what the API shows, relative to the rules directory: where
    /// the server keeps its files is nobody else's business.
    fn redact(&self, text: &str) -> String {
        let Some(dir) = self.ruleset_path.parent().filter(|d| !d.as_os_str().is_empty()) else {
            return text.to_string();
        };
        let dir = dir.display().to_string();
        text.replace(&format!("{dir}/"), "").replace(&dir, ".")
    }

    pub fn status(&self) -> Value {
        let active = self.current();
        self.metrics.observe_quarantines(&active.ruleset, active.generation);
        let refusal = self.refusal.lock().clone();
        let rules: Vec<Value> = active
            .ruleset
            .rules
            .iter()
            .map(|rule| {
                let counts = rule.health.counts();
                let refused = refusal.as_ref().filter(|r| r.rule.as_deref() == Some(&*rule.id));
                let state = if refused.is_some() {
                    "refused"
                } else if counts.quarantined.is_some() {
                    "quarantined"
                } else {
                    "active"
                };
                json!({
                    "id": &*rule.id,
                    "version": rule.module.descriptor.version,
                    "module": self.redact(&rule.module.source),
                    "module_sha256": rule.module.sha256,
                    "state": state,
                    "refused": refused.map(|r| json!({"reason": self.redact(&r.reason), "at": timestamp(r.at)})),
                    "quarantined": counts.quarantined.as_ref().map(|e| json!({"last_error": self.redact(e)})),
                    "counts": {
                        "evaluations": counts.evaluations,
                        "errors": counts.errors,
                        "budgets_exhausted": counts.budgets_exhausted,
                        "quarantines": counts.quarantines,
                    },
                })
            })
            .collect();
        json!({
            "ruleset": self.ruleset_path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "generation": active.generation,
            "loaded_at": timestamp(active.loaded_at),
            "golden_cases": active.golden_cases,
            "refusal": refusal.map(|r| json!({"at": timestamp(r.at), "rule": r.rule, "reason": self.redact(&r.reason)})),
            "rules": rules,
        })
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new ruleset with its golden cases passed; on failure, the rule at
/// fault (when known) and why. Health carries over for rules whose module
/// did not change, so a reload never ends a quarantine by itself.
fn build(
    engine: &RuleEngine,
    path: &Path,
    previous: Option<&Ruleset>,
    similarity: Option<&SimilarityConfig>,
) -> Result<(Ruleset, usize), (Option<String>, anyhow::Error)> {
    let mut ruleset = Ruleset::load_with(engine, path, similarity).map_err(|e| (rule_named_in(&e), e))?;
    let mut cases_run = 0;
    for entry in &ruleset.rules {
        let dir = crate::rules::golden::item_cases_dir(path, &entry.id);
        if !dir.is_dir() {
            continue;
        }
        let cases = load_cases(std::slice::from_ref(&dir))
            .map_err(|e| (Some(entry.id.to_string()), e.context(format!("rule `{}`: golden cases", entry.id))))?;
        for case in &cases {
            let result =
                run_case_with(engine, &entry.module, &entry.given, case, &entry.limits, entry.similarity.as_ref());
            if !result.passed() {
                let why = result.differences.join("; ");
                return Err((
                    Some(entry.id.to_string()),
                    anyhow::anyhow!(
                        "rule `{}`: golden case `{}` ({}) failed: {why}",
                        entry.id,
                        case.name,
                        case.file.display()
                    ),
                ));
            }
            cases_run += 1;
        }
    }
    if let Some(previous) = previous {
        for entry in &mut ruleset.rules {
            if let Some(old) =
                previous.rules.iter().find(|o| o.id == entry.id && o.module.sha256 == entry.module.sha256)
            {
                entry.health = RuleHealth::carried_over(&old.health);
            }
        }
    }
    Ok((ruleset, cases_run))
}

/// `Ruleset::parse` names the rule at fault in a context "rule `ID`".
fn rule_named_in(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("rule `")?;
        Some(rest.split('`').next()?.to_string())
    })
}

/// SHA-256 over what a ruleset is built from: the ruleset text, each
/// module file it names (relative to it), and the golden cases. Unreadable
/// parts hash as absent, so a file that appears later changes the hash.
pub fn content_hash(path: &Path) -> String {
    let mut hash = Sha256::new();
    let base = path.parent().unwrap_or(Path::new("."));
    let text = std::fs::read(path).unwrap_or_default();
    hash.update((text.len() as u64).to_le_bytes());
    hash.update(&text);
    if let Ok(table) = toml::from_str::<toml::Table>(&String::from_utf8_lossy(&text)) {
        let modules = table
            .get("rule")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("module")?.as_str());
        for module in modules {
            hash.update(module.as_bytes());
            if !module.starts_with("bundled:") {
                let bytes = std::fs::read(base.join(module)).unwrap_or_default();
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
        }
    }
    let golden = base.join("golden");
    if golden.is_dir() {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&golden)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        files.sort();
        for file in files {
            hash.update(file.to_string_lossy().as_bytes());
            let bytes = std::fs::read(&file).unwrap_or_default();
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
    }
    hex::encode(hash.finalize())
}

/// For callers that must not block the runtime.
pub async fn reload_in_background(live: Arc<LiveRules>, force: bool) -> anyhow::Result<ReloadOutcome> {
    tokio::task::spawn_blocking(move || live.reload(force)).await.context("the reload task failed")
}
