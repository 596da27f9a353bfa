//! `callqa`: contact-record deduplication and sandboxed WebAssembly QA rules
//! for customer-service centres.
//!
//! The modules follow the data flow (docs/architecture.md):
//! `sources` → `ctr` (decode, fingerprint) → `dedup` (claim) → `sinks`,
//! driven by `ingest`, with `stats` over what the sinks hold; and
//! `session` → `rules` (one sandboxed component per rule) → `qa` (sheets).
//! `serve` runs both as one service; `cli` is the command line, and nothing
//! else imports it.

pub mod alerts;
pub mod atomic_write;
pub mod aws;
pub mod cli;
pub mod ctr;
pub mod data_dir;
pub mod dedup;
pub mod duration;
pub mod failpoint;
pub mod http_client;
pub mod ingest;
pub mod qa;
pub mod rules;
pub mod serve;
pub mod session;
pub mod similarity;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod workbench;

// Decoding and claiming allocate a few small objects per record; glibc's
// allocator spent about a tenth of ingest time on them (perf), mimalloc a
// fraction of that. Declared in the library so the benchmarks and tests
// measure what the binary runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
