//! Builds the bundled rules (the `plugins/` workspace) for `wasm32-wasip2` and
//! embeds them in the host, so `cargo run -- check` needs no manual wasm
//! step. Operators can still load any `.wasm` by path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The bundled rules, by crate name; each becomes `bundled:<name>`.
const BUNDLED: &[&str] = &[
    "greeting",
    "forbidden-phrases",
    "silence",
    "talk-speed",
    "chase-follow-up",
    "interruptions",
    "non-talk",
    "sentiment-ending",
    "chat-response",
];

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().expect("host/ sits in the workspace root");
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    watch(&plugins);

    let target_dir = plugins.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for name in BUNDLED {
        build.args(["-p", name]);
    }
    // The outer build's settings are for the host target, not for the guests.
    for var in
        ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"]
    {
        build.env_remove(var);
    }
    for (var, _) in std::env::vars() {
        if var.starts_with("CARGO_PROFILE_") || var.starts_with("CARGO_CFG_") {
            build.env_remove(var);
        }
    }
    // A 16 KiB shadow stack instead of Rust's default 1 MiB: the bundled
    // rules do not recurse, and stack, data and the start of the heap then
    // fit in one 64 KiB page. A rule whose memory starts at one page runs
    // on the engine tier that resets memory by rewriting it, 2 µs less per
    // fresh evaluation than the page scan (`engine::MemoryReset`). The
    // stack comes first in memory, so an overflow traps instead of
    // overwriting data.
    build.env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=-zstack-size=16384");
    let status = build.status()?;
    anyhow::ensure!(
        status.success(),
        "building the bundled rules failed ({status}); is the wasm32-wasip2 target installed? (`rustup target add wasm32-wasip2`)"
    );

    let mut generated =
        String::from("/// The bundled rules: (name, component bytes).\npub const BUNDLED: &[(&str, &[u8])] = &[\n");
    for name in BUNDLED {
        let wasm = target_dir.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        anyhow::ensure!(wasm.exists(), "the bundled rule {name} was not built at {}", wasm.display());
        generated.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", wasm.display().to_string()));
    }
    generated.push_str("];\n");
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR")?).join("bundled.rs"), generated)?;
    Ok(())
}

/// Rebuild when a guest source changes, without watching build output.
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
