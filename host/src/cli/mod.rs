//! One file per subcommand: its arguments (clap) and the function that runs it.
//! Each `run` returns the process exit code; errors carry context for the user.

pub mod check;
pub mod ingest;
pub mod replay;
pub mod rule;
pub mod serve;
pub mod session;
pub mod sheets;
pub mod stats;
pub mod store;
pub mod tokens;
pub mod users;
pub mod validate;
