//! The two rules as Rhai scripts (`rhai/*.rhai`), the way Rhai's book
//! recommends embedding it: one `Engine`, scripts compiled once to an `AST`,
//! each evaluation a `call_fn` with the session converted to a Rhai map, and
//! the heavy helpers (keyword and regex search, nearest instant) registered
//! as native Rust functions: the very helpers the callqa host gives rules.

use std::sync::Arc;

use callqa::rules::bindings::helpers::Direction;
use callqa::rules::bindings::types::Value;
use callqa::rules::host::helpers::{contains_any, find_all, minutes_between, nearest, PatternCache};
use callqa::rules::{Finding, Outcome, Verdict};
use callqa::session::{Role, Session};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope, AST};

use crate::{Rule, RuleFailure};

pub struct RhaiRules {
    engine: Engine,
    forbidden_phrases: AST,
    chase_follow_up: AST,
}

impl RhaiRules {
    /// The engine with the helpers registered and both scripts compiled.
    pub fn new(patterns: Arc<PatternCache>) -> anyhow::Result<Self> {
        let mut engine = Engine::new();
        engine.register_fn("contains_any", |text: &str, keywords: Array| -> Dynamic {
            let keywords: Vec<ImmutableString> =
                keywords.into_iter().filter_map(|k| k.into_immutable_string().ok()).collect();
            contains_any(text, &keywords).map_or(Dynamic::UNIT, |i| Dynamic::from_int(i as i64))
        });
        // `result<list<text-match>, string>` as an array of matches or the
        // error text.
        engine.register_fn("find_all", move |pattern: &str, text: &str| -> Dynamic {
            match patterns.get(pattern) {
                Ok(re) => find_all(&re, text)
                    .into_iter()
                    .map(|m| {
                        let mut map = Map::new();
                        map.insert("begin_char".into(), Dynamic::from_int(m.begin_char as i64));
                        map.insert("end_char".into(), Dynamic::from_int(m.end_char as i64));
                        map.insert("text".into(), m.text.into());
                        Dynamic::from_map(map)
                    })
                    .collect::<Array>()
                    .into(),
                Err(e) => e.into(),
            }
        });
        engine.register_fn("nearest", |pivot: i64, candidates: Array, side: &str| -> Dynamic {
            let instants: Vec<i64> = candidates.iter().filter_map(|c| c.as_int().ok()).collect();
            let side = if side == "before" { Direction::Before } else { Direction::After };
            nearest(pivot, &instants, side).map_or(Dynamic::UNIT, |i| Dynamic::from_int(i as i64))
        });
        engine.register_fn("minutes_between", |start: i64, end: i64| minutes_between(start, end));
        let forbidden_phrases = engine.compile(include_str!("../rhai/forbidden_phrases.rhai"))?;
        let chase_follow_up = engine.compile(include_str!("../rhai/chase_follow_up.rhai"))?;
        Ok(RhaiRules { engine, forbidden_phrases, chase_follow_up })
    }

    pub fn evaluate(&self, rule: Rule, session: &Session, params: &[(String, Value)]) -> Result<Verdict, RuleFailure> {
        let ast = match rule {
            Rule::ForbiddenPhrases => &self.forbidden_phrases,
            Rule::ChaseFollowUp => &self.chase_follow_up,
        };
        let args = (session_map(session), params_map(params));
        match self.engine.call_fn::<Map>(&mut Scope::new(), ast, "evaluate", args) {
            Ok(verdict) => verdict_from(verdict).map_err(RuleFailure::Failed),
            Err(e) => Err(failure(*e)),
        }
    }
}

