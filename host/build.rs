//! Builds the bundled rules (the `plugins/` workspace) for `wasm32-wasip2` and
//! embeds them in the host, so `cargo run -- check` needs no manual wasm
//! step. Operators can still load any `.wasm` by path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target. rustup adds the targets a `rust-toolchain.toml` lists
/// only when it installs the toolchain, not to one already installed.
const TARGET: &str = "wasm32-wasip2";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().expect("host/ sits in the workspace root");
    let plugins = root.join("plugins");
    // First, before anything is built: a missing target would otherwise
    // surface as `can't find crate for core` after minutes of output.
    ensure_target(root)?;
    let bundled = bundled_rules(&plugins)?;
    println!("cargo:rerun-if-changed={}", plugins.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    watch(&plugins);
    // Guest crates outside plugins/ (the script language of `bundled:script`).
    watch(&root.join("crates"));

    let target_dir = plugins.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for name in &bundled {
        build.args(["-p", name]);
    }
    // The outer build's settings are for the host target, not for the
    // guests; `cargo clippy` passes its driver down as a wrapper, and the
    // guests are built here, not linted.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
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
        "building the bundled rules failed ({status}); the compiler's messages are above"
    );

    let mut generated =
        String::from("/// The bundled rules: (name, component bytes).\npub const BUNDLED: &[(&str, &[u8])] = &[\n");
    for name in &bundled {
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

/// Whether the active toolchain has the guest target's standard library;
/// adds it through rustup when it can, and otherwise stops with the command.
fn ensure_target(root: &Path) -> anyhow::Result<()> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    anyhow::ensure!(sysroot.status.success(), "`{rustc} --print sysroot` failed");
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib").join(TARGET).join("lib").is_dir() {
        return Ok(());
    }
    // Run from the workspace root, so rustup picks the toolchain that
    // rust-toolchain.toml pins, which is the one building this.
    let added = Command::new("rustup").args(["target", "add", TARGET]).current_dir(root).status();
    match added {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => anyhow::bail!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed ({status}); \
             run it by hand, then build again"
        ),
        Err(_) => anyhow::bail!(
            "the {TARGET} target is missing from {} and rustup is not on PATH: install the target for this \
             toolchain (with rustup: `rustup target add {TARGET}`), then build again",
            sysroot.display()
        ),
    }
}

/// The bundled rules are the plugins workspace's members that build a
/// component (`crate-type = ["cdylib"]`), so adding a rule to `members` in
/// plugins/Cargo.toml is all it takes; each becomes `bundled:<name>`.
fn bundled_rules(plugins: &Path) -> anyhow::Result<Vec<String>> {
    let manifest = |path: &Path| -> anyhow::Result<toml::Table> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        text.parse().map_err(|e| anyhow::anyhow!("{} is not valid TOML: {e}", path.display()))
    };
    let workspace = manifest(&plugins.join("Cargo.toml"))?;
    let members = workspace
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .ok_or_else(|| anyhow::anyhow!("plugins/Cargo.toml has no [workspace] members"))?;
    let mut bundled = Vec::new();
    for member in members.iter().filter_map(|m| m.as_str()) {
        let crate_manifest = manifest(&plugins.join(member).join("Cargo.toml"))?;
        let is_component = crate_manifest
            .get("lib")
            .and_then(|lib| lib.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
        if is_component {
            let name = crate_manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str());
            bundled.push(name.unwrap_or(member).to_string());
        }
    }
    anyhow::ensure!(!bundled.is_empty(), "plugins/Cargo.toml names no rule crates");
    Ok(bundled)
}
