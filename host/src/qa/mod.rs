//! QA sheets: one per session, one item per applicable rule, with a
//! weighted total score; and the sheet store that keeps them.

mod inspector;
pub mod rerun;
mod sheet;
pub mod sheet_figures;
pub mod sheet_store;
mod sheet_table;
mod summary;

pub use inspector::Inspector;
pub use sheet::{ItemError, ItemStatus, QaSheet, SheetItem};
pub use sheet_table::SheetTable;
pub use summary::Summary;
