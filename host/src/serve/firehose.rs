//! The two Kinesis Data Firehose contracts.
//!
//! `POST /v1/firehose`, HTTP endpoint delivery: Firehose posts
//! `{"requestId", "timestamp", "records": [{"data": <base64>}]}` (gzip when
//! the stream's content encoding says so) with the headers
//! `X-Amz-Firehose-Request-Id`, `X-Amz-Firehose-Access-Key` and
//! `X-Amz-Firehose-Common-Attributes`. The answer is
//! `{"requestId", "timestamp"}` with 200 once every record is durably
//! deduplicated and stored, or the same with `errorMessage` and a status
//! Firehose retries on: 401 (access key), 400 (malformed), 413 (too large),
//! 503 (store or sink failing, records held by another host). A retried
//! request carries the same request id: its records are duplicates in the
//! store, and a request id answered 200 within the TTL is answered 200 again
//! without touching the store.
//!
//! `POST /v1/firehose/transform`, data transformation: the event a
//! transformation Lambda receives in, the response it returns out; the same
//! logic as `callqa ingest --firehose-response` (`Ok` unique, `Dropped`
//! duplicate, `ProcessingFailed` unusable), with the records also stored in
//! the sink.

use std::io::Cursor;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::api_error::ApiError;
use super::app_state::{AppState, ContentDigest, Recall, MAX_REQUEST_ID_BYTES};
use super::request_body::{is_json, media_type};
use crate::ctr::{DecodeError, Delivery};
use crate::ingest::RecordOutcome;
use crate::sources::{FirehoseRecord, FirehoseResponse, InputFormat, Position, RawRecord, RecordBytes, RecordReader};

const REQUEST_ID: &str = "x-amz-firehose-request-id";
const ACCESS_KEY: &str = "x-amz-firehose-access-key";
const COMMON_ATTRIBUTES: &str = "x-amz-firehose-common-attributes";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryRequest {
    request_id: String,
    #[allow(dead_code)]
    timestamp: Option<i64>,
    records: Vec<DeliveryRecord>,
}

#[derive(Deserialize)]
struct DeliveryRecord {
    data: String,
}

fn answer(status: StatusCode, request_id: Option<&str>, error: Option<String>) -> Response {
    let timestamp = chrono::Utc::now().timestamp_millis();
    let body = match error {
        None => json!({"requestId": request_id, "timestamp": timestamp}),
        Some(message) => json!({"requestId": request_id, "timestamp": timestamp, "errorMessage": message}),
    };
    (status, Json(body)).into_response()
}

/// Compares digests, so neither the key's bytes nor its length leak
/// through timing.
fn key_matches(given: &[u8], expected: &str) -> bool {
    Sha256::digest(given).ct_eq(&Sha256::digest(expected.as_bytes())).into()
}

