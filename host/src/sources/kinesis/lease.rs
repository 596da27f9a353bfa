use std::fmt;

/// Milliseconds since the Unix epoch.
type Millis = i64;

/// Where a shard's reading resumes: the last sequence number whose record is
/// in the sink and completed in the dedup store, or where a new shard starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    AtTimestamp(Millis),
    /// Resume after this record.
    After(String),
    /// Every record of the closed shard is done: its children may start.
    ShardEnd,
}

impl Checkpoint {
    /// As stored in the lease table (the sentinels KCL stores, so a person
    /// reading the table recognises them).
    pub fn as_stored(&self) -> String {
        match self {
            Checkpoint::TrimHorizon => "TRIM_HORIZON".into(),
            Checkpoint::Latest => "LATEST".into(),
            Checkpoint::AtTimestamp(millis) => format!("AT_TIMESTAMP:{millis}"),
            Checkpoint::After(sequence) => sequence.clone(),
            Checkpoint::ShardEnd => "SHARD_END".into(),
        }
    }

    pub fn parse(stored: &str) -> Option<Checkpoint> {
        Some(match stored {
            "TRIM_HORIZON" => Checkpoint::TrimHorizon,
            "LATEST" => Checkpoint::Latest,
            "SHARD_END" => Checkpoint::ShardEnd,
            other => match other.strip_prefix("AT_TIMESTAMP:") {
                Some(millis) => Checkpoint::AtTimestamp(millis.parse().ok()?),
                None if !other.is_empty() && other.bytes().all(|b| b.is_ascii_digit()) => {
                    Checkpoint::After(other.to_string())
                }
                None => return None,
            },
        })
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_stored())
    }
}

/// Where a stream that callqa has never read starts (`--start-position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// Only records put after the lease is created.
    Latest,
    /// Records that arrived at or after this instant.
    AtTimestamp(Millis),
}

impl StartPosition {
    pub fn parse(text: &str) -> anyhow::Result<StartPosition> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "trim-horizon" | "trim_horizon" => StartPosition::TrimHorizon,
            "latest" => StartPosition::Latest,
            _ => {
                let instant = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
                    anyhow::anyhow!(
                        "--start-position {text}: expected trim-horizon, latest or an RFC 3339 instant \
                         such as 2026-12-01T00:00:00Z"
                    )
                })?;
                StartPosition::AtTimestamp(instant.timestamp_millis())
            }
        })
    }

    pub fn checkpoint(self) -> Checkpoint {
        match self {
            StartPosition::TrimHorizon => Checkpoint::TrimHorizon,
            StartPosition::Latest => Checkpoint::Latest,
            StartPosition::AtTimestamp(millis) => Checkpoint::AtTimestamp(millis),
        }
    }
}

/// One shard's lease as the lease table holds it. The counter goes up with
/// every renewal, take and checkpoint: a host that sees it standing still
/// for the failover time knows the owner stopped, without trusting anyone's
/// clock, and every write is conditioned on the counter it last saw, which
/// fences a host that lost the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub stream: String,
    pub shard_id: String,
    pub owner: Option<String>,
    pub counter: u64,
    pub checkpoint: Checkpoint,
    /// The shards this one was split or merged from: it is read only once
    /// they are all at `SHARD_END`.
    pub parents: Vec<String>,
    /// When a run last found the shard with nothing more to read (wall
    /// clock, ms): `callqa ingest` without `--follow` stops once every shard
    /// was caught up after it started.
    pub caught_up_at: Option<Millis>,
}

impl Lease {
    /// The lease table's key: a table can hold the leases of several streams.
    pub fn key(&self) -> String {
        format!("{}/{}", self.stream, self.shard_id)
    }

    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_as_stored() {
        for checkpoint in [
            Checkpoint::TrimHorizon,
            Checkpoint::Latest,
            Checkpoint::AtTimestamp(1_700_000_000_000),
            Checkpoint::After("49590338271490256608559692538361571095921575989136588898".into()),
            Checkpoint::ShardEnd,
        ] {
            assert_eq!(Checkpoint::parse(&checkpoint.as_stored()), Some(checkpoint));
        }
        assert_eq!(Checkpoint::parse("garbage"), None);
        assert_eq!(Checkpoint::parse(""), None);
    }

    #[test]
    fn start_positions() {
        assert_eq!(StartPosition::parse("trim-horizon").unwrap(), StartPosition::TrimHorizon);
        assert_eq!(StartPosition::parse("LATEST").unwrap(), StartPosition::Latest);
        assert_eq!(
            StartPosition::parse("2026-12-01T00:00:00Z").unwrap(),
            StartPosition::AtTimestamp(1_796_083_200_000)
        );
        assert!(StartPosition::parse("yesterday").unwrap_err().to_string().contains("RFC 3339"));
    }
}
