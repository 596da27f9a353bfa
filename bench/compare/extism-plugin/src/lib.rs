//! `forbidden-phrases` and `chase-follow-up` as an Extism plugin: the same
//! logic as the bundled callqa rules (`plugins/forbidden-phrases`,
//! `plugins/chase-follow-up`; see their READMEs), over the session document
//! passed as JSON. The text helpers are the host's (`callqa::rules::host::
//! helpers`), copied: the plugin carries its own regex engine, as an Extism
//! plugin does, and caches compiled patterns across calls of the instance.

use std::cell::RefCell;
use std::collections::HashMap;

use extism_pdk::*;
use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    session: Session,
    params: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Session {
    contact: Contact,
    #[serde(default)]
    segments: Option<Vec<Segment>>,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    initiated_at: Option<String>,
    #[serde(default)]
    connected_to_agent_at: Option<String>,
}

#[derive(Deserialize)]
struct Segment {
    id: String,
    role: String,
    text: String,
    begin_ms: u32,
    end_ms: u32,
}

#[derive(Deserialize)]
struct Event {
    kind: String,
    at: String,
}

/// What the plugin returns: the verdict, or why there is none.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum Output {
    Verdict(Verdict),
    BadParams(String),
    Failed(String),
}

#[derive(Serialize)]
struct Verdict {
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Finding {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    begin_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_ms: Option<u32>,
}

impl Verdict {
    fn new(outcome: &'static str, score: Option<f32>, reason: Option<String>) -> Self {
        Verdict { outcome, score, reason, findings: Vec::new() }
    }
}

fn at(seg: &Segment, message: String) -> Finding {
    Finding { message, segment_id: Some(seg.id.clone()), begin_ms: Some(seg.begin_ms), end_ms: Some(seg.end_ms) }
}

type RuleResult = Result<Verdict, Output>;

fn respond(result: RuleResult) -> FnResult<Json<Output>> {
    Ok(Json(match result {
        Ok(v) => Output::Verdict(v),
        Err(e) => e,
    }))
}

fn text_list(params: &HashMap<String, serde_json::Value>, name: &str) -> Result<Vec<String>, Output> {
    match params.get(name) {
        Some(serde_json::Value::Array(items)) => {
            Ok(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        }
        Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
        _ => Err(Output::BadParams(format!("parameter `{name}` must be a list of strings"))),
    }
}

fn text(params: &HashMap<String, serde_json::Value>, name: &str) -> Result<String, Output> {
    params
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Output::BadParams(format!("parameter `{name}` must be a string")))
}

fn integer(params: &HashMap<String, serde_json::Value>, name: &str) -> Result<i64, Output> {
    params
        .get(name)
        .and_then(|v| v.as_i64())
        .ok_or_else(|| Output::BadParams(format!("parameter `{name}` must be an integer")))
}

// ---------------------------------------------------------------- forbidden-phrases

#[plugin_fn]
pub fn forbidden_phrases(Json(input): Json<Input>) -> FnResult<Json<Output>> {
    respond(forbidden(&input.session, &input.params))
}

const MAX_LISTED: usize = 50;

fn forbidden(session: &Session, params: &HashMap<String, serde_json::Value>) -> RuleResult {
    let phrases: Vec<String> = text_list(params, "phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
    let patterns: Vec<String> = text_list(params, "patterns")?.into_iter().filter(|p| !p.is_empty()).collect();
    let role_name = text(params, "role")?;
    let role = match role_name.trim().to_ascii_lowercase().as_str() {
        "agent" => Some("agent"),
        "customer" => Some("customer"),
        "system" => Some("system"),
        "any" | "*" => None,
        _ => {
            return Err(Output::BadParams(format!(
                "parameter `role` must be agent, customer, system or any, got \"{role_name}\""
            )))
        }
    };
    for p in &patterns {
        if let Err(e) = pattern(p) {
            return Err(bad_pattern(p, &e));
        }
    }
    let Some(all) = &session.segments else {
        return Ok(Verdict::new("not-applicable", None, Some("the session has no transcript".into())));
    };
    let segments: Vec<&Segment> = all.iter().filter(|s| role.is_none_or(|r| s.role == r)).collect();
    if segments.is_empty() {
        return Ok(Verdict::new(
            "not-applicable",
            None,
            Some(format!("no segment of role `{role_name}` in the transcript")),
        ));
    }
    let mut findings = Vec::new();
    let mut hits = 0usize;
    let mut hit = |finding: Finding| {
        hits += 1;
        if findings.len() < MAX_LISTED {
            findings.push(finding);
        }
    };
    for seg in &segments {
        if seg.text.is_empty() {
            continue;
        }
        let mut found: Vec<&String> = Vec::new();
        let mut start = 0;
        while start < phrases.len() {
            let Some(i) = contains_any(&seg.text, &phrases[start..]) else { break };
            found.push(&phrases[start + i]);
            start += i + 1;
        }
        for (k, p) in found.iter().enumerate() {
            let one = [(*p).clone()];
            let shadowed = found
                .iter()
                .enumerate()
                .any(|(j, q)| j != k && (q.len() > p.len() || j < k) && contains_any(q, &one).is_some());
            if !shadowed {
                hit(at(seg, format!("forbidden phrase \"{}\"", clip(p, 200))));
            }
        }
        for p in &patterns {
            let re = pattern(p).map_err(|e| bad_pattern(p, &e))?;
            for m in find_all(&re, &seg.text).iter().filter(|m| m.1 > m.0) {
                hit(at(
                    seg,
                    format!(
                        "forbidden pattern \"{}\" matched \"{}\" at characters {}..{}",
                        clip(p, 200),
                        clip(&m.2, 200),
                        m.0,
                        m.1
                    ),
                ));
            }
        }
    }
    if hits == 0 {
        Ok(Verdict::new(
            "pass",
            Some(1.0),
            Some(format!("no forbidden phrase in {} {role_name} segment(s)", segments.len())),
        ))
    } else {
        if hits > findings.len() {
            findings.push(Finding {
                message: format!("{} more hit(s) not listed", hits - findings.len()),
                segment_id: None,
                begin_ms: None,
                end_ms: None,
            });
        }
        let mut v = Verdict::new("fail", Some(0.0), Some(format!("{hits} forbidden phrase hit(s)")));
        v.findings = findings;
        Ok(v)
    }
}

fn bad_pattern(pattern: &str, error: &str) -> Output {
    Output::BadParams(format!(
        "parameter `patterns`: invalid pattern \"{}\": {}",
        clip(pattern, 200),
        clip(error, 1000)
    ))
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------- chase-follow-up

#[plugin_fn]
pub fn chase_follow_up(Json(input): Json<Input>) -> FnResult<Json<Output>> {
    respond(chase(&input.session, &input.params))
}

fn chase(session: &Session, params: &HashMap<String, serde_json::Value>) -> RuleResult {
    let promises: Vec<String> =
        text_list(params, "promise-phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
    let action_kinds = text_list(params, "action-kinds")?;
    let within = integer(params, "within-minutes")?;
    let repeat = integer(params, "repeat-window-minutes")?;
    let chase_kind = text(params, "chase-kind")?;
    if promises.is_empty() {
        return Err(Output::BadParams("parameter `promise-phrases` is empty".into()));
    }
    if action_kinds.is_empty() {
        return Err(Output::BadParams("parameter `action-kinds` is empty".into()));
    }
    if within < 0 {
        return Err(Output::BadParams(format!("parameter `within-minutes` must not be negative, got {within}")));
    }
    if repeat < 0 {
        return Err(Output::BadParams(format!("parameter `repeat-window-minutes` must not be negative, got {repeat}")));
    }
    let events: Vec<(&str, i64)> =
        session.events.iter().map(|e| Ok((e.kind.as_str(), instant(&e.at)?))).collect::<Result<_, Output>>()?;
    let chases: Vec<i64> = events.iter().filter(|(k, _)| *k == chase_kind).map(|(_, at)| *at).collect();
    if chases.is_empty() {
        return Ok(Verdict::new(
            "not-applicable",
            None,
            Some(format!("the customer did not chase a ticket (no `{chase_kind}` event)")),
        ));
    }
    let start = match (&session.contact.connected_to_agent_at, &session.contact.initiated_at) {
        (Some(at), _) | (None, Some(at)) => instant(at)?,
        (None, None) => {
            return Ok(Verdict::new(
                "not-applicable",
                None,
                Some("the contact has no start instant (neither connected-to-agent-at nor initiated-at)".into()),
            ))
        }
    };
    let Some(all) = &session.segments else {
        return Ok(Verdict::new(
            "not-applicable",
            None,
            Some("the session has no transcript to find a promise in".into()),
        ));
    };
    let promise = all
        .iter()
        .filter(|s| s.role == "agent")
        .find_map(|s| contains_any(&s.text, &promises).map(|i| (s, &promises[i])));
    let Some((seg, keyword)) = promise else {
        return Ok(Verdict::new("not-applicable", None, Some("the agent made no promise to act on the chase".into())));
    };
    let promised_at = start.saturating_add(seg.begin_ms as i64);
    let Some(ci) = nearest(promised_at, &chases, Direction::Before) else {
        return Ok(Verdict::new("not-applicable", None, Some("no chase at or before the promise".into())));
    };
    let chased_at = chases[ci];
    let earlier: Vec<i64> = chases.iter().copied().filter(|&t| t < chased_at).collect();
    if let Some(pi) = nearest(chased_at, &earlier, Direction::Before) {
        let gap = minutes_between(earlier[pi], chased_at);
        if gap < repeat as f64 {
            return Ok(Verdict::new(
                "not-applicable",
                None,
                Some(format!(
                    "the previous chase came {} min before this one (< {repeat} min): the earlier follow-up stands",
                    tenths(gap)
                )),
            ));
        }
    }
    let actions: Vec<(&str, i64)> =
        events.iter().filter(|(k, _)| action_kinds.iter().any(|a| a == k)).copied().collect();
    let instants: Vec<i64> = actions.iter().map(|(_, at)| *at).collect();
    let promised = format!("promised \"{keyword}\"");
    let v = match nearest(promised_at, &instants, Direction::After) {
        None => {
            let mut v =
                Verdict::new("fail", Some(0.0), Some(format!("no {} after the promise", action_kinds.join(" / "))));
            v.findings.push(at(seg, format!("{promised}, but no action followed")));
            v
        }
        Some(i) => {
            let acted_at = instants[i];
            let after = minutes_between(promised_at, acted_at);
            let kind = actions[i].0;
            let delay = duration(acted_at.saturating_sub(promised_at));
            if after > within as f64 {
                let late = duration(acted_at.saturating_sub(promised_at).saturating_sub(within.saturating_mul(60_000)));
                let mut v = Verdict::new(
                    "fail",
                    Some(0.0),
                    Some(format!("{kind} came {delay} after the promise, {late} later than the {within} min allowed")),
                );
                v.findings.push(at(seg, format!("{promised}; {kind} came {delay} later ({late} late)")));
                v
            } else {
                let mut v = Verdict::new(
                    "pass",
                    Some(1.0),
                    Some(format!("{kind} came {delay} after the promise (within {within} min)")),
                );
                v.findings.push(at(seg, format!("{promised}; {kind} came {delay} later")));
                v
            }
        }
    };
    Ok(v)
}

fn instant(rfc3339: &str) -> Result<i64, Output> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_millis())
        .map_err(|e| Output::Failed(format!("bad instant {rfc3339}: {e}")))
}

fn tenths(minutes: f64) -> String {
    let t = (minutes * 10.0).round();
    let neg = t < 0.0;
    let t = if t.is_finite() { t.abs().min(1e15) as u64 } else { 0 };
    format!("{}{}.{}", if neg { "-" } else { "" }, t / 10, t % 10)
}

fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s % 60 {
        0 => format!("{} min", s / 60),
        r => format!("{} min {r} s", s / 60),
    }
}

// ---------------------------------------------------------------- the host's helpers, copied

#[derive(Clone, Copy)]
enum Direction {
    Before,
    After,
}

fn minutes_between(start: i64, end: i64) -> f64 {
    (end - start) as f64 / 60_000.0
}

fn nearest(pivot: i64, candidates: &[i64], side: Direction) -> Option<usize> {
    let on_side = |c: i64| match side {
        Direction::Before => c <= pivot,
        Direction::After => c >= pivot,
    };
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| on_side(**c))
        .min_by_key(|(i, c)| ((**c - pivot).unsigned_abs(), *i))
        .map(|(i, _)| i)
}

