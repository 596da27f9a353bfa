//! The Redis backend of the shared store (`--store redis://HOST:PORT[/DB]`).
//!
//! Keys (all under `callqa:`):
//!
//! | key | value |
//! |---|---|
//! | `fp:<sha256 hex>` | `token:day:update:input:position`, with a Redis expiry of the TTL |
//! | `batch:<token>` | hash: `st`, `own`, `ses`, `lease`, `exp`, `days`, `ddays`, `inputs` |
//! | `contact:<ContactId>` | the latest LastUpdateTimestamp (ms), expiring with the TTL |
//! | `owner:<host identity>` | set of the host's unfinished batch tokens |
//! | `token`, `store_id` | the atomic counter (`INCR`) and the store's identifier |
//!
//! A claim is `SET fp:… value NX GET PX ttl`: one round trip that either
//! claims or returns the claim that stands. Expired claims are gone by Redis's
//! own expiry, so "absent or expired" is simply "absent". Taking over a dead
//! claim, completing, releasing and settling are Lua scripts, each checked
//! against the fencing token, so they are atomic on the server.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RetryMethod, Script};

use super::claim_table::{BatchItem, ClaimItem, ClaimTable, Expect};
use super::protocol::BatchStatus;
use super::{Millis, StoreError};

const ATTEMPTS: u32 = 6;

/// Replaces the claim only if it still belongs to the dead batch ARGV[2]
/// (or is gone); otherwise returns the claim that stands.
const TAKE_OVER: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (not cur) or string.match(cur, '^(%d+):') == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return false
end
return cur
"#;

/// Finishes batch KEYS[1] if it is in progress (and, with ARGV[1], owned by
/// that session: the fencing check), then drops it from the owner's set.
const FINISH: &str = r#"
if redis.call('HGET', KEYS[1], 'st') ~= 'in-progress' then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'ses') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'ddays', ARGV[3])
redis.call('SREM', KEYS[2], ARGV[4])
return 1
"#;

/// Keeps the newest version of a contact; returns the one known before.
const NOTE_VERSION: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return cur
"#;

/// Redis as a [`ClaimTable`]; wrap it in a [`SharedStore`](super::SharedStore).
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    url: String,
    take_over: Script,
    finish: Script,
    note_version: Script,
}

