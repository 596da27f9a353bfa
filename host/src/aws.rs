//! What every AWS client of callqa shares (the DynamoDB store and lease
//! table, the Kinesis source and producer, the S3 sink): configuration the
//! standard AWS way, retries, timeouts, the endpoint a user pointed a
//! service at, and errors a person can read.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The credential chain, region and endpoints from the environment and
/// profile, as the AWS CLI reads them. Throttling, 5xx and connection errors
/// are retried with exponential backoff and jitter (the SDK's standard
/// mode) before a call fails.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

/// The endpoint a user set for `service` (`AWS_ENDPOINT_URL_<SERVICE>`, else
/// `AWS_ENDPOINT_URL`): the SDK uses it already; callqa names it in logs
/// and errors, so a message says which server refused.
pub fn endpoint_override(service: &str) -> Option<String> {
    [format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()), "AWS_ENDPOINT_URL".to_string()]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// `Code: message` for a service error, the whole cause chain for the rest
/// (a refused connection, a timeout), without the SDK's debug dump.
pub fn brief<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(service) => {
            format!("{}: {}", service.code().unwrap_or("ServiceError"), service.message().unwrap_or("(no message)"))
        }
        None => DisplayErrorContext(err).to_string(),
    }
}

/// Creates a DynamoDB table keyed by one string attribute, billed on
/// demand, unless it exists, and waits until it is active: the dedup
/// store's table and the shard lease table. True when this call created it;
/// the error names the step that failed.
pub async fn create_dynamodb_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> Result<bool, (&'static str, String)> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    };
    let failed = |step: &'static str| move |err: &dyn std::fmt::Display| (step, err.to_string());
    let attribute = AttributeDefinition::builder()
        .attribute_name(key)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| failed("create table")(&e))?;
    let schema = KeySchemaElement::builder()
        .attribute_name(key)
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| failed("create table")(&e))?;
    let created = match client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute)
        .key_schema(schema)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
    {
        Ok(_) => true,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => false,
        Err(err) => return Err(("create table", brief(&err))),
    };
    let started = std::time::Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await;
        let status = described.map_err(|e| ("describe table", brief(&e)))?.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(created);
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(("describe table", "the table did not become ACTIVE within 2 minutes".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service's error code, when the service answered with one.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}
