//! Rules in JavaScript and Python, built for real: `plugins/js-greeting`
//! (componentize-js) and `plugins/python-greeting` (componentize-py) are
//! built from source and must pass the Rust greeting's golden cases;
//! `rule new --lang js|python` scaffolds must build with the command `rule
//! new` prints and pass their golden case.
//!
//! The tools are installed by `scripts/rule-toolchains.sh` (which
//! `scripts/test-servers.sh` and `.ci/run` source). A missing tool fails
//! these tests with how to install it: a skipped test would let a broken
//! language go unnoticed.
//!
//! Each module is built once per run and shared by the tests that need it.
//! Neither tool writes the same bytes twice (their snapshots differ), so the
//! compiled-module cache cannot carry compilation over between runs; within a
//! run the `callqa` processes and this one share it.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use callqa::rules::engine::{MAX_LIVE_INSTANCES, SMALL_MEMORY_BYTES};
use callqa::rules::store::StoreState;
use callqa::rules::{Limits, MemoryReset, RuleEngine, RuleModule};
use callqa::session::Session;

const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The build flags of plugins/js-greeting/README.md: every WASI feature off,
/// so the component imports only the callqa interfaces.
const JS_DISABLE: &[&str] = &["--disable", "stdio", "random", "clocks", "http", "fetch-event"];

fn componentize_js() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        find_tool(
            "componentize-js",
            "CALLQA_COMPONENTIZE_JS",
            common::repo_root().join("node_modules/.bin/componentize-js"),
            COMPONENTIZE_JS_VERSION,
            "run `npm ci` at the repository root",
        )
    })
}

fn componentize_py() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        // Where scripts/rule-toolchains.sh installs it by default.
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        let default = cache.join(format!("callqa/tools/componentize-py-{COMPONENTIZE_PY_VERSION}/bin/componentize-py"));
        find_tool(
            "componentize-py",
            "CALLQA_COMPONENTIZE_PY",
            default,
            COMPONENTIZE_PY_VERSION,
            &format!("`python3 -m pip install componentize-py=={COMPONENTIZE_PY_VERSION}`"),
        )
    })
}

/// `$var`, else the default location; the pinned version, or a failure that
/// says how to get it.
fn find_tool(name: &str, var: &str, default: PathBuf, version: &str, install: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let how = format!(
        "`source scripts/rule-toolchains.sh` installs it and exports {var} (or {install} and set {var} to the program)"
    );
    let out = Command::new(&path).arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "{name} {version} is needed to build the JavaScript/Python rules, and {} cannot be run ({e}): {how}",
            path.display()
        )
    });
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(version), "{} is {name} `{}`, the tests pin {version}: {how}", path.display(), said.trim());
    path
}

/// `PATH` with the tool's directory first, for build commands that name the
/// tool bare, as a rule author's shell would.
fn path_with(tool: &Path) -> std::ffi::OsString {
    let mut dirs = vec![tool.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// An empty directory for one build's output, outside `plugins/` (which
/// host/build.rs watches).
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rule-languages").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn js_greeting() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let repo = common::repo_root();
        let out = fresh_dir("js-greeting").join("greeting.wasm");
        run(
            "building plugins/js-greeting",
            Command::new(componentize_js())
                .arg("--wit")
                .arg(repo.join("wit"))
                .args(["--world-name", "qa-rule"])
                .args(JS_DISABLE)
                .arg("--out")
                .arg(&out)
                .arg(repo.join("plugins/js-greeting/src/greeting.js")),
        );
        out
    })
}

fn python_greeting() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let repo = common::repo_root();
        let dir = fresh_dir("python-greeting");
        // componentize-py writes __pycache__ beside the sources it reads:
        // build from a copy so plugins/ stays as checked in.
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::copy(repo.join("plugins/python-greeting/src/greeting.py"), src.join("greeting.py")).unwrap();
        let out = dir.join("greeting.wasm");
        run(
            "building plugins/python-greeting",
            Command::new(componentize_py())
                .arg("-d")
                .arg(repo.join("wit"))
                .args(["-w", "qa-rule", "componentize", "-p"])
                .arg(&src)
                .arg("greeting")
                .arg("-o")
                .arg(&out),
        );
        out
    })
}

