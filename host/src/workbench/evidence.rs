//! A transcript as the sheet page shows it, with each finding's evidence
//! marked in place.
//!
//! A finding names its segment (and times); where its message quotes what
//! was said (`promised "我马上帮您催", but …`) and the quote is in the
//! segment's text, the quote's characters are marked; otherwise the whole
//! segment is. Rules report segments, not character offsets (the WIT
//! `finding` has none), so the offsets are found here, once, for every rule.

use serde::Serialize;

use crate::qa::QaSheet;
use crate::session::{Role, Session};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TextPart {
    pub text: String,
    /// The anchor of the finding this text is evidence of.
    pub finding: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Turn {
    pub id: String,
    pub role: &'static str,
    /// `mm:ss` from the start of the conversation.
    pub at: String,
    pub sentiment: Option<String>,
    pub parts: Vec<TextPart>,
    pub evidence: bool,
}

/// The anchor of finding `finding` of item `item` (indexes in the sheet).
pub fn anchor(item: usize, finding: usize) -> String {
    format!("finding-{item}-{finding}")
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Customer => "customer",
        Role::System => "system",
    }
}

pub fn clock(ms: u32) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The session's segments with the sheet's evidence marked.
pub fn transcript(session: &Session, sheet: &QaSheet) -> Vec<Turn> {
    let Some(segments) = &session.segments else { return Vec::new() };
    segments
        .iter()
        .map(|segment| {
            // Character ranges (in chars) of this segment's evidence, first finding first.
            let mut marks: Vec<(usize, usize, String)> = Vec::new();
            for (i, item) in sheet.items.iter().enumerate() {
                for (j, finding) in item.findings.iter().enumerate() {
                    if finding.segment_id.as_deref() != Some(segment.id.as_str()) {
                        continue;
                    }
                    let spans = quoted_spans(&finding.message, &segment.text);
                    let spans = if spans.is_empty() { vec![(0, segment.text.chars().count())] } else { spans };
                    for (begin, end) in spans {
                        if !marks.iter().any(|(b, e, _)| begin < *e && *b < end) {
                            marks.push((begin, end, anchor(i, j)));
                        }
                    }
                }
            }
            marks.sort();
            let chars: Vec<char> = segment.text.chars().collect();
            let mut parts = Vec::new();
            let mut at = 0;
            for (begin, end, finding) in &marks {
                if *begin > at {
                    parts.push(TextPart { text: chars[at..*begin].iter().collect(), finding: None });
                }
                parts.push(TextPart { text: chars[*begin..*end].iter().collect(), finding: Some(finding.clone()) });
                at = *end;
            }
            if at < chars.len() || parts.is_empty() {
                parts.push(TextPart { text: chars[at..].iter().collect(), finding: None });
            }
            Turn {
                id: segment.id.clone(),
                role: role_name(segment.role),
                at: clock(segment.begin_ms),
                sentiment: segment.sentiment.map(|s| format!("{s:?}")),
                evidence: !marks.is_empty(),
                parts,
            }
        })
        .collect()
}

/// Where the quotes of `message` ("…", “…”, 「…」) occur in `text`, as
/// character ranges.
pub fn quoted_spans(message: &str, text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for quote in quotes(message) {
        if let Some(byte) = text.find(quote.as_str()) {
            let begin = text[..byte].chars().count();
            spans.push((begin, begin + quote.chars().count()));
        }
    }
    spans
}

/// The quoted strings of a message.
pub fn quotes(message: &str) -> Vec<String> {
    let pairs = [('"', '"'), ('“', '”'), ('「', '」'), ('‘', '’')];
    let mut out = Vec::new();
    let mut rest = message;
    while let Some((start, open)) = rest.char_indices().find(|(_, c)| pairs.iter().any(|(o, _)| o == c)) {
        let close = pairs.iter().find(|(o, _)| *o == open).map(|(_, c)| *c).unwrap_or(open);
        let after = &rest[start + open.len_utf8()..];
        let Some(end) = after.find(close) else { break };
        if end > 0 {
            out.push(after[..end].to_owned());
        }
        rest = &after[end + close.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_found_in_the_segment_by_character() {
        assert_eq!(quotes(r#"promised "我马上帮您催", but no action followed"#), vec!["我马上帮您催"]);
        assert_eq!(quotes("said “sorry” and 「不好意思」"), vec!["sorry", "不好意思"]);
        assert_eq!(quoted_spans(r#"promised "我马上帮您催""#, "好的，我马上帮您催一下"), vec![(3, 9)]);
        assert!(quoted_spans(r#"said "hello""#, "goodbye").is_empty());
        assert!(quotes(r#"unbalanced "quote"#).is_empty());
    }
}
