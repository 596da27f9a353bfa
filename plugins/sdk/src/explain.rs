//! The explanation of one evaluation (`callqa:rule/explain`): the host puts
//! it on the sheet item as `trace`, on a verdict or an error alike.

use crate::bindings::callqa::rule::explain as host;

/// Attach `json` (one JSON object) to this evaluation; a second call
/// replaces the first. Past `limits.max-trace-bytes` the item becomes an
/// `output-cap` error. An object whose `outcome` is `"unknown"`, followed
/// by `Err(RuleError::Failed(..))`, marks the error as missing data in the
/// session (`missing-data`), which never quarantines the rule.
pub fn trace(json: &str) {
    host::trace(json)
}