pub async fn deliver(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let header_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header_id.as_ref().is_some_and(|h| h.len() > MAX_REQUEST_ID_BYTES) {
        let message = format!("X-Amz-Firehose-Request-Id is longer than {MAX_REQUEST_ID_BYTES} bytes");
        return answer(StatusCode::BAD_REQUEST, None, Some(message));
    }
    let id = header_id.as_deref();
    let Some(expected) = app.config.firehose_access_key.as_deref() else {
        return answer(
            StatusCode::UNAUTHORIZED,
            id,
            Some("this server has no Firehose access key configured (--firehose-access-key)".into()),
        );
    };
    match headers.get(ACCESS_KEY) {
        Some(given) if key_matches(given.as_bytes(), expected) => {}
        Some(_) => return answer(StatusCode::UNAUTHORIZED, id, Some("wrong X-Amz-Firehose-Access-Key".into())),
        None => return answer(StatusCode::UNAUTHORIZED, id, Some("missing X-Amz-Firehose-Access-Key".into())),
    }
    let media = media_type(&headers);
    if media.is_some() && !is_json(media.as_deref()) {
        let e = ApiError::unsupported_type("application/json", media.as_deref());
        return answer(e.status, id, Some(e.message));
    }
    if let Some(attributes) = headers.get(COMMON_ATTRIBUTES) {
        let parsed = attributes.to_str().ok().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
        if !parsed.as_ref().is_some_and(|v| v.is_object()) {
            return answer(
                StatusCode::BAD_REQUEST,
                id,
                Some("X-Amz-Firehose-Common-Attributes is not a JSON object".into()),
            );
        }
    }
    let body = match app.bodies.read(&headers, body, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return answer(e.status, id, Some(e.message)),
    };
    let request: DeliveryRequest = match serde_json::from_slice(&body.bytes) {
        Ok(r) => r,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                id,
                Some(format!(
                "not a Firehose delivery request ({{\"requestId\", \"timestamp\", \"records\": [{{\"data\"}}]}}): {e}"
            )),
            )
        }
    };
    if header_id.as_deref().is_some_and(|h| h != request.request_id) {
        return answer(
            StatusCode::BAD_REQUEST,
            id,
            Some("X-Amz-Firehose-Request-Id differs from the body's requestId".into()),
        );
    }
    let id = request.request_id.as_str();
    if id.is_empty() {
        // Every request id is a promise kept for the TTL: an empty one
        // would make every later request without an id look answered.
        return answer(StatusCode::BAD_REQUEST, None, Some("requestId is empty; send a unique id per request".into()));
    }
    if id.len() > MAX_REQUEST_ID_BYTES {
        return answer(
            StatusCode::BAD_REQUEST,
            None,
            Some(format!("requestId has {} bytes; at most {MAX_REQUEST_ID_BYTES} are accepted", id.len())),
        );
    }
    let digest = delivery_digest(&request.records);
    match app.delivered.recall(id, &digest) {
        Recall::New => {}
        Recall::Replay(()) => {
            app.metrics.firehose_replays.inc();
            tracing::info!(request_id = id, "Firehose request answered again (already stored)");
            return answer(StatusCode::OK, Some(id), None);
        }
        Recall::Conflict => {
            tracing::warn!(request_id = id, "a request id answered before came again with other records; refused");
            return answer(
                StatusCode::CONFLICT,
                Some(id),
                Some(format!(
                    "request id {id} was already answered for different records; \
                     send these records under a new request id"
                )),
            );
        }
    }

    let engine = base64::engine::general_purpose::STANDARD;
    let max = app.config.max_record_bytes;
    let records: Vec<RawRecord> = request
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let position = Position::Firehose { index: index as u64, record_id: format!("{id}/{index}") };
            match engine.decode(record.data.as_bytes()) {
                Ok(bytes) if bytes.len() as u64 > max => RawRecord {
                    position,
                    rejected: Some(DecodeError::Oversized { size: bytes.len() as u64, max }),
                    bytes: RecordBytes::cut(&bytes),
                    delivery: Delivery::FirehoseRecord,
                },
                Ok(bytes) => {
                    RawRecord { position, bytes: bytes.into(), delivery: Delivery::FirehoseRecord, rejected: None }
                }
                Err(e) => RawRecord {
                    position,
                    bytes: record.data.as_bytes().to_vec().into(),
                    delivery: Delivery::FirehoseRecord,
                    rejected: Some(DecodeError::BadBase64(e.to_string())),
                },
            }
        })
        .collect();
    let report = match app.ingest(format!("firehose:{id}"), records).await {
        Ok(report) => report,
        Err(err) => {
            tracing::error!(request_id = id, "Firehose request not stored, Firehose will retry: {err:#}");
            return answer(StatusCode::SERVICE_UNAVAILABLE, Some(id), Some(format!("{err:#}")));
        }
    };
    let contested = report.count(RecordOutcome::Retry);
    if contested > 0 {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(id),
            Some(format!("{contested} records are being stored by another host; retry later")),
        );
    }
    app.delivered.remember(id.to_owned(), digest, ());
    tracing::debug!(
        request_id = id,
        unique = report.count(RecordOutcome::Unique) + report.count(RecordOutcome::Update),
        duplicates = report.count(RecordOutcome::Duplicate),
        dead_lettered = report.count(RecordOutcome::DeadLetter),
        "Firehose request stored"
    );
    answer(StatusCode::OK, Some(id), None)
}

