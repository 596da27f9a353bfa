//! QA sheets: one per session, one item per applicable rule, with a
//! weighted total score.

mod inspector;
mod sheet;
mod summary;

pub use inspector::Inspector;
pub use sheet::{ItemError, ItemStatus, QaSheet, SheetItem};
pub use summary::Summary;
