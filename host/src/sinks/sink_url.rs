use std::fmt;
use std::path::{Path, PathBuf};

use super::{DirectorySink, S3Location, S3Sink, Sink, StdoutSink};

/// `--out` values: a directory, `s3://BUCKET/PREFIX`, or `-` for stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkUrl {
    Stdout,
    Directory(PathBuf),
    S3(S3Location),
}

impl SinkUrl {
    pub fn parse(spec: &str) -> anyhow::Result<SinkUrl> {
        if spec == "-" {
            return Ok(SinkUrl::Stdout);
        }
        if let Some(location) = S3Location::parse(spec) {
            return Ok(SinkUrl::S3(location?));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            anyhow::bail!(
                "--out {spec}: unknown sink `{scheme}://`; use a directory, s3://BUCKET/PREFIX or - (stdout)"
            );
        }
        Ok(SinkUrl::Directory(PathBuf::from(spec.strip_prefix("file:").unwrap_or(spec))))
    }

    /// Opens the sink; `store_id` goes into every file or object name, so
    /// two stores writing into one sink never produce the same name.
    pub fn open(&self, store_id: &str, gzip: bool) -> anyhow::Result<Box<dyn Sink>> {
        Ok(match self {
            SinkUrl::Stdout => Box::new(StdoutSink::new()),
            SinkUrl::Directory(dir) => Box::new(DirectorySink::open(dir, store_id, gzip)?),
            SinkUrl::S3(location) => Box::new(S3Sink::open(location.clone(), store_id, gzip)?),
        })
    }

    /// The sink as every host that writes to it names it: a directory as an
    /// absolute path (a restart from another working directory is the same
    /// sink), a bucket by its URL. Part of a shared store's owner identity,
    /// since only a process that sees the sink can tell what reached it.
    pub fn identity(&self) -> String {
        match self {
            SinkUrl::Stdout => "-".to_string(),
            SinkUrl::Directory(dir) => canonical_dir(dir),
            SinkUrl::S3(location) => location.to_string(),
        }
    }

    /// Whether hosts on other machines see what this sink holds, so that any
    /// of them can settle a batch another wrote (a bucket, not a local disk).
    pub fn is_shared(&self) -> bool {
        matches!(self, SinkUrl::S3(_))
    }
}

fn canonical_dir(dir: &Path) -> String {
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::canonicalize(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Stdout => f.write_str("-"),
            SinkUrl::Directory(dir) => write!(f, "{}", dir.display()),
            SinkUrl::S3(location) => location.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(SinkUrl::parse("-").unwrap(), SinkUrl::Stdout);
        assert_eq!(SinkUrl::parse("out/ctr").unwrap(), SinkUrl::Directory("out/ctr".into()));
        assert_eq!(SinkUrl::parse("file:/x").unwrap(), SinkUrl::Directory("/x".into()));
        assert!(matches!(SinkUrl::parse("s3://lake/ctr").unwrap(), SinkUrl::S3(_)));
        assert!(SinkUrl::parse("gs://lake").unwrap_err().to_string().contains("unknown sink"));
        assert!(SinkUrl::parse("s3://x").is_err());
    }
}
