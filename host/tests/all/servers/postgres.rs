//! PostgreSQL for the sheet-store tests: the cluster CI started
//! (`CALLQA_TEST_POSTGRES_URL`, from scripts/test-servers.sh), one fresh
//! database per test so tests run in parallel without seeing each other.

use std::sync::atomic::{AtomicU32, Ordering};

/// A URL of a new, empty database. Fails (never skips) without a server.
pub fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::env::var("CALLQA_TEST_POSTGRES_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "CALLQA_TEST_POSTGRES_URL is not set: run the suite as the README says \
             (`source scripts/test-servers.sh && cargo test --release --workspace`), which starts PostgreSQL"
        )
    });
    let name = format!("callqa_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    // On a thread of its own: the blocking client cannot run inside an
    // async test's runtime.
    let (url, database) = (base.clone(), name.clone());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("CALLQA_TEST_POSTGRES_URL={url} is set but does not answer: {e}"));
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {database}")).unwrap();
    })
    .join()
    .expect("cannot create a test database");
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database name");
    format!("{prefix}/{name}")
}
