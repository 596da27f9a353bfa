//! `callqa rule new`: a rule project that builds as-is and passes its one
//! golden case out of the box.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    Js,
    Python,
}

/// (path in the project, template text)
const RUST: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml.tmpl")),
    (".cargo/config.toml", include_str!("../../templates/rust/.cargo/config.toml.tmpl")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs.tmpl")),
    ("golden/pass.json", include_str!("../../templates/rust/golden/pass.json.tmpl")),
    ("README.md", include_str!("../../templates/rust/README.md.tmpl")),
    (".gitignore", include_str!("../../templates/rust/gitignore.tmpl")),
];

/// The contract, copied into JavaScript and Python projects: their tools
/// generate the bindings from it at build time.
const WIT: &str = include_str!("../../../wit/rule.wit");

const JS: &[(&str, &str)] = &[
    ("package.json", include_str!("../../templates/js/package.json.tmpl")),
    ("wit/rule.wit", WIT),
    ("src/rule.js", include_str!("../../templates/js/src/rule.js.tmpl")),
    ("golden/pass.json", include_str!("../../templates/js/golden/pass.json.tmpl")),
    ("README.md", include_str!("../../templates/js/README.md.tmpl")),
    (".gitignore", include_str!("../../templates/js/gitignore.tmpl")),
];

const PYTHON: &[(&str, &str)] = &[
    ("requirements.txt", include_str!("../../templates/python/requirements.txt.tmpl")),
    ("wit/rule.wit", WIT),
    ("src/rule.py", include_str!("../../templates/python/src/rule.py.tmpl")),
    ("golden/pass.json", include_str!("../../templates/python/golden/pass.json.tmpl")),
    ("README.md", include_str!("../../templates/python/README.md.tmpl")),
    (".gitignore", include_str!("../../templates/python/gitignore.tmpl")),
];

/// The SDK of the source tree this binary was built from.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

/// What to run once before the first build: installing the pinned build tool.
pub fn setup_command(lang: Language) -> Option<&'static str> {
    match lang {
        Language::Rust => None,
        Language::Js => Some("npm install"),
        Language::Python => Some("python3 -m pip install -r requirements.txt"),
    }
}

/// The build command, as the project's README gives it.
pub fn build_command(lang: Language, name: &str) -> String {
    match lang {
        Language::Rust => "cargo build --release".into(),
        Language::Js => "npm run build".into(),
        Language::Python => {
            format!("componentize-py -d wit -w qa-rule componentize -p src rule -o {}", module_file(lang, name))
        }
    }
}

fn module_file(lang: Language, name: &str) -> String {
    match lang {
        Language::Rust => format!("{}.wasm", name.replace('-', "_")),
        Language::Js | Language::Python => format!("{name}.wasm"),
    }
}

/// Where the built component lands, relative to the project.
pub fn module_path(lang: Language, name: &str) -> String {
    match lang {
        Language::Rust => format!("target/wasm32-wasip2/release/{}", module_file(lang, name)),
        Language::Js | Language::Python => module_file(lang, name),
    }
}

/// Writes the project; refuses to overwrite an existing directory.
pub fn create(dir: &Path, name: &str, lang: Language, sdk: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("the rule name `{name}` must be lower-case kebab-case starting with a letter (it becomes the rule id)");
    }
    if dir.exists() {
        bail!("{} already exists; pick another name or --dir", dir.display());
    }
    // Only a Rust project depends on the SDK; the others get the WIT itself.
    let sdk = match lang {
        Language::Rust => std::fs::canonicalize(sdk)
            .with_context(|| format!("the callqa SDK is not at {} (pass --sdk PATH to plugins/sdk)", sdk.display()))?
            .display()
            .to_string(),
        Language::Js | Language::Python => String::new(),
    };
    let templates = match lang {
        Language::Rust => RUST,
        Language::Js => JS,
        Language::Python => PYTHON,
    };
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let mut written = Vec::new();
    for (path, template) in templates {
        let text = template
            .replace("{{name}}", name)
            .replace("{{type_name}}", &type_name)
            .replace("{{sdk}}", &sdk)
            .replace("{{module_file}}", &module_file(lang, name));
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(dir))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}
