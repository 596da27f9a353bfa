//! The DynamoDB backend of the shared store (`--store dynamodb://TABLE`).
//!
//! One table, partition key `id` (a string), on-demand billing, TTL on
//! `expires_at` (epoch seconds). Items, keyed so that the busy ones spread
//! over partitions by fingerprint:
//!
//! | `id` | attributes |
//! |---|---|
//! | `fp#<sha256 hex>` | `tok` (fencing token), `dy` (UTC day), `upd`, `inp`, `pos`, `expires_at` |
//! | `batch#<token>` | `st`, `own`, `ses`, `lease_until` (ms), `days`, `ddays`, `inputs`, `expires_at` |
//! | `contact#<ContactId>` | `ver` (latest LastUpdateTimestamp, ms), `expires_at` |
//! | `owner#<host identity>` | `tokens` (number set: the host's unfinished batches) |
//! | `meta` | `next_token` (the atomic counter), `store_id` |

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::claim_table::{BatchItem, ClaimItem, ClaimTable, Expect};
use super::protocol::BatchStatus;
use super::{Millis, StoreError};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB as a [`ClaimTable`]; wrap it in a [`SharedStore`](super::SharedStore).
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    endpoint: Option<String>,
}

/// What `callqa store init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInit {
    pub created: bool,
    /// Why TTL deletion is off, when the server refused to enable it.
    pub ttl_warning: Option<String>,
}

