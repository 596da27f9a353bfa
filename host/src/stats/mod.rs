//! Daily contact figures over what `callqa ingest` wrote to a directory sink.
//!
//! Each ContactId counts once, at its latest version (highest
//! `LastUpdateTimestamp`), on the day its `InitiationTimestamp` falls on in
//! the chosen time zone. A late update, even days later, replaces the earlier
//! version's figures rather than adding to them.

mod contact_version;
mod daily_figures;
mod report_format;

pub use contact_version::{ContactVersion, LatestVersions};
pub use daily_figures::{DailyFigures, DailyRow, GroupBy};
pub use report_format::ReportFormat;