/// The whole session as a Rhai map: every field, instants as milliseconds
/// since the epoch, `()` for absent values, free-form JSON through serde.
pub fn session_map(s: &Session) -> Dynamic {
    let mut m = Map::new();
    m.insert("id".into(), s.id.clone().into());
    let c = &s.contact;
    let mut contact = Map::new();
    contact.insert("contact_id".into(), c.contact_id.clone().into());
    contact.insert("channel".into(), c.channel.as_str().into());
    contact.insert(
        "initiation_method".into(),
        c.initiation_method.map_or(Dynamic::UNIT, |x| format!("{x:?}").to_lowercase().into()),
    );
    contact.insert("queue".into(), opt_text(&c.queue));
    contact.insert("agent".into(), c.agent.as_ref().map_or(Dynamic::UNIT, agent_map));
    contact.insert("scenario".into(), opt_text(&c.scenario));
    contact.insert("language".into(), opt_text(&c.language));
    for (key, at) in [
        ("initiated_at", &c.initiated_at),
        ("connected_to_agent_at", &c.connected_to_agent_at),
        ("ended_at", &c.ended_at),
    ] {
        contact.insert(key.into(), at.map_or(Dynamic::UNIT, |t| Dynamic::from_int(t.timestamp_millis())));
    }
    m.insert("contact".into(), contact.into());
    m.insert("agents".into(), s.agents.iter().map(agent_map).collect::<Array>().into());
    let segments = s.segments.as_ref().map_or(Dynamic::UNIT, |segments| {
        segments
            .iter()
            .map(|x| {
                let mut seg = Map::new();
                seg.insert("id".into(), x.id.clone().into());
                seg.insert("role".into(), role_name(x.role).into());
                seg.insert("text".into(), x.text.clone().into());
                seg.insert("begin_ms".into(), Dynamic::from_int(x.begin_ms as i64));
                seg.insert("end_ms".into(), Dynamic::from_int(x.end_ms as i64));
                seg.insert(
                    "sentiment".into(),
                    x.sentiment.map_or(Dynamic::UNIT, |v| format!("{v:?}").to_lowercase().into()),
                );
                seg.insert(
                    "sentiment_score".into(),
                    x.sentiment_score.map_or(Dynamic::UNIT, |v| Dynamic::from_float(v as f64)),
                );
                seg.insert("loudness".into(), x.loudness.map_or(Dynamic::UNIT, |v| Dynamic::from_float(v as f64)));
                seg.insert("agent_id".into(), opt_text(&x.agent_id));
                Dynamic::from_map(seg)
            })
            .collect::<Array>()
            .into()
    });
    m.insert("segments".into(), segments);
    let events: Array = s
        .events
        .iter()
        .map(|e| {
            let mut event = Map::new();
            event.insert("kind".into(), e.kind.clone().into());
            event.insert("at".into(), Dynamic::from_int(e.at.timestamp_millis()));
            event.insert("attributes".into(), rhai::serde::to_dynamic(&e.attributes).unwrap_or(Dynamic::UNIT));
            Dynamic::from_map(event)
        })
        .collect();
    m.insert("events".into(), events.into());
    m.insert("attributes".into(), rhai::serde::to_dynamic(&s.attributes).unwrap_or(Dynamic::UNIT));
    m.insert(
        "characteristics".into(),
        s.characteristics.as_ref().map_or(Dynamic::UNIT, |c| rhai::serde::to_dynamic(c).unwrap_or(Dynamic::UNIT)),
    );
    m.into()
}

fn agent_map(a: &callqa::session::Agent) -> Dynamic {
    let mut m = Map::new();
    m.insert("id".into(), a.id.clone().into());
    m.insert("username".into(), opt_text(&a.username));
    m.insert("hierarchy".into(), a.hierarchy.iter().map(|h| Dynamic::from(h.clone())).collect::<Array>().into());
    m.into()
}

fn opt_text(s: &Option<String>) -> Dynamic {
    s.as_ref().map_or(Dynamic::UNIT, |s| s.clone().into())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Customer => "customer",
        Role::System => "system",
    }
}

fn params_map(params: &[(String, Value)]) -> Dynamic {
    let mut m = Map::new();
    for (name, value) in params {
        let v: Dynamic = match value {
            Value::Null => Dynamic::UNIT,
            Value::Boolean(b) => (*b).into(),
            Value::Integer(i) => Dynamic::from_int(*i),
            Value::Number(n) => Dynamic::from_float(*n),
            Value::Text(s) => s.clone().into(),
            Value::TextList(l) => l.iter().map(|s| Dynamic::from(s.clone())).collect::<Array>().into(),
            Value::Json(j) => j.clone().into(),
        };
        m.insert(name.as_str().into(), v);
    }
    m.into()
}

fn verdict_from(mut m: Map) -> Result<Verdict, String> {
    let text = |d: Dynamic| -> Option<String> { d.into_string().ok() };
    let outcome = match m.remove("outcome").and_then(text).as_deref() {
        Some("pass") => Outcome::Pass,
        Some("fail") => Outcome::Fail,
        Some("not-applicable") => Outcome::NotApplicable,
        other => return Err(format!("the script returned outcome {other:?}")),
    };
    let score = m.remove("score").and_then(|s| s.as_float().ok()).map(|s| s as f32);
    let reason = m.remove("reason").and_then(text);
    let findings = m
        .remove("findings")
        .and_then(|f| f.try_cast::<Array>())
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let mut f = f.try_cast::<Map>().unwrap_or_default();
            let offset = |d: Option<Dynamic>| d.and_then(|d| d.as_int().ok()).map(|i| i as u32);
            Finding {
                message: f.remove("message").and_then(text).unwrap_or_default(),
                segment_id: f.remove("segment_id").and_then(text),
                begin_ms: offset(f.remove("begin_ms")),
                end_ms: offset(f.remove("end_ms")),
            }
        })
        .collect();
    Ok(Verdict { outcome, score, reason, findings })
}

/// A script's `throw #{kind, message}` (possibly wrapped by the function
/// calls it passed through), or any other Rhai error as a failure.
fn failure(e: EvalAltResult) -> RuleFailure {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => failure(*inner),
        EvalAltResult::ErrorRuntime(value, _) => match value.try_cast::<Map>() {
            Some(mut m) => {
                let message = m.remove("message").map(|d| d.to_string()).unwrap_or_default();
                match m.remove("kind").map(|d| d.to_string()).as_deref() {
                    Some("bad-params") => RuleFailure::BadParams(message),
                    _ => RuleFailure::Failed(message),
                }
            }
            None => RuleFailure::Failed("the script threw a value that is not #{kind, message}".into()),
        },
        other => RuleFailure::Failed(other.to_string()),
    }
}
