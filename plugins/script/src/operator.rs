//! Operators (算子): each a test over the session that QA staff configure
//! beside the script. An operator's reading is its hits (each with an
//! instant where one is known, and evidence), a miss, or unknown when the
//! session lacks what the test needs (no transcript, no characteristics, a
//! contact field absent): unknown reaches the script as `null`, so the
//! missing-data rule applies to it. A host capability that fails (the
//! similarity endpoint down) is a failure, never a miss: the item is an
//! error naming it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use callqa_sdk::prelude::*;
use callqa_sdk::{Characteristics, SimilarityQuery, Span};
use serde_json::Value as Json;

use crate::program::{wrong, Fields, ProgramError};
use crate::session_view::{iso, SessionView};

pub struct Operator {
    pub name: String,
    pub kind: Kind,
}

/// What an operator tests, with its configuration checked.
pub enum Kind {
    Phrase(Phrase),
    Similar(Similar),
    Event { kinds: Vec<String>, filter: Vec<(String, Json)> },
    Contact { field: ContactField, test: Option<Comparison> },
    Attribute { path: String, test: Comparison },
    Silence { longer_than_ms: u32 },
    TalkSpeed { role: Role, below: Option<f64>, above: Option<f64> },
    Interruptions { by: Option<Role>, more_than: u32 },
    Sentiment { role: Role, below: f64, overall: bool },
}

pub struct Phrase {
    role: Option<Role>,
    any: Vec<String>,
    all: Vec<String>,
    at_least: Option<u32>,
    regex: Option<String>,
    exclude: Vec<String>,
    exclude_regex: Option<String>,
    scope: Scope,
}

/// Segments that mean what the examples say, as the host judges them
/// (`session.similar-segments`); scoped like a phrase.
pub struct Similar {
    role: Option<Role>,
    examples: Vec<String>,
    negative_examples: Vec<String>,
    threshold: Option<f32>,
    window: u32,
    scope: Scope,
}

/// Where in the conversation a phrase or a similar segment counts.
#[derive(Default)]
struct Scope {
    first_ms: Option<u32>,
    last_ms: Option<u32>,
    after: Option<String>,
    before: Option<String>,
}

/// One hit of an operator.
#[derive(Clone)]
pub struct Hit {
    /// Milliseconds since the epoch, when known (a phrase needs the
    /// contact's start instant).
    pub instant: Option<i64>,
    /// Milliseconds from the start of the conversation, when it is a part of it.
    pub offset_ms: Option<u32>,
    pub evidence: Evidence,
}

