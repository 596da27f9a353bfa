use std::fmt;
use std::path::PathBuf;

use anyhow::Context;

/// One input: a file or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    pub fn name(&self) -> String {
        match self {
            InputSource::Stdin => "-".to_string(),
            InputSource::File(path) => path.display().to_string(),
        }
    }
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Turns the command-line inputs into a list of files: `-` is stdin, a
/// directory stands for every file below it (sorted by path, hidden files and
/// directories skipped, the way Hive-style readers skip them), no input at
/// all means stdin.
pub fn expand_inputs(args: &[String]) -> anyhow::Result<Vec<InputSource>> {
    if args.is_empty() {
        return Ok(vec![InputSource::Stdin]);
    }
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(InputSource::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot read input {arg}"))?;
        if meta.is_dir() {
            let walker = walkdir::WalkDir::new(&path).sort_by_file_name().into_iter().filter_entry(|entry| {
                entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with(['.', '_'])
            });
            for entry in walker {
                let entry = entry.with_context(|| format!("cannot list input directory {arg}"))?;
                if entry.file_type().is_file() {
                    inputs.push(InputSource::File(entry.into_path()));
                }
            }
        } else {
            inputs.push(InputSource::File(path));
        }
    }
    Ok(inputs)
}