pub async fn transform(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let media = media_type(&headers);
    if media.is_some() && !is_json(media.as_deref()) {
        return Err(ApiError::unsupported_type("application/json", media.as_deref()));
    }
    let body = app.bodies.read(&headers, body, app.config.max_body_bytes).await?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&body.bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let invocation = serde_json::from_slice::<serde_json::Value>(&body.bytes)
        .ok()
        .and_then(|v| v.get("invocationId").and_then(|i| i.as_str()).map(str::to_owned))
        .filter(|id| !id.is_empty());
    if invocation.as_ref().is_some_and(|id| id.len() > MAX_REQUEST_ID_BYTES) {
        return Err(ApiError::bad_request(format!("invocationId is longer than {MAX_REQUEST_ID_BYTES} bytes")));
    }
    let mut reader =
        RecordReader::from_reader(Box::new(Cursor::new(body.bytes.clone())), app.config.max_record_bytes, false)
            .map_err(|e| ApiError::bad_request(format!("cannot read the event: {e}")))?;
    let Some(event_records) =
        reader.firehose_records().filter(|_| reader.format() == InputFormat::FirehoseEvent).map(<[_]>::to_vec)
    else {
        return Err(ApiError::bad_request(
            "not a Firehose transformation event ({\"invocationId\", \"records\": [{\"recordId\", \"data\"}]})",
        ));
    };
    let digest = transform_digest(&event_records);
    if let Some(id) = invocation.as_deref() {
        match app.transformed.recall(id, &digest) {
            Recall::New => {}
            Recall::Replay(previous) => {
                app.metrics.firehose_replays.inc();
                return Ok(Json(&*previous).into_response());
            }
            Recall::Conflict => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "invocation-id-reused",
                    format!("invocationId {id} was already answered for different records; use a new invocationId"),
                ))
            }
        }
    }
    let mut records = Vec::with_capacity(event_records.len());
    while let Some(raw) =
        reader.next_record().map_err(|e| ApiError::bad_request(format!("cannot read the event: {e}")))?
    {
        records.push(raw);
    }
    let name = format!("firehose-transform:{}", invocation.as_deref().unwrap_or("-"));
    let report = app.ingest(name, records).await.map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    let contested = report.count(RecordOutcome::Retry);
    if contested > 0 {
        return Err(ApiError::unavailable(format!(
            "{contested} records are being stored by another host; retry later"
        )));
    }
    // Starts as ProcessingFailed: a record without a decision is never silently dropped.
    let mut response = FirehoseResponse::for_event(&event_records);
    for result in &report.results {
        response.set(result.index, result.outcome.firehose_result());
    }
    let response = Arc::new(response);
    if let Some(id) = invocation {
        app.transformed.remember(id, digest, response.clone());
    }
    Ok(Json(&*response).into_response())
}

/// A delivery's records, in order, each length-prefixed so that no two
/// different lists of records hash alike.
fn delivery_digest(records: &[DeliveryRecord]) -> ContentDigest {
    let mut hash = Sha256::new();
    for record in records {
        hash.update((record.data.len() as u64).to_le_bytes());
        hash.update(record.data.as_bytes());
    }
    hash.finalize().into()
}

fn transform_digest(records: &[FirehoseRecord]) -> ContentDigest {
    let mut hash = Sha256::new();
    for record in records {
        for part in [&record.record_id, &record.data] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().into()
}
