//! The floor: the two rules as plain Rust functions over the host's session
//! model, with the host's own helpers (`callqa::rules::host::helpers`).
//! Line for line the logic of `plugins/forbidden-phrases` and
//! `plugins/chase-follow-up`, without a sandbox or a copy of the session.

use callqa::rules::bindings::helpers::Direction;
use callqa::rules::bindings::types::Value;
use callqa::rules::host::helpers::{contains_any, find_all, minutes_between, nearest, PatternCache};
use callqa::rules::{Finding, Outcome, Verdict};
use callqa::session::{Role, Segment, Session};

use crate::RuleFailure;

pub struct Params<'a>(pub &'a [(String, Value)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Result<&Value, RuleFailure> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| RuleFailure::BadParams(format!("parameter `{name}` is missing")))
    }

    fn text_list(&self, name: &str) -> Result<Vec<String>, RuleFailure> {
        match self.get(name)? {
            Value::TextList(list) => Ok(list.clone()),
            Value::Text(s) => Ok(vec![s.clone()]),
            _ => Err(RuleFailure::BadParams(format!("parameter `{name}` must be a list of strings"))),
        }
    }

    fn text(&self, name: &str) -> Result<String, RuleFailure> {
        match self.get(name)? {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(RuleFailure::BadParams(format!("parameter `{name}` must be a string"))),
        }
    }

    fn integer(&self, name: &str) -> Result<i64, RuleFailure> {
        match self.get(name)? {
            Value::Integer(i) => Ok(*i),
            _ => Err(RuleFailure::BadParams(format!("parameter `{name}` must be an integer"))),
        }
    }
}

fn verdict(outcome: Outcome, score: Option<f32>, reason: impl Into<String>) -> Verdict {
    Verdict { outcome, score, reason: Some(reason.into()), findings: Vec::new() }
}

fn at(seg: &Segment, message: String) -> Finding {
    Finding { message, segment_id: Some(seg.id.clone()), begin_ms: Some(seg.begin_ms), end_ms: Some(seg.end_ms) }
}

const MAX_LISTED: usize = 50;