/// What a hit shows a reviewer. Kept as data and written out only when the
/// item fails: most runs pass, and formatting every event's instant on
/// every run cost a warm scripted item a third of its fuel.
#[derive(Clone)]
pub enum Evidence {
    Said { segment: Segment, phrase: String },
    Like { segment: Segment, example: String, score: f32 },
    Event { kind: String, at: i64 },
    Field { field: &'static str, at: i64 },
    Silence { begin_ms: u32, end_ms: u32 },
    Interruption { by: Role, begin_ms: u32, end_ms: u32 },
    Written(Finding),
}

impl Hit {
    /// The finding of this hit of operator `name`.
    pub fn finding(&self, name: &str) -> Finding {
        match &self.evidence {
            Evidence::Said { segment, phrase } => {
                Finding::at(segment, alloc::format!("{name}: \u{201c}{phrase}\u{201d}"))
            }
            Evidence::Like { segment, example, score } => {
                Finding::at(segment, alloc::format!("{name}: like \u{201c}{example}\u{201d} ({score:.2})"))
            }
            Evidence::Event { kind, at } => Finding::general(alloc::format!("{name}: {kind} at {}", iso(*at))),
            Evidence::Field { field, at } => Finding::general(alloc::format!("{name}: {field} {}", iso(*at))),
            Evidence::Silence { begin_ms, end_ms } => {
                Finding::span(*begin_ms, *end_ms, alloc::format!("{name}: silence of {} s", (end_ms - begin_ms) / 1000))
            }
            Evidence::Interruption { by, begin_ms, end_ms } => {
                Finding::span(*begin_ms, *end_ms, alloc::format!("{name}: the {} interrupted", role_name(*by)))
            }
            Evidence::Written(finding) => finding.clone(),
        }
    }
}

#[derive(Clone)]
pub enum Reading {
    Hits(Vec<Hit>),
    Miss,
    /// The session lacks what the test needs; says what.
    Unknown(String),
    /// The host could not answer (an endpoint down); says why. The item
    /// is an error, whatever the script would make of it.
    Failed(String),
}

const KINDS: &str = "phrase, similar, event, contact, attribute, silence, talk-speed, interruptions, sentiment";

impl Kind {
    pub fn parse(config: &Json, path: &[&str]) -> Result<Kind, ProgramError> {
        let mut f = Fields::of(config, path)?;
        let kind = match f.string("kind")? {
            Some(kind) => kind,
            None => return Err(f.error("kind", alloc::format!("`kind` is missing; one of: {KINDS}"))),
        };
        let parsed = match kind.as_str() {
            "phrase" => Kind::Phrase(Phrase::parse(&mut f)?),
            "similar" => Kind::Similar(Similar::parse(&mut f)?),
            "event" => {
                let kinds = f.strings("event")?;
                if kinds.is_empty() {
                    return Err(
                        f.error("event", "`event` is missing: the event kind(s) to find, e.g. \"ticket-chased\"")
                    );
                }
                let filter = match f.take("where") {
                    None => Vec::new(),
                    Some(Json::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    Some(other) => return Err(f.error("where", describe_wrong("a table of attribute = value", other))),
                };
                Kind::Event { kinds, filter }
            }
            "contact" => {
                let name = f.string("field")?.ok_or_else(|| {
                    f.error("field", alloc::format!("`field` is missing; one of: {}", ContactField::NAMES))
                })?;
                let field = ContactField::parse(&name).ok_or_else(|| {
                    f.error(
                        "field",
                        alloc::format!("unknown contact field `{name}`; expected one of: {}", ContactField::NAMES),
                    )
                })?;
                let test = Comparison::parse(&mut f, !field.is_instant())?;
                Kind::Contact { field, test }
            }
            "attribute" => {
                let path = f.string("path")?.ok_or_else(|| {
                    f.error(
                        "path",
                        "`path` is missing: a dotted path in the session's attributes, e.g. \"order.amount\"",
                    )
                })?;
                let test =
                    Comparison::parse(&mut f, false)?.unwrap_or(Comparison { op: Op::Exists, value: Json::Null });
                Kind::Attribute { path, test }
            }
            "silence" => {
                let longer_than_ms = f.seconds("longer-than-seconds")?.ok_or_else(|| {
                    f.error("longer-than-seconds", "`longer-than-seconds` is missing: the shortest silence that counts")
                })?;
                Kind::Silence { longer_than_ms }
            }
            "talk-speed" => {
                let role = role(&mut f, "role")?.unwrap_or(Role::Agent);
                let below = f.number("below")?;
                let above = f.number("above")?;
                if below.is_none() && above.is_none() {
                    return Err(
                        f.error("below", "give `below` and/or `above`: the words per minute that count as a hit")
                    );
                }
                Kind::TalkSpeed { role, below, above }
            }
            "interruptions" => {
                // Interruptions are judged of the agent unless the item says otherwise.
                let by = match f.take("by") {
                    None => Some(Role::Agent),
                    Some(_) => role_or_any(&mut f, "by")?,
                };
                let more_than = f.count("more-than")?.unwrap_or(0);
                Kind::Interruptions { by, more_than }
            }
            "sentiment" => {
                let role = role(&mut f, "role")?.unwrap_or(Role::Customer);
                let below = f.number("below")?.ok_or_else(|| {
                    f.error("below", "`below` is missing: the sentiment score (-5 to 5) under which it is a hit")
                })?;
                if !(-5.0..=5.0).contains(&below) {
                    return Err(f.error("below", alloc::format!("sentiment scores run from -5 to 5, got {below}")));
                }
                let overall = match f.string("at")?.as_deref() {
                    None | Some("end") => false,
                    Some("overall") => true,
                    Some(other) => {
                        return Err(
                            f.error("at", alloc::format!("unknown `at` \"{other}\"; expected \"end\" or \"overall\""))
                        )
                    }
                };
                Kind::Sentiment { role, below, overall }
            }
            other => {
                return Err(
                    f.error("kind", alloc::format!("unknown operator kind \"{other}\"; expected one of: {KINDS}"))
                )
            }
        };
        f.done()?;
        Ok(parsed)
    }

    /// Whether a hit has an instant (given the contact's start instant):
    /// the others only say whether a comparison holds, and `@X` is null.
    pub fn has_instants(&self) -> bool {
        match self {
            Kind::Phrase(_)
            | Kind::Similar(_)
            | Kind::Event { .. }
            | Kind::Silence { .. }
            | Kind::Interruptions { .. } => true,
            Kind::Contact { test, .. } => test.is_none(),
            Kind::Attribute { .. } | Kind::TalkSpeed { .. } | Kind::Sentiment { .. } => false,
        }
    }

    /// The operators a scope names: `(field, operator)`.
    pub fn scope_references(&self) -> Vec<(&'static str, &str)> {
        let scope = match self {
            Kind::Phrase(p) => &p.scope,
            Kind::Similar(s) => &s.scope,
            _ => return Vec::new(),
        };
        let mut refs = Vec::new();
        if let Some(a) = &scope.after {
            refs.push(("after", a.as_str()));
        }
        if let Some(b) = &scope.before {
            refs.push(("before", b.as_str()));
        }
        refs
    }

    /// Checks that need the host (a regular expression compiles).
    pub fn check_with_host(&self, path: &[&str]) -> Result<(), ProgramError> {
        if let Kind::Phrase(p) = self {
            for (field, pattern) in [("regex", &p.regex), ("exclude-regex", &p.exclude_regex)] {
                if let Some(pattern) = pattern {
                    if let Err(e) = find_all(pattern, "") {
                        let mut at: Vec<&str> = path.to_vec();
                        at.push(field);
                        return Err(ProgramError::at(&at, alloc::format!("invalid regular expression: {e}")));
                    }
                }
            }
        }
        Ok(())
    }
}

fn describe_wrong(expected: &str, got: &Json) -> String {
    wrong(&[], expected, got).message
}

fn role(f: &mut Fields<'_>, field: &'static str) -> Result<Option<Role>, ProgramError> {
    match f.string(field)?.as_deref() {
        None => Ok(None),
        Some("agent") => Ok(Some(Role::Agent)),
        Some("customer") => Ok(Some(Role::Customer)),
        Some("system") => Ok(Some(Role::System)),
        Some(other) => Err(f.error(
            field,
            alloc::format!("unknown role \"{other}\"; expected \"agent\", \"customer\", \"system\" or \"any\""),
        )),
    }
}

/// `role = "any"` (or no role) is every role.
fn role_or_any(f: &mut Fields<'_>, field: &'static str) -> Result<Option<Role>, ProgramError> {
    match f.take(field) {
        Some(Json::String(s)) if s == "any" => Ok(None),
        Some(_) => {
            // Taken twice is harmless: `done` only needs the name once.
            role(f, field)
        }
        None => Ok(None),
    }
}

impl Phrase {
    fn parse(f: &mut Fields<'_>) -> Result<Phrase, ProgramError> {
        let role = role_or_any(f, "role")?;
        let any = f.strings("any")?;
        let all = f.strings("all")?;
        let at_least = f.count("n")?;
        let regex = f.string("regex")?;
        let exclude = f.strings("exclude")?;
        let exclude_regex = f.string("exclude-regex")?;
        let scope = Scope::parse(f)?;
        if any.is_empty() && all.is_empty() && regex.is_none() {
            return Err(f.error("any", "give `any` (one of these phrases), `all` (every one of them) or `regex`"));
        }
        if !any.is_empty() && !all.is_empty() {
            return Err(f.error("all", "give `any` or `all`, not both (`n` with `any` asks for at least n of them)"));
        }
        match at_least {
            Some(_) if any.is_empty() => return Err(f.error("n", "`n` counts the phrases of `any`: give `any` too")),
            Some(n) if n == 0 || n as usize > any.len() => {
                return Err(f.error("n", alloc::format!("`n` must be between 1 and the {} phrases of `any`", any.len())))
            }
            _ => {}
        }
        Ok(Phrase { role, any, all, at_least, regex, exclude, exclude_regex, scope })
    }
}

impl Scope {
    fn parse(f: &mut Fields<'_>) -> Result<Scope, ProgramError> {
        let scope = Scope {
            first_ms: f.seconds("first-seconds")?,
            last_ms: f.seconds("last-seconds")?,
            after: f.string("after")?,
            before: f.string("before")?,
        };
        if scope.first_ms.is_some() && scope.last_ms.is_some() {
            return Err(f.error("last-seconds", "give `first-seconds` or `last-seconds`, not both"));
        }
        Ok(scope)
    }