impl DynamoDbStore {
    /// Connects the standard AWS way: credential chain, region, and
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` for another endpoint.
    /// Throttling, 5xx and connection errors are retried with exponential
    /// backoff and jitter (the SDK's standard mode) before an error is returned.
    pub async fn connect(table: &str) -> Result<Self, StoreError> {
        if table.is_empty() {
            return Err(StoreError::backend("dynamodb://", "no table name: use --store dynamodb://TABLE"));
        }
        let config = crate::aws::sdk_config().await;
        let endpoint = crate::aws::endpoint_override("dynamodb");
        Ok(DynamoDbStore { client: Client::new(&config), table: table.to_string(), endpoint })
    }

    fn err<E, R>(&self, action: &str, err: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let hint = match err.as_service_error().and_then(|e| e.code()) {
            Some("ResourceNotFoundException") => {
                format!(" (create the table first: callqa store init --store dynamodb://{})", self.table)
            }
            _ => String::new(),
        };
        StoreError::Backend {
            context: format!("{} ({action})", self.describe()),
            message: format!("{}{hint}", crate::aws::brief(&err)),
        }
    }

    /// Creates the table (partition key only, on-demand) if it does not
    /// exist, waits until it is active, and enables TTL on `expires_at`.
    /// A server without the TTL API is reported, not fatal: no condition
    /// relies on TTL deletion.
    pub async fn init(&self) -> Result<TableInit, StoreError> {
        let created =
            crate::aws::create_dynamodb_table(&self.client, &self.table, "id").await.map_err(|(step, message)| {
                StoreError::Backend { context: format!("{} ({step})", self.describe()), message }
            })?;
        let ttl = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::backend("enable TTL", e))?,
            )
            .send()
            .await;
        let ttl_warning = match ttl {
            Ok(_) => None,
            Err(err) => {
                let code = err.as_service_error().and_then(|e| e.code()).unwrap_or_default().to_string();
                // Already enabled is success; anything else leaves expired
                // items in the table (they still count as absent).
                if code == "ValidationException"
                    && err.as_service_error().and_then(|e| e.message()).is_some_and(|m| m.contains("already enabled"))
                {
                    None
                } else {
                    Some(format!(
                        "TTL could not be enabled on {}: {}; expired entries stay in the table (they still count as \
                         absent), delete them yourself or enable TTL on `expires_at` where the server supports it",
                        self.table,
                        crate::aws::brief(&err)
                    ))
                }
            }
        };
        self.store_id().await?;
        Ok(TableInit { created, ttl_warning })
    }

    /// The claim (a conditional `PutItem`) and what stands when it fails:
    /// from `ReturnValuesOnConditionCheckFailure`, or a consistent `GetItem`
    /// on servers that ignore it.
    async fn put_if(
        &self,
        action: &str,
        item: Item,
        condition: &str,
        values: Item,
    ) -> Result<Option<Item>, StoreError> {
        let key = item.get("id").cloned();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    let returned = match err.into_service_error() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                            e.item
                        }
                        _ => None,
                    };
                    match returned {
                        Some(old) => Ok(Some(old)),
                        None => Ok(Some(
                            self.get(action, key.unwrap_or(AttributeValue::S(String::new())))
                                .await?
                                .unwrap_or_default(),
                        )),
                    }
                }
                _ => Err(self.err(action, err)),
            },
        }
    }

    async fn get(&self, action: &str, id: AttributeValue) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", id)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(action, e))?;
        Ok(out.item)
    }

    async fn owner_set(&self, owner: &str, op: &str, token: u64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(format!("owner#{owner}")))
            .update_expression(format!("{op} tokens :t"))
            .expression_attribute_values(":t", AttributeValue::Ns(vec![token.to_string()]))
            .send()
            .await
            .map_err(|e| self.err("owner's batches", e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ClaimTable for DynamoDbStore {
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("dynamodb://{} at {endpoint}", self.table),
            None => format!("dynamodb://{}", self.table),
        }
    }

    async fn store_id(&self) -> Result<String, StoreError> {
        let candidate = crate::ctr::Fingerprint::of(
            format!("{:?}:{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        )
        .to_hex()[..8]
            .to_string();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s("meta"))
            .update_expression("SET store_id = if_not_exists(store_id, :id)")
            .expression_attribute_values(":id", s(candidate))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.err("store id", e))?;
        out.attributes
            .as_ref()
            .and_then(|a| a.get("store_id"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::backend(self.describe(), "the meta item has no store_id"))
    }

    async fn next_token(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s("meta"))
            .update_expression("ADD next_token :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| self.err("next fencing token", e))?;
        out.attributes
            .as_ref()
            .and_then(|a| num(a, "next_token"))
            .map(|t| t as u64)
            .ok_or_else(|| StoreError::backend(self.describe(), "the token counter returned no value"))
    }

    async fn put_batch(&self, token: u64, batch: &BatchItem) -> Result<(), StoreError> {
        self.owner_set(&batch.owner, "ADD", token).await?;
        let item: Item = [
            ("id".to_string(), s(format!("batch#{token}"))),
            ("st".to_string(), s(batch.status.as_str())),
            ("own".to_string(), s(&batch.owner)),
            ("ses".to_string(), s(&batch.session)),
            ("lease_until".to_string(), n(batch.lease_until)),
            ("expires_at".to_string(), n(ttl_seconds(batch.expires))),
            ("days".to_string(), s(join_days(&batch.days))),
            ("ddays".to_string(), s(join_days(&batch.durable_days))),
            ("inputs".to_string(), AttributeValue::L(batch.inputs.iter().map(s).collect())),
        ]
        .into_iter()
        .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.err("write batch", e))?;
        Ok(())
    }

    async fn get_batch(&self, token: u64) -> Result<Option<BatchItem>, StoreError> {
        let Some(item) = self.get("read batch", s(format!("batch#{token}"))).await? else { return Ok(None) };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(Some(BatchItem {
            status: BatchStatus::parse(&text("st"))
                .ok_or_else(|| StoreError::backend(self.describe(), format!("batch {token} has no valid status")))?,
            owner: text("own"),
            session: text("ses"),
            lease_until: num(&item, "lease_until").unwrap_or(0),
            expires: num(&item, "expires_at").unwrap_or(0) * 1000,
            days: split_days(&text("days")),
            durable_days: split_days(&text("ddays")),
            inputs: item
                .get("inputs")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
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
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(format!("batch#{token}")))
            .update_expression("SET st = :new, ddays = :d")
            .expression_attribute_values(":new", s(status.as_str()))
            .expression_attribute_values(":d", s(join_days(durable_days)))
            .expression_attribute_values(":ip", s(BatchStatus::InProgress.as_str()));
        update = match expect {
            Expect::OwnedBy(session) => {
                update.condition_expression("st = :ip AND ses = :me").expression_attribute_values(":me", s(session))
            }
            Expect::InProgress => update.condition_expression("st = :ip"),
        };
        match update.send().await {
            Ok(_) => {}
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Ok(false)
            }
            Err(err) => return Err(self.err("finish batch", err)),
        }
        self.owner_set(owner, "DELETE", token).await?;
        Ok(true)
    }

    async fn owner_tokens(&self, owner: &str) -> Result<Vec<u64>, StoreError> {
        let item = self.get("owner's batches", s(format!("owner#{owner}"))).await?;
        let mut tokens: Vec<u64> = item
            .as_ref()
            .and_then(|i| i.get("tokens"))
            .and_then(|v| v.as_ns().ok())
            .map(|set| set.iter().filter_map(|t| t.parse().ok()).collect())
            .unwrap_or_default();
        tokens.sort_unstable();
        Ok(tokens)
    }

    async fn forget_token(&self, owner: &str, token: u64) -> Result<(), StoreError> {
        self.owner_set(owner, "DELETE", token).await
    }

    async fn claim(
        &self,
        fingerprint: &str,
        claim: &ClaimItem,
        replace: Option<u64>,
        now: Millis,
    ) -> Result<Option<ClaimItem>, StoreError> {
        let item: Item = [
            ("id".to_string(), s(format!("fp#{fingerprint}"))),
            ("tok".to_string(), n(claim.token)),
            ("dy".to_string(), n(claim.day)),
            ("upd".to_string(), AttributeValue::Bool(claim.update)),
            ("inp".to_string(), n(claim.input)),
            ("pos".to_string(), n(claim.position)),
            ("expires_at".to_string(), n(ttl_seconds(claim.expires))),
        ]
        .into_iter()
        .collect();
        let mut values: Item = [(":now".to_string(), n(now.div_euclid(1000)))].into_iter().collect();
        let condition = match replace {
            None => "attribute_not_exists(id) OR expires_at <= :now",
            Some(old) => {
                values.insert(":old".to_string(), n(old));
                "attribute_not_exists(id) OR expires_at <= :now OR tok = :old"
            }
        };
        let Some(standing) = self.put_if("claim", item, condition, values).await? else { return Ok(None) };
        Ok(Some(ClaimItem {
            token: num(&standing, "tok").unwrap_or(0) as u64,
            day: num(&standing, "dy").unwrap_or(0) as i32,
            update: standing.get("upd").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            input: num(&standing, "inp").unwrap_or(0) as u32,
            position: num(&standing, "pos").unwrap_or(0) as u64,
            // Gone by the time it was read: expired, so the caller takes it over.
            expires: num(&standing, "expires_at").map(|e| e * 1000).unwrap_or(Millis::MIN),
        }))
    }

    async fn note_version(
        &self,
        contact_id: &str,
        version: Millis,
        expires: Millis,
        now: Millis,
    ) -> Result<Option<Millis>, StoreError> {
        let now_s = now.div_euclid(1000);
        let id = s(format!("contact#{contact_id}"));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", id.clone())
            .update_expression("SET ver = :v, expires_at = :e")
            .condition_expression("attribute_not_exists(id) OR expires_at <= :now OR ver < :v")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":e", n(ttl_seconds(expires)))
            .expression_attribute_values(":now", n(now_s))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let known = |item: &Item| {
            let live = num(item, "expires_at").is_some_and(|e| e > now_s);
            live.then(|| num(item, "ver")).flatten()
        };
        match result {
            Ok(out) => Ok(out.attributes.as_ref().and_then(known)),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let returned = match err.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                        e.item
                    }
                    _ => None,
                };
                let standing = match returned {
                    Some(item) => Some(item),
                    None => self.get("contact version", id).await?,
                };
                // The stored version is at least as new: it is the one known.
                Ok(standing.as_ref().and_then(known).or(Some(version)))
            }
            Err(err) => Err(self.err("contact version", err)),
        }
    }
}

/// `Code: message` for an error the service answered; the whole chain
/// (connection refused, timeout after retries) for the others.
fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn num(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|t| t.parse().ok())
}

/// DynamoDB's TTL wants epoch seconds; rounding up never expires an entry early.
fn ttl_seconds(millis: Millis) -> i64 {
    millis.div_euclid(1000) + (millis.rem_euclid(1000) > 0) as i64
}

fn join_days(days: &[i32]) -> String {
    days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

fn split_days(text: &str) -> Vec<i32> {
    text.split(',').filter_map(|d| d.parse().ok()).collect()
}
