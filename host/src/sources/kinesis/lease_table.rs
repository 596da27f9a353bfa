use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::lease::{Checkpoint, Lease};
use crate::aws::brief;

type Item = HashMap<String, AttributeValue>;

/// The shard leases of the streams callqa reads, in a DynamoDB table of their
/// own (KCL's layout: partition key `leaseKey`, one item per shard):
///
/// | attribute | |
/// |---|---|
/// | `leaseKey` | `<stream>/<shardId>` |
/// | `stream`, `shardId` | |
/// | `leaseOwner` | the host holding the lease; absent when free |
/// | `leaseCounter` | raised by every renewal, take and checkpoint |
/// | `checkpoint` | a sequence number, `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP:<ms>` or `SHARD_END` |
/// | `parentShardIds` | the shards it was split or merged from |
/// | `caughtUpAt` | when a reader last found nothing more to read (ms) |
///
/// Every write is one conditional request on the counter the writer last
/// saw: of two hosts racing for a lease one wins, and a host whose lease
/// was taken finds out at its next write.
#[derive(Clone)]
pub struct LeaseTable {
    client: Client,
    table: String,
}

impl LeaseTable {
    /// Connects the standard AWS way (`AWS_ENDPOINT_URL_DYNAMODB` for another endpoint).
    pub async fn connect(table: &str) -> LeaseTable {
        let config = crate::aws::sdk_config().await;
        LeaseTable { client: Client::new(&config), table: table.to_string() }
    }

    pub fn describe(&self) -> String {
        match crate::aws::endpoint_override("dynamodb") {
            Some(endpoint) => format!("lease table dynamodb://{} at {endpoint}", self.table),
            None => format!("lease table dynamodb://{}", self.table),
        }
    }

    fn err<E, R>(&self, action: &str, err: SdkError<E, R>) -> anyhow::Error
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let hint = match crate::aws::error_code(&err) {
            Some("ResourceNotFoundException") => format!(
                " (create it first: callqa store init --store dynamodb://DEDUP_TABLE --leases dynamodb://{})",
                self.table
            ),
            _ => String::new(),
        };
        anyhow::anyhow!("{} ({action}): {}{hint}", self.describe(), brief(&err))
    }

    /// Creates the table (partition key `leaseKey`, on-demand) unless it
    /// exists, and waits until it is active. True when it was created.
    pub async fn init(&self) -> anyhow::Result<bool> {
        crate::aws::create_dynamodb_table(&self.client, &self.table, "leaseKey")
            .await
            .map_err(|(step, message)| anyhow::anyhow!("{} ({step}): {message}", self.describe()))
    }

    /// Every lease of `stream`, read consistently.
    pub async fn list(&self, stream: &str) -> anyhow::Result<Vec<Lease>> {
        let mut leases = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("#stream = :stream")
                .expression_attribute_names("#stream", "stream")
                .expression_attribute_values(":stream", s(stream))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err("list leases", e))?;
            for item in page.items() {
                leases.push(parse(item).with_context(|| format!("{}: an unreadable lease item", self.describe()))?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(leases)
    }

    /// Writes the lease of a shard seen for the first time, unless another
    /// host did first. True when this call created it.
    pub async fn create(&self, lease: &Lease) -> anyhow::Result<bool> {
        let mut item: Item = HashMap::new();
        item.insert("leaseKey".into(), s(lease.key()));
        item.insert("stream".into(), s(&lease.stream));
        item.insert("shardId".into(), s(&lease.shard_id));
        item.insert("leaseCounter".into(), n(lease.counter));
        item.insert("checkpoint".into(), s(lease.checkpoint.as_stored()));
        item.insert("parentShardIds".into(), AttributeValue::L(lease.parents.iter().map(s).collect()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(err) if conditional_failed(&err) => Ok(false),
            Err(err) => Err(self.err("create lease", err)),
        }
    }

    /// Takes `seen` for `owner` if nobody wrote it since it was read.
    /// Returns the lease as now held, or `None` when another host moved first.
    pub async fn take(&self, seen: &Lease, owner: &str) -> anyhow::Result<Option<Lease>> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(seen.key()))
            .update_expression("SET leaseOwner = :owner, leaseCounter = :next")
            .condition_expression("leaseCounter = :seen")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":next", n(seen.counter + 1))
            .expression_attribute_values(":seen", n(seen.counter))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Some(Lease { owner: Some(owner.to_string()), counter: seen.counter + 1, ..seen.clone() })),
            Err(err) if conditional_failed(&err) => Ok(None),
            Err(err) => Err(self.err("take lease", err)),
        }
    }

    /// Raises the counter of a lease `held` by its owner, optionally moving
    /// the checkpoint and noting when it caught up, or giving the lease up.
    /// False when the lease is no longer this owner's at that counter: the
    /// caller must stop emitting the shard's records.
    pub async fn advance(&self, held: &mut Lease, change: LeaseChange) -> anyhow::Result<bool> {
        let owner = held.owner.clone().context("advancing a lease nobody holds")?;
        let mut set = vec!["leaseCounter = :next"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(held.key()))
            .condition_expression("leaseOwner = :owner AND leaseCounter = :seen")
            .expression_attribute_values(":owner", s(&owner))
            .expression_attribute_values(":next", n(held.counter + 1))
            .expression_attribute_values(":seen", n(held.counter));
        if let Some(checkpoint) = &change.checkpoint {
            set.push("checkpoint = :checkpoint");
            request = request.expression_attribute_values(":checkpoint", s(checkpoint.as_stored()));
        }
        if let Some(at) = change.caught_up_at {
            set.push("caughtUpAt = :caught");
            request = request.expression_attribute_values(":caught", n(at));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if change.release {
            expression.push_str(" REMOVE leaseOwner");
        }
        match request.update_expression(expression).send().await {
            Ok(_) => {
                held.counter += 1;
                if let Some(checkpoint) = change.checkpoint {
                    held.checkpoint = checkpoint;
                }
                if change.caught_up_at.is_some() {
                    held.caught_up_at = change.caught_up_at;
                }
                if change.release {
                    held.owner = None;
                }
                Ok(true)
            }
            Err(err) if conditional_failed(&err) => Ok(false),
            Err(err) => Err(self.err("update lease", err)),
        }
    }
}

/// What [`LeaseTable::advance`] changes besides the counter.
#[derive(Debug, Clone, Default)]
pub struct LeaseChange {
    pub checkpoint: Option<Checkpoint>,
    pub caught_up_at: Option<i64>,
    pub release: bool,
}

fn conditional_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    crate::aws::error_code(err) == Some("ConditionalCheckFailedException")
}

fn parse(item: &Item) -> Option<Lease> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(Lease {
        stream: text("stream")?,
        shard_id: text("shardId")?,
        owner: text("leaseOwner"),
        counter: item.get("leaseCounter")?.as_n().ok()?.parse().ok()?,
        checkpoint: Checkpoint::parse(&text("checkpoint")?)?,
        parents: match item.get("parentShardIds") {
            Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
            _ => Vec::new(),
        },
        caught_up_at: item.get("caughtUpAt").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()),
    })
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