    /// The offsets the scope's seconds allow, for the host to filter by.
    fn range(&self, view: &SessionView<'_>) -> Option<Span> {
        match (self.first_ms, self.last_ms) {
            (Some(ms), _) => Some(Span { begin_ms: 0, end_ms: ms }),
            (_, Some(ms)) => Some(Span { begin_ms: view.conversation_end_ms().saturating_sub(ms), end_ms: u32::MAX }),
            _ => None,
        }
    }

    /// Keeps the candidates within the scope; `Err` when the scope itself
    /// has no value (an `after` operator unknown).
    fn retain<T>(
        &self,
        name: &str,
        view: &SessionView<'_>,
        candidates: &mut Vec<(Segment, T)>,
        reading_of: &dyn Fn(&str) -> Reading,
    ) -> Result<(), Reading> {
        let start = view.start();
        let point = |s: &Segment| Point { instant: start.map(|t| t + s.begin_ms as i64), offset_ms: Some(s.begin_ms) };
        if let Some(ms) = self.first_ms {
            candidates.retain(|(s, _)| s.begin_ms < ms);
        }
        if let Some(ms) = self.last_ms {
            let end = view.conversation_end_ms();
            candidates.retain(|(s, _)| s.begin_ms.saturating_add(ms) >= end);
        }
        for (after, other) in [(true, &self.after), (false, &self.before)] {
            let Some(other) = other else { continue };
            match reading_of(other) {
                Reading::Failed(why) => return Err(Reading::Failed(why)),
                Reading::Unknown(_) => {
                    return Err(Reading::Unknown(alloc::format!(
                        "its scope `{}` = \"{other}\" has no value",
                        if after { "after" } else { "before" }
                    )))
                }
                // `after` a miss: nothing is in scope. `before` a miss: the whole conversation is.
                Reading::Miss if after => candidates.clear(),
                Reading::Miss => {}
                Reading::Hits(hits) => {
                    let first = &hits[0];
                    let pivot = Point { instant: first.instant, offset_ms: first.offset_ms };
                    let mut unknown = false;
                    candidates.retain(|(s, _)| match point(s).at_or_after(pivot) {
                        Some(is_after) => is_after == after,
                        None => {
                            unknown = true;
                            false
                        }
                    });
                    if unknown {
                        return Err(Reading::Unknown(alloc::format!(
                            "`{other}` has no instant to compare the segments of `{name}` with"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The most turns a `similar` operator reads together.
const MAX_WINDOW: u32 = 10;

impl Similar {
    fn parse(f: &mut Fields<'_>) -> Result<Similar, ProgramError> {
        let role = role_or_any(f, "role")?;
        let examples = f.strings("examples")?;
        let negative_examples = f.strings("negative-examples")?;
        let threshold = f.number("threshold")?;
        let window = f.count("window")?.unwrap_or(1);
        let scope = Scope::parse(f)?;
        if examples.is_empty() {
            return Err(f.error(
                "examples",
                "`examples` is missing: sentences that say what counts, e.g. [\"我帮您催一下\", \"I'll follow up on it\"]",
            ));
        }
        for (field, list) in [("examples", &examples), ("negative-examples", &negative_examples)] {
            if list.iter().any(|e| e.trim().is_empty()) {
                return Err(f.error(field, "an example is empty: every example must be a sentence"));
            }
        }
        if let Some(t) = threshold {
            if !(-1.0..=1.0).contains(&t) {
                return Err(f.error(
                    "threshold",
                    alloc::format!("`threshold` is a cosine similarity, between -1 and 1; got {t}"),
                ));
            }
        }
        if window == 0 || window > MAX_WINDOW {
            return Err(f.error(
                "window",
                alloc::format!("`window` counts the turns judged together: 1 to {MAX_WINDOW}, got {window}"),
            ));
        }
        Ok(Similar { role, examples, negative_examples, threshold: threshold.map(|t| t as f32), window, scope })
    }

    fn read(&self, name: &str, view: &SessionView<'_>, reading_of: &dyn Fn(&str) -> Reading) -> Reading {
        let session = view.session();
        if !session.has_transcript() {
            return Reading::Unknown("the session has no transcript".into());
        }
        let query = SimilarityQuery {
            role: self.role,
            range: self.scope.range(view),
            window: self.window,
            examples: self.examples.clone(),
            negative_examples: self.negative_examples.clone(),
            threshold: self.threshold,
        };
        let scores = match session.similar_hits(&query) {
            Ok(scores) => scores,
            Err(why) => return Reading::Failed(alloc::format!("operator `{name}`: {why}")),
        };
        let mut candidates: Vec<(Segment, (u32, f32))> =
            scores.into_iter().map(|s| (s.segment, (s.example, s.score))).collect();
        if let Err(reading) = self.scope.retain(name, view, &mut candidates, reading_of) {
            return reading;
        }
        let start = view.start();
        let hits = candidates
            .into_iter()
            .map(|(s, (example, score))| Hit {
                instant: start.map(|t| t + s.begin_ms as i64),
                offset_ms: Some(s.begin_ms),
                evidence: Evidence::Like {
                    example: self.examples.get(example as usize).cloned().unwrap_or_default(),
                    score,
                    segment: s,
                },
            })
            .collect();
        hits_or_miss(hits)
    }
}

/// A contact field an operator can read.
#[derive(Clone, Copy)]
pub enum ContactField {
    InitiatedAt,
    ConnectedToAgentAt,
    EndedAt,
    Channel,
    Queue,
    Scenario,
    Language,
    InitiationMethod,
    AgentId,
    AgentUsername,
    ContactId,
}

impl ContactField {
    const ALL: [(&'static str, ContactField); 11] = [
        ("initiated-at", ContactField::InitiatedAt),
        ("connected-to-agent-at", ContactField::ConnectedToAgentAt),
        ("ended-at", ContactField::EndedAt),
        ("channel", ContactField::Channel),
        ("queue", ContactField::Queue),
        ("scenario", ContactField::Scenario),
        ("language", ContactField::Language),
        ("initiation-method", ContactField::InitiationMethod),
        ("agent-id", ContactField::AgentId),
        ("agent-username", ContactField::AgentUsername),
        ("contact-id", ContactField::ContactId),
    ];
    const NAMES: &'static str = "initiated-at, connected-to-agent-at, ended-at, channel, queue, scenario, language, \
                                 initiation-method, agent-id, agent-username, contact-id";

    fn parse(name: &str) -> Option<ContactField> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| f.is_same(self)).map_or("", |(n, _)| n)
    }

    fn is_same(self, other: ContactField) -> bool {
        self as u8 == other as u8
    }

    fn is_instant(self) -> bool {
        matches!(self, ContactField::InitiatedAt | ContactField::ConnectedToAgentAt | ContactField::EndedAt)
    }

    fn read(self, view: &SessionView<'_>) -> Option<Json> {
        let c = view.contact();
        let text = |s: &Option<String>| s.clone().map(Json::String);
        match self {
            ContactField::InitiatedAt => c.initiated_at.map(Json::from),
            ContactField::ConnectedToAgentAt => c.connected_to_agent_at.map(Json::from),
            ContactField::EndedAt => c.ended_at.map(Json::from),
            ContactField::Channel => Some(Json::String(
                match c.channel {
                    Channel::Voice => "voice",
                    Channel::Chat => "chat",
                    Channel::Task => "task",
                    Channel::Email => "email",
                }
                .into(),
            )),
            ContactField::Queue => text(&c.queue),
            ContactField::Scenario => text(&c.scenario),
            ContactField::Language => text(&c.language),
            ContactField::InitiationMethod => {
                c.initiation_method.map(|m| Json::String(alloc::format!("{m:?}").to_lowercase()))
            }
            ContactField::AgentId => c.agent.as_ref().map(|a| Json::String(a.id.clone())),
            ContactField::AgentUsername => c.agent.as_ref().and_then(|a| text(&a.username)),
            ContactField::ContactId => Some(Json::String(c.contact_id.clone())),
        }
    }
}

/// `op` and `value` of a contact or attribute operator.
pub struct Comparison {
    op: Op,
    value: Json,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    Exists,
    Missing,
}

const OPS: &str = "==, !=, <, <=, >, >=, in, not-in, contains, exists, missing";

impl Comparison {
    /// `op` (default `==` when a `value` is given) and `value`. `required`:
    /// the operator means nothing without a comparison.
    fn parse(f: &mut Fields<'_>, required: bool) -> Result<Option<Comparison>, ProgramError> {
        let op = f.string("op")?;
        let value = f.take("value").cloned();
        let op = match (op.as_deref(), &value) {
            (None, None) if required => {
                return Err(
                    f.error("value", "`value` is missing: what the field is compared with (and `op`, default ==)")
                )
            }
            (None, None) => return Ok(None),
            (None, Some(_)) => Op::Eq,
            (Some(name), _) => match name {
                "==" | "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "in" => Op::In,
                "not-in" => Op::NotIn,
                "contains" => Op::Contains,
                "exists" => Op::Exists,
                "missing" => Op::Missing,
                other => return Err(f.error("op", alloc::format!("unknown op \"{other}\"; expected one of: {OPS}"))),
            },
        };
        let value = match (op, value) {
            (Op::Exists | Op::Missing, Some(_)) => {
                return Err(f.error("value", "`exists` and `missing` take no `value`"));
            }
            (Op::Exists | Op::Missing, None) => Json::Null,
            (_, None) => return Err(f.error("value", "`value` is missing: what the field is compared with")),
            (Op::In | Op::NotIn, Some(v)) if !v.is_array() => {
                return Err(f.error("value", describe_wrong("a list (for `in` / `not-in`)", &v)));
            }
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Some(v)) if !(v.is_number() || v.is_string()) => {
                return Err(f.error("value", describe_wrong("a number or a string to order by", &v)));
            }
            (_, Some(v)) => v,
        };
        Ok(Some(Comparison { op, value }))
    }

    /// `Some(holds)`, or `None` when the actual value is absent (or of a
    /// kind that cannot be ordered against the value): unknown.
    fn test(&self, actual: Option<&Json>) -> Option<bool> {
        let present = actual.filter(|a| !a.is_null());
        match self.op {
            Op::Exists => return Some(present.is_some()),
            Op::Missing => return Some(present.is_none()),
            _ => {}
        }
        let actual = present?;
        Some(match self.op {
            Op::Eq => same(actual, &self.value),
            Op::Ne => !same(actual, &self.value),
            Op::In => self.value.as_array().is_some_and(|l| l.iter().any(|v| same(actual, v))),
            Op::NotIn => !self.value.as_array().is_some_and(|l| l.iter().any(|v| same(actual, v))),
            Op::Contains => match (actual, &self.value) {
                (Json::String(a), Json::String(v)) => a.to_lowercase().contains(&v.to_lowercase()),
                (Json::Array(items), v) => items.iter().any(|i| same(i, v)),
                _ => false,
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let order = match (actual, &self.value) {
                    (Json::Number(a), Json::Number(v)) => a.as_f64()?.partial_cmp(&v.as_f64()?)?,
                    (Json::String(a), Json::String(v)) => a.as_str().cmp(v.as_str()),
                    _ => return None,
                };
                match self.op {
                    Op::Lt => order.is_lt(),
                    Op::Le => order.is_le(),
                    Op::Gt => order.is_gt(),
                    _ => order.is_ge(),
                }
            }
            Op::Exists | Op::Missing => unreachable!(),
        })
    }

    fn describe(&self) -> String {
        let op = match self.op {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Contains => "contains",
            Op::Exists => return "exists".into(),
            Op::Missing => return "is missing".into(),
        };
        alloc::format!("{op} {}", self.value)
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The SDK's value as JSON, for comparisons.
pub fn json_of(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s.clone()),
        Value::TextList(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        Value::Json(text) => serde_json::from_str(text).unwrap_or(Json::Null),
    }
}

/// A point in the conversation, for scopes: compared by instant when both
/// sides have one, else by offset.
#[derive(Clone, Copy)]
struct Point {
    instant: Option<i64>,
    offset_ms: Option<u32>,
}

impl Point {
    /// `Some(self >= other)`, or `None` when they share no scale.
    fn at_or_after(self, other: Point) -> Option<bool> {
        match (self.instant, other.instant, self.offset_ms, other.offset_ms) {
            (Some(a), Some(b), _, _) => Some(a >= b),
            (_, _, Some(a), Some(b)) => Some(a >= b),
            _ => None,
        }
    }
}

impl Operator {
    /// Reads the operator on the session. `reading_of` gives another
    /// operator's reading (for `after` / `before`).
    pub fn read(&self, view: &SessionView<'_>, reading_of: &dyn Fn(&str) -> Reading) -> Reading {
        let name = self.name.as_str();
        match &self.kind {
            Kind::Phrase(p) => p.read(name, view, reading_of),
            Kind::Similar(s) => s.read(name, view, reading_of),
            Kind::Event { kinds, filter } => {
                let hits: Vec<Hit> = view
                    .events()
                    .iter()
                    .filter(|e| kinds.contains(&e.kind))
                    .filter(|e| {
                        filter.iter().all(|(key, wanted)| {
                            e.attributes.iter().any(|(k, v)| k == key && same(&json_of(v), wanted))
                        })
                    })
                    .map(|e| Hit {
                        instant: Some(e.at),
                        offset_ms: view.offset_of(e.at),
                        evidence: Evidence::Event { kind: e.kind.clone(), at: e.at },
                    })
                    .collect();
                hits_or_miss(hits)
            }
            Kind::Contact { field, test } => {
                let actual = field.read(view);
                match test {
                    None => match actual.as_ref().and_then(Json::as_i64) {
                        Some(at) => Reading::Hits(alloc::vec![Hit {
                            instant: Some(at),
                            offset_ms: view.offset_of(at),
                            evidence: Evidence::Field { field: field.name(), at },
                        }]),
                        None => Reading::Unknown(alloc::format!("the contact has no {}", field.name())),
                    },
                    Some(test) => match test.test(actual.as_ref()) {
                        Some(true) => Reading::Hits(alloc::vec![Hit {
                            instant: None,
                            offset_ms: None,
                            evidence: Evidence::Written(Finding::general(alloc::format!(
                                "{name}: {} {} ({})",
                                field.name(),
                                test.describe(),
                                actual.as_ref().map_or("absent".to_string(), Json::to_string)
                            ))),
                        }]),
                        Some(false) => Reading::Miss,
                        None => Reading::Unknown(match actual {
                            None => alloc::format!("the contact has no {}", field.name()),
                            Some(v) => {
                                alloc::format!("the contact's {} is {v}, which cannot be compared", field.name())
                            }
                        }),
                    },
                }
            }
            Kind::Attribute { path, test } => {
                let actual = view.session().attribute(path).map(|v| json_of(&v));
                match test.test(actual.as_ref()) {
                    Some(true) => Reading::Hits(alloc::vec![Hit {
                        instant: None,
                        offset_ms: None,
                        evidence: Evidence::Written(Finding::general(alloc::format!(
                            "{name}: {path} {} ({})",
                            test.describe(),
                            actual.as_ref().map_or("absent".to_string(), Json::to_string)
                        ))),
                    }]),
                    Some(false) => Reading::Miss,
                    None => Reading::Unknown(match actual {
                        None => alloc::format!("the session has no attribute `{path}`"),
                        Some(v) => alloc::format!("attribute `{path}` is {v}, which cannot be compared"),
                    }),
                }
            }
            Kind::Silence { longer_than_ms } => {
                let spans = match view.characteristics() {
                    Some(c) => c.non_talk.clone(),
                    None if view.session().has_transcript() => view.session().gaps(0),
                    None => return Reading::Unknown("the session has neither characteristics nor a transcript".into()),
                };
                let hits = spans
                    .into_iter()
                    .filter(|s| s.end_ms.saturating_sub(s.begin_ms) > *longer_than_ms)
                    .map(|s| Hit {
                        instant: view.start().map(|t| t + s.begin_ms as i64),
                        offset_ms: Some(s.begin_ms),
                        evidence: Evidence::Silence { begin_ms: s.begin_ms, end_ms: s.end_ms },
                    })
                    .collect();
                hits_or_miss(hits)
            }
            Kind::TalkSpeed { role, below, above } => {
                let Some(wpm) = figures(view, *role).and_then(|f| f.words_per_minute) else {
                    return Reading::Unknown(alloc::format!("no words-per-minute figure for the {}", role_name(*role)));
                };
                let slow = below.is_some_and(|b| (wpm as f64) < b);
                let fast = above.is_some_and(|a| (wpm as f64) > a);
                if !(slow || fast) {
                    return Reading::Miss;
                }
                let bound = if slow {
                    alloc::format!("below {}", below.unwrap_or(0.0))
                } else {
                    alloc::format!("above {}", above.unwrap_or(0.0))
                };
                single(alloc::format!("{name}: {} spoke {wpm} words per minute, {bound}", role_name(*role)))
            }
            Kind::Interruptions { by, more_than } => {
                let Some(c) = view.characteristics() else {
                    return Reading::Unknown("the session has no conversation characteristics".into());
                };
                let hits: Vec<Hit> = c
                    .interruptions
                    .iter()
                    .filter(|i| by.is_none_or(|r| i.by == r))
                    .map(|i| Hit {
                        instant: view.start().map(|t| t + i.begin_ms as i64),
                        offset_ms: Some(i.begin_ms),
                        evidence: Evidence::Interruption { by: i.by, begin_ms: i.begin_ms, end_ms: i.end_ms },
                    })
                    .collect();
                if hits.len() as u64 > *more_than as u64 {
                    Reading::Hits(hits)
                } else {
                    Reading::Miss
                }
            }
            Kind::Sentiment { role, below, overall } => {
                let figures = figures(view, *role);
                let score = match (figures, overall) {
                    (Some(f), true) => f.overall_sentiment,
                    (Some(f), false) => f.sentiment_by_quarter.last().copied(),
                    (None, _) => None,
                };
                let Some(score) = score else {
                    return Reading::Unknown(alloc::format!("no sentiment figure for the {}", role_name(*role)));
                };
                if (score as f64) < *below {
                    let at = if *overall { "overall" } else { "at the end" };
                    single(alloc::format!("{name}: {} sentiment {at} {score} is below {below}", role_name(*role)))
                } else {
                    Reading::Miss
                }
            }
        }
    }
}

fn single(message: String) -> Reading {
    Reading::Hits(alloc::vec![Hit {
        instant: None,
        offset_ms: None,
        evidence: Evidence::Written(Finding::general(message))
    }])
}

fn hits_or_miss(hits: Vec<Hit>) -> Reading {
    if hits.is_empty() {
        Reading::Miss
    } else {
        Reading::Hits(hits)
    }
}

fn figures(view: &SessionView<'_>, role: Role) -> Option<callqa_sdk::RoleFigures> {
    let c: &Characteristics = view.characteristics()?;
    c.roles.iter().find(|f| f.role == role).cloned()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Customer => "customer",
        Role::System => "system",
    }
}

impl Phrase {
    fn read(&self, name: &str, view: &SessionView<'_>, reading_of: &dyn Fn(&str) -> Reading) -> Reading {
        let session = view.session();
        if !session.has_transcript() {
            return Reading::Unknown("the session has no transcript".into());
        }
        // The segments that could hit, searched by the host where a list is given.
        let listed = if self.any.is_empty() { &self.all } else { &self.any };
        let mut candidates: Vec<(Segment, Option<String>)> = if listed.is_empty() {
            let segments = match self.role {
                Some(r) => session.segments_by_role(r),
                None => session.segments(),
            };
            segments.into_iter().map(|s| (s, None)).collect()
        } else {
            session
                .keyword_hits_up_to(self.role, listed, None)
                .into_iter()
                .map(|h| (h.segment, Some(h.keyword)))
                .collect()
        };

        // Scope.
        let start = view.start();
        let point = |s: &Segment| Point { instant: start.map(|t| t + s.begin_ms as i64), offset_ms: Some(s.begin_ms) };
        if let Err(reading) = self.scope.retain(name, view, &mut candidates, reading_of) {
            return reading;
        }

        // Patterns and exclusions.
        if let Some(pattern) = &self.regex {
            candidates.retain_mut(|(s, keyword)| match find_all(pattern, &s.text) {
                Ok(found) if !found.is_empty() => {
                    keyword.get_or_insert_with(|| found[0].text.clone());
                    true
                }
                _ => false,
            });
        }
        if !self.exclude.is_empty() {
            candidates.retain(|(s, _)| callqa_sdk::helpers::contains_any(&s.text, &self.exclude).is_none());
        }
        if let Some(pattern) = &self.exclude_regex {
            candidates.retain(|(s, _)| find_all(pattern, &s.text).map_or(true, |m| m.is_empty()));
        }

        // `all`: every phrase somewhere in scope; `n`: at least n distinct phrases of `any`.
        let needed = if !self.all.is_empty() { Some(self.all.len()) } else { self.at_least.map(|n| n as usize) };
        if let Some(needed) = needed {
            let found = listed
                .iter()
                .filter(|phrase| {
                    let one = [(*phrase).clone()];
                    candidates.iter().any(|(s, _)| callqa_sdk::helpers::contains_any(&s.text, &one).is_some())
                })
                .count();
            if found < needed {
                return Reading::Miss;
            }
        }
        let hits = candidates
            .into_iter()
            .map(|(s, keyword)| Hit {
                instant: point(&s).instant,
                offset_ms: Some(s.begin_ms),
                evidence: Evidence::Said { segment: s, phrase: keyword.unwrap_or_default() },
            })
            .collect();
        hits_or_miss(hits)
    }
}
