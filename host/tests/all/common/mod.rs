//! Shared by the integration tests: paths, the `callqa` binary, and the
//! test-only rule components (built here from `tests/rules/`).
#![allow(dead_code)]

pub mod test_data;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use callqa::rules::{RuleEngine, RuleModule};
use callqa::session::Session;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A per-run compiled-module cache, so tests share compilation work but
/// never a developer's own cache.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("module-cache")
}

/// The `callqa` binary, with the test cache.
pub fn callqa() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callqa"));
    cmd.env("CALLQA_CACHE_DIR", cache_dir()).current_dir(repo_root());
    cmd
}

pub fn engine() -> Arc<RuleEngine> {
    static ENGINE: OnceLock<Arc<RuleEngine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(RuleEngine::new(Some(cache_dir())).expect("engine"))).clone()
}

/// Path of a test-only component (`hostile`, `wrong-world`,
/// `unknown-import`), built on first use.
pub fn test_rule(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let manifest = repo_root().join("host/tests/rules/Cargo.toml");
        let target = repo_root().join("host/tests/rules/target");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build the test rules");
        assert!(status.success(), "building the test rules failed");
        target.join("wasm32-wasip2/release")
    });
    dir.join(format!("{}.wasm", name.replace('-', "_")))
}

pub fn load_module(source: &str) -> Arc<RuleModule> {
    RuleModule::load(&engine(), source, &repo_root()).unwrap_or_else(|e| panic!("load {source}: {e}"))
}

/// A voice session with one agent segment saying `text`, normalised.
pub fn one_segment_session(id: &str, text: &str) -> Arc<Session> {
    let mut session: Session = serde_json::from_value(serde_json::json!({
        "id": id, "contact": {"contact_id": id, "channel": "voice"},
        "segments": [{"id": "t1", "role": "agent", "text": text, "begin_ms": 0, "end_ms": 900}]
    }))
    .unwrap();
    session.normalise().unwrap();
    Arc::new(session)
}
