//! `forbidden-phrases`: the agent never says a phrase or pattern from a list.
//!
//! Every segment of `role` is searched for each of `phrases`
//! (case-insensitive substrings, matched by the host) and each of `patterns`
//! (regular expressions, Rust `regex` syntax, matched by the host's
//! `find-all`). One finding per hit: per phrase found in a segment, and per
//! match of a pattern. Fails (score 0) on any hit, passes (score 1) otherwise.
//! Not applicable when the session has no transcript or `role` never speaks.
//! See README.md for the exact semantics.

#![no_std]

#[macro_use]
extern crate alloc;

use callqa_sdk::helpers::contains_any;
use callqa_sdk::prelude::*;

struct ForbiddenPhrases;

const DEFAULT_PHRASES: &[&str] = &[
    // Chinese: dismissive, blaming or rude service language.
    "不知道",
    "没办法",
    "你听不懂吗",
    "听不懂吗",
    "不归我管",
    "不是我的问题",
    "不关我的事",
    "跟我没关系",
    "你自己看",
    "你自己去查",
    "爱买不买",
    "随便你",
    "你去投诉吧",
    "投诉也没用",
    "烦不烦",
    "有完没完",
    "我已经说过了",
    "说了多少遍",
    // English.
    "shut up",
    "not my problem",
    "not my job",
    "calm down",
    "i don't know",
    "i don’t know",
    "there's nothing i can do",
    "there’s nothing i can do",
    "you people",
    "deal with it",
    "i already told you",
    "how many times do i have to",
];

const DEFAULT_PATTERNS: &[&str] = &[
    // Insults, English.
    r"(?i)\b(?:stupid|idiot|moron|dumb)\b",
    // "What's wrong with you", with a straight or curly apostrophe.
    r"(?i)\bwhat(?:'|’)?s\s+wrong\s+with\s+you\b",
    // "你是不是傻", "您傻吗", "你笨".
    r"[你您](?:是不是)?(?:傻|笨)",
];

impl Rule for ForbiddenPhrases {
    fn describe() -> Descriptor {
        Descriptor::new("forbidden-phrases", "0.1.0", "The agent never says a forbidden phrase or pattern")
            .param(ParamSpec::text_list("phrases", DEFAULT_PHRASES, "Forbidden phrases (case-insensitive substrings)"))
            .param(ParamSpec::text_list(
                "patterns",
                DEFAULT_PATTERNS,
                "Forbidden regular expressions (Rust regex syntax; add (?i) for case-insensitive)",
            ))
            .param(ParamSpec::text(
                "role",
                Some("agent"),
                "Whose segments are searched: agent, customer, system or any",
            ))
    }

    fn evaluate(session: &Session, params: &Params) -> Result<Verdict, RuleError> {
        let phrases: Vec<String> = params.text_list("phrases")?.into_iter().filter(|p| !p.trim().is_empty()).collect();
        let patterns: Vec<String> = params.text_list("patterns")?.into_iter().filter(|p| !p.is_empty()).collect();
        let role_name = params.text("role")?;
        let role = match role_name.trim().to_ascii_lowercase().as_str() {
            "agent" => Some(Role::Agent),
            "customer" => Some(Role::Customer),
            "system" => Some(Role::System),
            "any" | "*" => None,
            _ => {
                return Err(RuleError::BadParams(format!(
                    "parameter `role` must be agent, customer, system or any, got \"{role_name}\""
                )))
            }
        };
        // Validate every pattern up front, so a bad one is reported whatever
        // the session holds.
        for p in &patterns {
            if let Err(e) = find_all(p, "") {
                return Err(bad_pattern(p, &e));
            }
        }

        if !session.has_transcript() {
            return Ok(Verdict::not_applicable("the session has no transcript"));
        }
        let segments = match role {
            Some(r) => session.segments_by_role(r),
            None => session.segments(),
        };
        if segments.is_empty() {
            return Ok(Verdict::not_applicable(format!("no segment of role `{role_name}` in the transcript")));
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
            // The host reports the first phrase found; ask again with the
            // rest of the list to find every phrase, in list order.
            let mut found: Vec<&String> = Vec::new();
            let mut start = 0;
            while start < phrases.len() {
                let Some(i) = contains_any(&seg.text, &phrases[start..]) else { break };
                found.push(&phrases[start + i]);
                start += i + 1;
            }
            // A phrase inside a longer phrase found in the same segment
            // ("听不懂吗" in "你听不懂吗") is the same hit: report the longer.
            // Case-insensitive containment is asked of the host, which keeps
            // Unicode case tables out of the module.
            for (k, p) in found.iter().enumerate() {
                let one = [(*p).clone()];
                let shadowed = found
                    .iter()
                    .enumerate()
                    .any(|(j, q)| j != k && (q.len() > p.len() || j < k) && contains_any(q, &one).is_some());
                if !shadowed {
                    hit(Finding::at(seg, format!("forbidden phrase \"{}\"", clip(p, 200))));
                }
            }
            for p in &patterns {
                let matches = find_all(p, &seg.text).map_err(|e| bad_pattern(p, &e))?;
                for m in matches.iter().filter(|m| m.end_char > m.begin_char) {
                    hit(Finding::at(
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
            Ok(Verdict::pass()
                .score(1.0)
                .reason(format!("no forbidden phrase in {} {role_name} segment(s)", segments.len())))
        } else {
            if hits > findings.len() {
                findings.push(Finding::general(format!("{} more hit(s) not listed", hits - findings.len())));
            }
            Ok(Verdict::fail(format!("{hits} forbidden phrase hit(s)")).score(0.0).findings(findings))
        }
    }
}

/// Findings listed at most; the host caps a verdict's findings (100 by
/// default), and past this many a reviewer has seen enough. The rest are
/// counted in one last finding.
const MAX_LISTED: usize = 50;

fn bad_pattern(pattern: &str, error: &str) -> RuleError {
    RuleError::BadParams(format!(
        "parameter `patterns`: invalid pattern \"{}\": {}",
        clip(pattern, 200),
        clip(error, 1000)
    ))
}

/// At most `max` characters of `s`, with "…" when cut (the host caps
/// message sizes).
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

export_rule!(ForbiddenPhrases, stateless, no_std);
