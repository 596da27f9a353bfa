//! The contact trace record (CTR) as the ingest pipeline sees it: the few
//! fields dedup, partitioning and the daily figures need, the bytes that go
//! to the sink, and the record's fingerprint.
//!
//! Everything else in a CTR is carried through untouched: the pipeline never
//! rewrites a record's content, only (when it arrived pretty-printed or inside
//! a JSON array) its layout, to one compact line.

mod canonical;
mod contact_record;
mod fingerprint;
mod stringify;
mod utc_day;

pub use contact_record::{ContactRecord, DecodeError, Delivery, RecordDecoder};
pub use fingerprint::{Fingerprint, FingerprintMode};
pub use stringify::write_js_json;
pub use utc_day::UtcDay;
