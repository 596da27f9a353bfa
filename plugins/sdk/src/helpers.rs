//! The host's helper functions (`callqa:rule/helpers`), implemented natively
//! by the host so every rule gets the same semantics and the same speed.

use crate::alloc_types::*;
use crate::bindings::callqa::rule::helpers as host;
pub use crate::bindings::callqa::rule::helpers::{Direction, TextMatch};
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

/// `f64::round` (half away from zero) for rules built without std, where
/// float rounding is not available.
pub fn round(x: f64) -> f64 {
    // Past 2^52 every f64 is already an integer; NaN and infinities stay as they are.
    if !x.is_finite() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    let truncated = x as i64 as f64;
    let rest = x - truncated;
    if rest >= 0.5 {
        truncated + 1.0
    } else if rest <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}
