//! `--store` values: `file:PATH` (or a plain path), `dynamodb://TABLE`,
//! `redis://HOST:PORT[/DB]`.

use std::path::{Path, PathBuf};

use super::{
    host_identity, DedupStore, DynamoDbStore, EmbeddedStore, RedisStore, SharedStore, StoreError, StoreSettings,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    File(PathBuf),
    DynamoDb { table: String },
    Redis { url: String },
}

impl StoreUrl {
    pub fn parse(spec: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Backend { context: format!("--store {spec}"), message: why.to_string() };
        if let Some(table) = spec.strip_prefix("dynamodb://") {
            let table = table.trim_end_matches('/');
            let valid = (3..=255).contains(&table.len())
                && table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(invalid("a DynamoDB table name has 3 to 255 characters among a-z, A-Z, 0-9, _, - and ."));
            }
            return Ok(StoreUrl::DynamoDb { table: table.to_string() });
        }
        if spec.starts_with("redis://") || spec.starts_with("rediss://") {
            redis::parse_redis_url(spec).ok_or_else(|| invalid("expected redis://HOST:PORT[/DB]"))?;
            return Ok(StoreUrl::Redis { url: spec.to_string() });
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return Err(invalid(&format!(
                "unknown store `{scheme}://`: use file:PATH, dynamodb://TABLE or redis://HOST:PORT[/DB]"
            )));
        }
        Ok(StoreUrl::File(PathBuf::from(spec.strip_prefix("file:").unwrap_or(spec))))
    }

    /// `--store` as given, or the embedded default `dedup.redb` in `data_dir`.
    pub fn resolve(spec: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match spec {
            Some(spec) => StoreUrl::parse(spec),
            None => Ok(StoreUrl::File(data_dir.join("dedup.redb"))),
        }
    }

    pub fn is_shared(&self) -> bool {
        !matches!(self, StoreUrl::File(_))
    }

    /// Opens the store, whatever its kind, for this host. `sink` names
    /// where it writes records (`SinkUrl::identity`): with the host name it
    /// is a shared store's owner identity ([`host_identity`]), since only a
    /// process that sees the same sink can settle its unfinished batches.
    pub async fn open(
        &self,
        settings: StoreSettings,
        sink: &str,
        concurrency: usize,
    ) -> Result<Box<dyn DedupStore>, StoreError> {
        self.open_for(settings, host_identity(sink), concurrency).await
    }

    /// Opens the store with another owner identity than this host's: a
    /// Kinesis shard's, whose unfinished batches whoever holds the shard's
    /// lease settles. The embedded store has one process, and no owners.
    pub async fn open_for(
        &self,
        settings: StoreSettings,
        owner: String,
        concurrency: usize,
    ) -> Result<Box<dyn DedupStore>, StoreError> {
        Ok(match self {
            StoreUrl::File(path) => Box::new(EmbeddedStore::open(path, settings)?),
            StoreUrl::DynamoDb { table } => {
                let table = table.clone();
                let connect = async move { DynamoDbStore::connect(&table).await };
                Box::new(SharedStore::open(connect, owner, settings, concurrency).await?)
            }
            StoreUrl::Redis { url } => {
                let url = url.clone();
                let connect = async move { RedisStore::connect(&url).await };
                Box::new(SharedStore::open(connect, owner, settings, concurrency).await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(StoreUrl::parse("file:/tmp/s.redb").unwrap(), StoreUrl::File("/tmp/s.redb".into()));
        assert_eq!(StoreUrl::parse("s.redb").unwrap(), StoreUrl::File("s.redb".into()));
        assert_eq!(StoreUrl::parse("dynamodb://ctr-dedup").unwrap(), StoreUrl::DynamoDb { table: "ctr-dedup".into() });
        assert_eq!(
            StoreUrl::parse("redis://127.0.0.1:6379/2").unwrap(),
            StoreUrl::Redis { url: "redis://127.0.0.1:6379/2".into() }
        );
        assert!(StoreUrl::parse("dynamodb://").is_err());
        assert!(StoreUrl::parse("dynamodb://bad name").is_err());
        assert!(StoreUrl::parse("s3://bucket").is_err());
    }
}