/// `callqa rule test MODULE plugins/greeting/golden` passes every case, and
/// the module describes itself exactly as the Rust greeting does (same id,
/// parameters and defaults), so a ruleset can swap one for the other.
fn passes_the_rust_greetings_golden_cases(module: &Path) {
    let golden = common::repo_root().join("plugins/greeting/golden");
    let cases = std::fs::read_dir(&golden)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert!(cases >= 10, "expected the greeting's golden cases in {}", golden.display());
    let out = common::callqa().args(["rule", "test"]).arg(module).arg(&golden).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}:\n{stdout}{}", module.display(), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{cases} passed, 0 failed")), "{stdout}");

    let twin = common::load_module(&module.display().to_string());
    let rust = common::load_module("bundled:greeting");
    assert_eq!(format!("{:?}", twin.descriptor), format!("{:?}", rust.descriptor));
    // A language runtime's megabytes of memory are reset by the page scan,
    // not rewritten in full (`tests/memory_reset.rs` for the Rust side).
    assert_eq!(
        twin.reset,
        MemoryReset::DirtyPages,
        "{} starts with {} bytes of memory",
        module.display(),
        twin.initial_memory
    );
    assert!(twin.initial_memory > SMALL_MEMORY_BYTES);
}

#[test]
fn js_greeting_passes_the_rust_greetings_golden_cases() {
    passes_the_rust_greetings_golden_cases(js_greeting());
}

#[test]
fn python_greeting_passes_the_rust_greetings_golden_cases() {
    passes_the_rust_greetings_golden_cases(python_greeting());
}

/// `rule new NAME --lang LANG`, then the build command it prints, run in the
/// project with `tool` on PATH, then `rule test` on the golden case it wrote.
fn scaffold_builds_and_passes(lang: &str, tool: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "callqa rule new",
        common::callqa().args(["rule", "new", "polite-close", "--lang", lang, "--dir"]).arg(dir.path()),
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = |label: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{said}"))
            .to_owned()
    };
    let (build, test) = (line("build:"), line("test:"));
    let module = test
        .strip_prefix("callqa rule test ")
        .and_then(|t| t.strip_suffix(" golden/"))
        .unwrap_or_else(|| panic!("{test}"));
    let project = dir.path().join("polite-close");
    assert!(project.join("wit/rule.wit").is_file(), "the WIT is copied in");

    run(
        &format!("the scaffold's build command `{build}`"),
        Command::new("sh").args(["-c", &build]).current_dir(&project).env("PATH", path_with(tool)),
    );
    let out =
        common::callqa().args(["rule", "test"]).arg(project.join(module)).arg(project.join("golden")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

#[test]
fn a_scaffolded_js_rule_builds_and_passes_its_golden_case() {
    // `npm run build` finds componentize-js on PATH, as after `npm install`.
    scaffold_builds_and_passes("js", componentize_js());
}

#[test]
fn a_scaffolded_python_rule_builds_and_passes_its_golden_case() {
    scaffold_builds_and_passes("python", componentize_py());
}

/// The pool is sized in evaluations alive at once; a componentize-py rule
/// instantiates 13 core modules per evaluation, and the pool must still hold
/// that many of them.
#[test]
fn the_engine_holds_as_many_live_python_evaluations_as_rust_ones() {
    // An engine of its own: this test fills every slot of its pool.
    let engine = RuleEngine::new(Some(common::cache_dir())).unwrap();
    let module = RuleModule::load(&engine, &python_greeting().display().to_string(), ".".as_ref()).unwrap();
    let limits = Limits::default();
    let session = Arc::new(Session::placeholder());
    let mut alive = Vec::new();
    for i in 0..MAX_LIVE_INSTANCES {
        let mut store =
            module.new_store(StoreState::new("live".into(), session.clone(), &limits, engine.patterns_for_bench()));
        store.set_fuel(limits.fuel).unwrap();
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = module
            .instantiate(&mut store)
            .unwrap_or_else(|e| panic!("live evaluation {} of {MAX_LIVE_INSTANCES}: {e:#}", i + 1));
        alive.push((store, instance));
    }
}
