//! The host's helper functions (`callqa:rule/helpers`), implemented natively
//! by the host so every rule gets the same semantics and the same speed.

pub use crate::bindings::callqa::rule::helpers::{Direction, TextMatch};
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

/// Index of the first keyword found in `text` (case-insensitive).
pub fn contains_any(text: &str, keywords: &[String]) -> Option<usize> {
    host::contains_any(text, keywords).map(|i| i as usize)
}