pub fn forbidden_phrases(
    session: &Session,
    params: &Params,
    patterns_cache: &PatternCache,
) -> Result<Verdict, RuleFailure> {
    let phrases: Vec<String> = params.text_list("phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
    let patterns: Vec<String> = params.text_list("patterns")?.into_iter().filter(|p| !p.is_empty()).collect();
    let role_name = params.text("role")?;
    let role = match role_name.trim().to_ascii_lowercase().as_str() {
        "agent" => Some(Role::Agent),
        "customer" => Some(Role::Customer),
        "system" => Some(Role::System),
        "any" | "*" => None,
        _ => {
            return Err(RuleFailure::BadParams(format!(
                "parameter `role` must be agent, customer, system or any, got \"{role_name}\""
            )))
        }
    };
    for p in &patterns {
        if let Err(e) = patterns_cache.get(p) {
            return Err(bad_pattern(p, &e));
        }
    }
    if !session.has_transcript() {
        return Ok(verdict(Outcome::NotApplicable, None, "the session has no transcript"));
    }
    let segments: Vec<&Segment> = session.segments().iter().filter(|s| role.is_none_or(|r| s.role == r)).collect();
    if segments.is_empty() {
        return Ok(verdict(
            Outcome::NotApplicable,
            None,
            format!("no segment of role `{role_name}` in the transcript"),
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
            let one = [p.as_str()];
            let shadowed = found
                .iter()
                .enumerate()
                .any(|(j, q)| j != k && (q.len() > p.len() || j < k) && contains_any(q, &one).is_some());
            if !shadowed {
                hit(at(seg, format!("forbidden phrase \"{}\"", clip(p, 200))));
            }
        }
        for p in &patterns {
            let re = patterns_cache.get(p).map_err(|e| bad_pattern(p, &e))?;
            for m in find_all(&re, &seg.text).iter().filter(|m| m.end_char > m.begin_char) {
                hit(at(
                    seg,
                    format!(
                        "forbidden pattern \"{}\" matched \"{}\" at characters {}..{}",
                        clip(p, 200),
                        clip(&m.text, 200),
                        m.begin_char,
                        m.end_char
                    ),
                ));
            }
        }
    }
    if hits == 0 {
        Ok(verdict(
            Outcome::Pass,
            Some(1.0),
            format!("no forbidden phrase in {} {role_name} segment(s)", segments.len()),
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
        let mut v = verdict(Outcome::Fail, Some(0.0), format!("{hits} forbidden phrase hit(s)"));
        v.findings = findings;
        Ok(v)
    }
}

fn bad_pattern(pattern: &str, error: &str) -> RuleFailure {
    RuleFailure::BadParams(format!(
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

pub fn chase_follow_up(session: &Session, params: &Params) -> Result<Verdict, RuleFailure> {
    let promises: Vec<String> =
        params.text_list("promise-phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
    let action_kinds = params.text_list("action-kinds")?;
    let within = params.integer("within-minutes")?;
    let repeat = params.integer("repeat-window-minutes")?;
    let chase_kind = params.text("chase-kind")?;
    if promises.is_empty() {
        return Err(RuleFailure::BadParams("parameter `promise-phrases` is empty".into()));
    }
    if action_kinds.is_empty() {
        return Err(RuleFailure::BadParams("parameter `action-kinds` is empty".into()));
    }
    if within < 0 {
        return Err(RuleFailure::BadParams(format!("parameter `within-minutes` must not be negative, got {within}")));
    }
    if repeat < 0 {
        return Err(RuleFailure::BadParams(format!(
            "parameter `repeat-window-minutes` must not be negative, got {repeat}"
        )));
    }
    let chases: Vec<i64> =
        session.events.iter().filter(|e| e.kind == chase_kind).map(|e| e.at.timestamp_millis()).collect();
    if chases.is_empty() {
        return Ok(verdict(
            Outcome::NotApplicable,
            None,
            format!("the customer did not chase a ticket (no `{chase_kind}` event)"),
        ));
    }
    let contact = &session.contact;
    let Some(start) = contact.connected_to_agent_at.or(contact.initiated_at).map(|t| t.timestamp_millis()) else {
        return Ok(verdict(
            Outcome::NotApplicable,
            None,
            "the contact has no start instant (neither connected-to-agent-at nor initiated-at)",
        ));
    };
    if !session.has_transcript() {
        return Ok(verdict(Outcome::NotApplicable, None, "the session has no transcript to find a promise in"));
    }
    let promise = session
        .segments()
        .iter()
        .filter(|s| s.role == Role::Agent)
        .find_map(|s| contains_any(&s.text, &promises).map(|i| (s, &promises[i])));
    let Some((seg, keyword)) = promise else {
        return Ok(verdict(Outcome::NotApplicable, None, "the agent made no promise to act on the chase"));
    };
    let promised_at = start.saturating_add(seg.begin_ms as i64);
    let Some(ci) = nearest(promised_at, &chases, Direction::Before) else {
        return Ok(verdict(Outcome::NotApplicable, None, "no chase at or before the promise"));
    };
    let chased_at = chases[ci];
    let earlier: Vec<i64> = chases.iter().copied().filter(|&t| t < chased_at).collect();
    if let Some(pi) = nearest(chased_at, &earlier, Direction::Before) {
        let gap = minutes_between(earlier[pi], chased_at);
        if gap < repeat as f64 {
            return Ok(verdict(
                Outcome::NotApplicable,
                None,
                format!(
                    "the previous chase came {} min before this one (< {repeat} min): the earlier follow-up stands",
                    tenths(gap)
                ),
            ));
        }
    }
    let actions: Vec<(&str, i64)> = session
        .events
        .iter()
        .filter(|e| action_kinds.contains(&e.kind))
        .map(|e| (e.kind.as_str(), e.at.timestamp_millis()))
        .collect();
    let instants: Vec<i64> = actions.iter().map(|(_, at)| *at).collect();
    let promised = format!("promised \"{keyword}\"");
    Ok(match nearest(promised_at, &instants, Direction::After) {
        None => {
            let mut v = verdict(Outcome::Fail, Some(0.0), format!("no {} after the promise", action_kinds.join(" / ")));
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
                let mut v = verdict(
                    Outcome::Fail,
                    Some(0.0),
                    format!("{kind} came {delay} after the promise, {late} later than the {within} min allowed"),
                );
                v.findings.push(at(seg, format!("{promised}; {kind} came {delay} later ({late} late)")));
                v
            } else {
                let mut v = verdict(
                    Outcome::Pass,
                    Some(1.0),
                    format!("{kind} came {delay} after the promise (within {within} min)"),
                );
                v.findings.push(at(seg, format!("{promised}; {kind} came {delay} later")));
                v
            }
        }
    })
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
