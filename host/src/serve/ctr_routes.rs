//! `POST /v1/ctr`: contact records over plain HTTP, for producers other
//! than Firehose. `application/json` (one record or an array) or NDJSON
//! (`application/x-ndjson`); the answer lists every record's outcome:
//! `{"records": [{"index", "outcome", "contact_id", "fingerprint", "reason"}], "counts": {…}}`
//! with 200 once the stored ones are durable, or 503 (same body) when some
//! must be sent again (`outcome: "retry"`).

use std::io::Cursor;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api_error::ApiError;
use super::app_state::AppState;
use super::request_body::{is_json, is_ndjson, media_type};
use crate::ingest::RecordOutcome;
use crate::sources::{InputFormat, RecordReader};

pub async fn ingest(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let media = media_type(&headers);
    let ndjson = if is_ndjson(media.as_deref()) {
        true
    } else if is_json(media.as_deref()) {
        false
    } else {
        return Err(ApiError::unsupported_type("application/json or application/x-ndjson", media.as_deref()));
    };
    let body = app.bodies.read(&headers, body, app.config.max_body_bytes).await?;
    if !ndjson {
        // NDJSON lines are judged one by one (a bad line is dead-lettered);
        // a JSON body is one document, and a broken one is a bad request.
        serde_json::from_slice::<serde::de::IgnoredAny>(&body.bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    }
    let mut reader =
        RecordReader::from_reader(Box::new(Cursor::new(body.bytes.clone())), app.config.max_record_bytes, ndjson)
            .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
    if reader.format() == InputFormat::Empty {
        return Err(ApiError::bad_request("the body holds no contact records"));
    }
    if reader.format() == InputFormat::FirehoseEvent {
        return Err(ApiError::bad_request(
            "this is a Firehose transformation event: POST it to /v1/firehose/transform",
        ));
    }
    let mut records = Vec::new();
    while let Some(raw) =
        reader.next_record().map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?
    {
        records.push(raw);
    }
    let report =
        app.ingest("http:/v1/ctr".into(), records).await.map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    let retry = report.count(RecordOutcome::Retry);
    let body = json!({
        "records": report.results,
        "counts": {
            "read": report.results.len(),
            "unique": report.count(RecordOutcome::Unique),
            "update": report.count(RecordOutcome::Update),
            "duplicate": report.count(RecordOutcome::Duplicate),
            "dead_letter": report.count(RecordOutcome::DeadLetter),
            "retry": retry,
        }
    });
    let status = if retry > 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    Ok((status, Json(body)).into_response())
}
