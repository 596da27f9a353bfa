//! QA sheets: one per session, one item per applicable rule, with a
//! weighted total score.

mod inspector;
mod sheet;
mod summary;
mod verdict;

pub use inspector::Inspector;
pub use sheet::{ItemError, ItemStatus, QaSheet, SheetItem};
pub use summary::Summary;
pub use verdict::{Finding, Outcome, Verdict};
