//! `callqa:rule/helpers`: time arithmetic and text search, done natively
//! once for every rule (and every guest language).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use regex::Regex;
use wasmtime::component::{HasSelf, Linker};

use crate::rules::bindings::helpers::{self as wit, Direction, TextMatch};
use crate::rules::bindings::types::Instant;
use crate::rules::store::StoreState;

pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    Ok(wit::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |state| state)?)
}

/// Longest pattern a rule may ask the host to compile; beyond this the
/// compile cost belongs in the rule's own budget, not the host's.
const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled patterns kept; the cache is cleared when full (rulesets use a
/// handful of patterns, so this only bounds a hostile rule).
const MAX_CACHED_PATTERNS: usize = 1024;

/// Compiled patterns shared by every evaluation of the engine.
///
/// Each entry is one shared `Regex` (in an `Arc`), not a clone per call: a
/// cloned `Regex` starts with an empty cache of its lazy DFA, which it then
/// rebuilds on every search; sharing keeps the DFA states warm across calls.
#[derive(Default)]
pub struct PatternCache {
    compiled: Mutex<HashMap<String, Result<Arc<Regex>, String>>>,
}

impl PatternCache {
    pub fn get(&self, pattern: &str) -> Result<Arc<Regex>, String> {
        if let Some(hit) = self.compiled.lock().get(pattern) {
            return hit.clone();
        }
        let compiled = if pattern.len() > MAX_PATTERN_BYTES {
            Err(format!("pattern is {} bytes, the limit is {MAX_PATTERN_BYTES}", pattern.len()))
        } else {
            regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map(Arc::new).map_err(|e| e.to_string())
        };
        let mut cache = self.compiled.lock();
        if cache.len() >= MAX_CACHED_PATTERNS {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), compiled.clone());
        compiled
    }
}

impl wit::Host for StoreState {
    fn minutes_between(&mut self, start: Instant, end: Instant) -> wasmtime::Result<f64> {
        Ok(minutes_between(start, end))
    }

    fn nearest(&mut self, pivot: Instant, candidates: Vec<Instant>, side: Direction) -> wasmtime::Result<Option<u32>> {
        Ok(nearest(pivot, &candidates, side).map(|i| i as u32))
    }

    fn find_all(&mut self, pattern: String, text: String) -> wasmtime::Result<Result<Vec<TextMatch>, String>> {
        Ok(self.patterns.get(&pattern).map(|re| find_all(&re, &text)))
    }

    fn contains_any(&mut self, text: String, keywords: Vec<String>) -> wasmtime::Result<Option<u32>> {
        Ok(contains_any(&text, &keywords).map(|i| i as u32))
    }
}

pub fn minutes_between(start: Instant, end: Instant) -> f64 {
    (end - start) as f64 / 60_000.0
}

/// The candidate nearest to `pivot` on one side (inclusive); the first of
/// equals wins so the answer is stable.
pub fn nearest(pivot: Instant, candidates: &[Instant], side: Direction) -> Option<usize> {
    let on_side = |c: Instant| match side {
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

/// Matches with character (not byte) offsets, so they mean the same in
/// every guest language and for Chinese text.
pub fn find_all(re: &Regex, text: &str) -> Vec<TextMatch> {
    let mut out = Vec::new();
    let mut chars_before = 0u32;
    let mut last_byte = 0usize;
    for m in re.find_iter(text) {
        chars_before += text[last_byte..m.start()].chars().count() as u32;
        let len = m.as_str().chars().count() as u32;
        out.push(TextMatch { begin_char: chars_before, end_char: chars_before + len, text: m.as_str().to_owned() });
        chars_before += len;
        last_byte = m.end();
    }
    out
}

/// Index of the first keyword found, case-insensitively. A keyword edge that
/// is a letter or digit of an alphabetic script must sit at a word boundary
/// ("hi" is not found in "this"); CJK text has no word boundaries, so there
/// a keyword matches anywhere.
pub fn contains_any<K: AsRef<str>>(text: &str, keywords: &[K]) -> Option<usize> {
    KeywordMatcher::new(keywords).first_in(text)
}

/// Keywords lower-cased once, to search many texts (`session.find-segments`)
/// with `contains_any`'s semantics.
pub struct KeywordMatcher<'k> {
    needles: Vec<Cow<'k, str>>,
}

impl<'k> KeywordMatcher<'k> {
    pub fn new<K: AsRef<str>>(keywords: &'k [K]) -> Self {
        KeywordMatcher { needles: keywords.iter().map(|k| lowercase(k.as_ref())).collect() }
    }

    /// Index of the first keyword found in `text`.
    pub fn first_in(&self, text: &str) -> Option<usize> {
        let haystack = lowercase(text);
        self.needles.iter().position(|needle| {
            // `contains` first: its short-needle search has no set-up cost,
            // and most keywords are absent from most segments.
            !needle.is_empty()
                && haystack.contains(&**needle)
                && haystack.match_indices(&**needle).any(|(at, m)| at_word_boundaries(&haystack, at, at + m.len()))
        })
    }
}

/// Lower case, without allocating for text that has no upper case (most
/// keyword lists, and all CJK text).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_respects_the_side_and_includes_the_pivot() {
        let c = [100, 200, 300];
        assert_eq!(nearest(250, &c, Direction::Before), Some(1));
        assert_eq!(nearest(250, &c, Direction::After), Some(2));
        assert_eq!(nearest(200, &c, Direction::Before), Some(1));
        assert_eq!(nearest(50, &c, Direction::Before), None);
        assert_eq!(nearest(350, &c, Direction::After), None);
    }

    #[test]
    fn matches_carry_character_offsets_in_chinese_text() {
        let cache = PatternCache::default();
        let re = cache.get("催单|加急").unwrap();
        let found = find_all(&re, "您好，我想催单，麻烦加急");
        let spans: Vec<_> = found.iter().map(|m| (m.begin_char, m.end_char, m.text.as_str())).collect();
        assert_eq!(spans, vec![(5, 7, "催单"), (10, 12, "加急")]);
        assert!(cache.get("(unclosed").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn keywords_match_case_insensitively() {
        let k = vec!["Hello".to_string(), "您好".to_string()];
        assert_eq!(contains_any("oh HELLO there", &k), Some(0));
        assert_eq!(contains_any("喂，您好", &k), Some(1));
        assert_eq!(contains_any("nothing", &k), None);
    }

    #[test]
    fn latin_keywords_need_word_boundaries_and_cjk_ones_do_not() {
        let hi = vec!["hi".to_string()];
        assert_eq!(contains_any("this is Dana", &hi), None);
        assert_eq!(contains_any("Hi, this is Dana", &hi), Some(0));
        assert_eq!(contains_any("oh hi!", &hi), Some(0));
        let cjk = vec!["您好".to_string()];
        assert_eq!(contains_any("喂您好啊", &cjk), Some(0));
        let phrase = vec!["thank you for calling".to_string()];
        assert_eq!(contains_any("Thank you for calling ACME", &phrase), Some(0));
    }
}
