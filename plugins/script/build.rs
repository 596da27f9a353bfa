//! The interpreter recurses (a parser and an evaluator over nested
//! expressions, bounded at 256 levels by `callqa_script::MAX_DEPTH`): it
//! needs a larger shadow stack than the 16 KiB `host/build.rs` gives the
//! bundled rules. Build-script link arguments come after RUSTFLAGS on the
//! linker's command line, and wasm-ld takes the last `-z stack-size`.
fn main() {
    println!("cargo:rustc-link-arg-cdylib=-zstack-size=1048576");
}
