//! The host's helper functions (`callqa:rule/helpers`), implemented natively
//! by the host so every rule gets the same semantics and the same speed.

pub use crate::bindings::callqa::rule::helpers::{Direction, TextMatch};
use std::borrow::Cow;

use crate::bindings::callqa::rule::helpers as host;
use crate::Instant;

/// Minutes from `start` to `end`; negative when `end` is earlier.
pub fn minutes_between(start: Instant, end: Instant) -> f64 {
    host::minutes_between(start, end)
}

/// The instant in `candidates` nearest to `pivot` on the given side
/// (`Before`: at or before; `After`: at or after), with its index.
pub fn nearest(pivot: Instant, candidates: &[Instant], side: Direction) -> Option<(usize, Instant)> {
    host::nearest(pivot, candidates, side).map(|i| (i as usize, candidates[i as usize]))
}

/// Every match of a regular expression in `text` (Rust `regex` syntax,
/// Unicode-aware; the host caches the compiled pattern).
pub fn find_all(pattern: &str, text: &str) -> Result<Vec<TextMatch>, String> {
    host::find_all(pattern, text)
}

/// Index of the first keyword found in `text`, case-insensitively. Where a
/// keyword starts or ends with a letter or digit of an alphabetic script it
/// must sit at a word boundary there ("hi" is not found in "this"); CJK
/// keywords match anywhere.
///
/// This runs in the rule, with the very algorithm of the host's
/// `contains-any` (`callqa::rules::host::helpers::contains_any`, which other
/// guest languages call): asking the host meant copying the whole keyword
/// list across the sandbox boundary for every segment, and that copying was
/// most of the time of a keyword search over a transcript.
pub fn contains_any<K: AsRef<str>>(text: &str, keywords: &[K]) -> Option<usize> {
    let haystack = lowercase(text);
    keywords.iter().position(|k| {
        let needle = lowercase(k.as_ref());
        !needle.is_empty()
            && haystack.contains(&*needle)
            && haystack.match_indices(&*needle).any(|(at, m)| at_word_boundaries(&haystack, at, at + m.len()))
    })
}

/// The host's `contains-any`, for comparison and for rules that want the
/// host to do the search.
pub fn host_contains_any(text: &str, keywords: &[String]) -> Option<usize> {
    host::contains_any(text, keywords).map(|i| i as usize)
}

/// Lower case, without allocating for text that has no upper case.
fn lowercase(text: &str) -> Cow<'_, str> {
    let has_upper = if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        text.chars().any(|c| {
            let mut lower = c.to_lowercase();
            lower.next() != Some(c) || lower.next().is_some()
        })
    };
    if has_upper {
        Cow::Owned(text.to_lowercase())
    } else {
        Cow::Borrowed(text)
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
