//! Reading a request body under the size limit, gunzipping it when its
//! `Content-Encoding` says so (the limit holds after decompression too, so
//! a small gzip bomb is refused like a large body), and checking its type.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

use super::api_error::ApiError;

pub async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    if let Some(length) =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    {
        if length > limit {
            return Err(ApiError::too_large(limit));
        }
    }
    let bytes = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let inner = err.into_inner();
            let over = std::iter::successors(Some(&*inner as &(dyn std::error::Error + 'static)), |e| e.source())
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            return Err(if over {
                ApiError::too_large(limit)
            } else {
                ApiError::bad_request(format!("cannot read the request body: {inner}"))
            });
        }
    };
    match content_encoding(headers)?.as_deref() {
        None | Some("identity") => Ok(bytes),
        Some("gzip") | Some("x-gzip") => gunzip(&bytes, limit),
        Some(other) => Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-encoding",
            format!("Content-Encoding {other} is not supported; send gzip or an uncompressed body"),
        )),
    }
}

fn content_encoding(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim().to_ascii_lowercase()))
            .map_err(|_| ApiError::bad_request("Content-Encoding is not text")),
    }
}

fn gunzip(bytes: &[u8], limit: u64) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(limit + 1);
    decoder.read_to_end(&mut out).map_err(|e| ApiError::bad_request(format!("the body is not valid gzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// The media type without parameters, lower-cased: `application/json`.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

pub fn is_json(media: Option<&str>) -> bool {
    matches!(media, Some("application/json"))
        || media.is_some_and(|m| m.starts_with("application/") && m.ends_with("+json"))
}

pub fn is_ndjson(media: Option<&str>) -> bool {
    matches!(
        media,
        Some(
            "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/jsonlines"
        )
    )
}