impl RedisStore {
    /// Connects to `redis://HOST:PORT[/DB]` (or `rediss://` for TLS-less
    /// builds, refused by the client). The connection reconnects by itself;
    /// each command is retried with backoff and jitter before an error.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::backend(format!("{url} (open)"), e))?;
        let config = ConnectionManagerConfig::new()
            // Reconnects are retried by `run`, with the same backoff as
            // everything else; the manager's own retries would multiply them.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(connection) => {
                    return Ok(RedisStore {
                        connection,
                        url: url.to_string(),
                        take_over: Script::new(TAKE_OVER),
                        finish: Script::new(FINISH),
                        note_version: Script::new(NOTE_VERSION),
                    })
                }
                Err(err) => {
                    last = Some(err);
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(StoreError::Backend {
            context: format!("{url} (connect)"),
            message: format!(
                "{} after {ATTEMPTS} attempts; is the Redis server running?",
                last.map(|e| e.to_string()).unwrap_or_default()
            ),
        })
    }

    /// Runs one command (or script) with retries on connection errors and
    /// busy servers.
    async fn run<T, F, Fut>(&self, action: &str, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let mut attempt = 0;
        loop {
            match op(self.connection.clone()).await {
                Ok(value) => return Ok(value),
                Err(err) if attempt + 1 < ATTEMPTS && !matches!(err.retry_method(), RetryMethod::NoRetry) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => {
                    return Err(StoreError::Backend {
                        context: format!("{} ({action})", self.url),
                        message: format!("{err} (after {} attempts)", attempt + 1),
                    })
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ClaimTable for RedisStore {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn store_id(&self) -> Result<String, StoreError> {
        let candidate = crate::ctr::Fingerprint::of(
            format!("{:?}:{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        )
        .to_hex()[..8]
            .to_string();
        let existing: Option<String> = self
            .run("store id", |mut c| {
                let candidate = candidate.clone();
                async move {
                    redis::cmd("SET")
                        .arg("callqa:store_id")
                        .arg(candidate)
                        .arg("NX")
                        .arg("GET")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Ok(existing.unwrap_or(candidate))
    }

    async fn next_token(&self) -> Result<u64, StoreError> {
        self.run("next fencing token", |mut c| async move {
            redis::cmd("INCR").arg("callqa:token").query_async(&mut c).await
        })
        .await
    }

    async fn put_batch(&self, token: u64, batch: &BatchItem) -> Result<(), StoreError> {
        let inputs = serde_json::to_string(&batch.inputs).map_err(|e| StoreError::backend("batch inputs", e))?;
        // Outlives every claim naming it (they expire with the TTL) by a minute.
        let ttl = (batch.expires - batch.lease_until).max(1000) + 60_000;
        self.run("write batch", |mut c| {
            let inputs = inputs.clone();
            async move {
                let key = format!("callqa:batch:{token}");
                redis::pipe()
                    .atomic()
                    .sadd(format!("callqa:owner:{}", batch.owner), token)
                    .ignore()
                    .hset_multiple(
                        &key,
                        &[
                            ("st", batch.status.as_str().to_string()),
                            ("own", batch.owner.clone()),
                            ("ses", batch.session.clone()),
                            ("lease", batch.lease_until.to_string()),
                            ("exp", batch.expires.to_string()),
                            ("days", join_days(&batch.days)),
                            ("ddays", join_days(&batch.durable_days)),
                            ("inputs", inputs),
                        ],
                    )
                    .ignore()
                    .pexpire(&key, ttl)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        })
        .await
    }

    async fn get_batch(&self, token: u64) -> Result<Option<BatchItem>, StoreError> {
        let fields: std::collections::HashMap<String, String> = self
            .run("read batch", |mut c| async move {
                redis::cmd("HGETALL").arg(format!("callqa:batch:{token}")).query_async(&mut c).await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let number = |name: &str| text(name).parse::<Millis>().unwrap_or(0);
        Ok(Some(BatchItem {
            status: BatchStatus::parse(&text("st"))
                .ok_or_else(|| StoreError::backend(self.describe(), format!("batch {token} has no valid status")))?,
            owner: text("own"),
            session: text("ses"),
            lease_until: number("lease"),
            expires: number("exp"),
            days: split_days(&text("days")),
            durable_days: split_days(&text("ddays")),
            inputs: serde_json::from_str(&text("inputs")).unwrap_or_default(),
        }))
    }

    async fn finish_batch(
        &self,
        token: u64,
        owner: &str,
        expect: Expect<'_>,
        status: BatchStatus,
        durable_days: &[i32],
    ) -> Result<bool, StoreError> {
        let session = match expect {
            Expect::OwnedBy(session) => session,
            Expect::InProgress => "",
        };
        let days = join_days(durable_days);
        let done: i64 = self
            .run("finish batch", |mut c| {
                let mut invocation = self.finish.prepare_invoke();
                invocation
                    .key(format!("callqa:batch:{token}"))
                    .key(format!("callqa:owner:{owner}"))
                    .arg(session)
                    .arg(status.as_str())
                    .arg(&days)
                    .arg(token);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(done == 1)
    }

    async fn owner_tokens(&self, owner: &str) -> Result<Vec<u64>, StoreError> {
        let mut tokens: Vec<u64> = self
            .run("owner's batches", |mut c| async move {
                redis::cmd("SMEMBERS").arg(format!("callqa:owner:{owner}")).query_async(&mut c).await
            })
            .await?;
        tokens.sort_unstable();
        Ok(tokens)
    }

    async fn forget_token(&self, owner: &str, token: u64) -> Result<(), StoreError> {
        self.run("owner's batches", |mut c| async move {
            redis::cmd("SREM").arg(format!("callqa:owner:{owner}")).arg(token).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn claim(
        &self,
        fingerprint: &str,
        claim: &ClaimItem,
        replace: Option<u64>,
        now: Millis,
    ) -> Result<Option<ClaimItem>, StoreError> {
        let key = format!("callqa:fp:{fingerprint}");
        let value = format!("{}:{}:{}:{}:{}", claim.token, claim.day, claim.update as u8, claim.input, claim.position);
        let ttl = (claim.expires - now).max(1);
        let standing: Option<String> = match replace {
            None => {
                self.run("claim", |mut c| {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&key).arg(&value).arg("NX").arg("GET").arg("PX").arg(ttl);
                    async move { cmd.query_async(&mut c).await }
                })
                .await?
            }
            Some(old) => {
                self.run("claim", |mut c| {
                    let mut invocation = self.take_over.prepare_invoke();
                    invocation.key(&key).arg(&value).arg(old).arg(ttl);
                    async move { invocation.invoke_async(&mut c).await }
                })
                .await?
            }
        };
        let Some(standing) = standing else { return Ok(None) };
        let parts: Vec<&str> = standing.split(':').collect();
        let field = |i: usize| parts.get(i).and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
        // Redis removes expired keys itself, so whatever stands is live.
        Ok(Some(ClaimItem {
            token: field(0) as u64,
            day: field(1) as i32,
            update: field(2) == 1,
            input: field(3) as u32,
            position: field(4) as u64,
            expires: Millis::MAX,
        }))
    }

    async fn note_version(
        &self,
        contact_id: &str,
        version: Millis,
        expires: Millis,
        now: Millis,
    ) -> Result<Option<Millis>, StoreError> {
        let ttl = (expires - now).max(1);
        let known: Option<String> = self
            .run("contact version", |mut c| {
                let mut invocation = self.note_version.prepare_invoke();
                invocation.key(format!("callqa:contact:{contact_id}")).arg(version).arg(ttl);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(known.and_then(|v| v.parse().ok()))
    }
}

/// 50 ms doubling to 2 s, with up to 50% jitter so hosts retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    Duration::from_millis(base / 2 + (nanos as u64 % (base / 2 + 1)))
}

fn join_days(days: &[i32]) -> String {
    days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

fn split_days(text: &str) -> Vec<i32> {
    text.split(',').filter_map(|d| d.parse().ok()).collect()
}