thread_local! {
    /// Compiled patterns, kept for the life of the plugin instance.
    static PATTERNS: RefCell<HashMap<String, Result<Regex, String>>> = RefCell::new(HashMap::new());
}

fn pattern(p: &str) -> Result<Regex, String> {
    PATTERNS.with(|cache| {
        cache
            .borrow_mut()
            .entry(p.to_owned())
            .or_insert_with(|| regex::RegexBuilder::new(p).size_limit(1 << 20).build().map_err(|e| e.to_string()))
            .clone()
    })
}

/// (begin-char, end-char, text) of each match.
fn find_all(re: &Regex, text: &str) -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    let mut chars_before = 0u32;
    let mut last_byte = 0usize;
    for m in re.find_iter(text) {
        chars_before += text[last_byte..m.start()].chars().count() as u32;
        let len = m.as_str().chars().count() as u32;
        out.push((chars_before, chars_before + len, m.as_str().to_owned()));
        chars_before += len;
        last_byte = m.end();
    }
    out
}

fn contains_any(text: &str, keywords: &[String]) -> Option<usize> {
    let haystack = lowercase(text);
    keywords.iter().position(|k| {
        let needle = lowercase(k);
        !needle.is_empty()
            && haystack.contains(&*needle)
            && haystack.match_indices(&*needle).any(|(at, m)| at_word_boundaries(&haystack, at, at + m.len()))
    })
}

fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    let has_upper = if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        text.chars().any(|c| {
            let mut lower = c.to_lowercase();
            lower.next() != Some(c) || lower.next().is_some()
        })
    };
    if has_upper {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn at_word_boundaries(text: &str, begin: usize, end: usize) -> bool {
    let wordish = |c: char| c.is_alphanumeric() && !is_cjk(c);
    let first = text[begin..end].chars().next();
    let last = text[begin..end].chars().next_back();
    let before = text[..begin].chars().next_back();
    let after = text[end..].chars().next();
    let open = !(first.is_some_and(wordish) && before.is_some_and(wordish));
    let close = !(last.is_some_and(wordish) && after.is_some_and(wordish));
    open && close
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x2FA1F)
}
