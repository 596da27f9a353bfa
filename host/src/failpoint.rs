//! Crash-test hooks. The crash tests kill `callqa` at each step of the
//! claim protocol and check that a rerun loses and doubles nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Test hook for crash tests: with `CALLQA_FAILPOINT=<stage>:<n>` the process
/// kills itself with SIGKILL the n-th time it reaches `<stage>`
/// (`after-claim`, `before-rename`, `between-renames`, `after-sink-write`,
/// `after-complete`). Unset, it costs one load per batch.
pub fn failpoint(stage: &str) {
    static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let config = CONFIG.get_or_init(|| {
        let spec = std::env::var("CALLQA_FAILPOINT").ok()?;
        let (name, count) = spec.split_once(':')?;
        Some((name.to_string(), count.parse().ok()?))
    });
    if let Some((name, count)) = config {
        if name == stage && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *count {
            #[cfg(unix)]
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::process::abort();
        }
    }
}
