//! Builds the Extism plugin (`extism-plugin/`) for `wasm32-unknown-unknown`,
//! the target the Extism Rust PDK documents, and hands its path to the crate.

use std::path::PathBuf;
use std::process::Command;

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let plugin = manifest_dir.join("extism-plugin");
    println!("cargo:rerun-if-changed={}", plugin.join("src").display());
    println!("cargo:rerun-if-changed={}", plugin.join("Cargo.toml").display());
    let target_dir = plugin.join("target");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(plugin.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host target, not the plugin.
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
    let status = build.status()?;
    anyhow::ensure!(status.success(), "building the Extism plugin failed ({status}); is the wasm32-unknown-unknown target installed? (`rustup target add wasm32-unknown-unknown`)");
    let wasm = target_dir.join("wasm32-unknown-unknown/release/callqa_compare_extism_plugin.wasm");
    anyhow::ensure!(wasm.exists(), "the Extism plugin was not built at {}", wasm.display());
    println!("cargo:rustc-env=EXTISM_PLUGIN_WASM={}", wasm.display());
    Ok(())
}
