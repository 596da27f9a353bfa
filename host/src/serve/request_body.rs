//! Reading a request body under the size limit, the body timeout and the
//! budget of bytes buffered across requests, gunzipping it when its
//! `Content-Encoding` says so (the limit holds after decompression too, so
//! a small gzip bomb is refused like a large body), and checking its type.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::api_error::ApiError;

/// Bytes of request bodies held at once, across all requests: each body is
/// read against this budget and holds its share until the request ends.
/// Counted in KiB so that the semaphore's permits stay small numbers.
#[derive(Clone)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    total_bytes: u64,
    /// How long a client has to send a whole body; a client trickling
    /// bytes cannot hold a connection and its buffer for longer.
    timeout: Duration,
}

/// A request body read under the budget; its share is returned on drop.
pub struct BufferedBody {
    pub bytes: Bytes,
    _share: OwnedSemaphorePermit,
}

/// The share of the budget is taken in steps of this many KiB as a body
/// without a Content-Length grows.
const STEP_KIB: u32 = 64;

impl BodyBudget {
    pub fn new(total_bytes: u64, timeout: Duration) -> Self {
        let kib = usize::try_from(total_bytes.div_ceil(1024)).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        BodyBudget { kib: Arc::new(Semaphore::new(kib)), total_bytes, timeout }
    }

    /// Reads the body (at most `limit` bytes, before and after gunzip)
    /// within the body timeout and the budget: 413 past the limit, 408 past
    /// the timeout, 503 with `Retry-After` when the budget is spent.
    pub async fn read(&self, headers: &HeaderMap, body: Body, limit: u64) -> Result<BufferedBody, ApiError> {
        let declared =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(ApiError::too_large(limit));
        }
        let mut share = self.take(declared.unwrap_or(0).div_ceil(1024).max(1))?;
        let read = async {
            let mut body = body;
            let mut buffer = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
                let Ok(data) = frame.into_data() else { continue };
                if (buffer.len() + data.len()) as u64 > limit {
                    return Err(ApiError::too_large(limit));
                }
                buffer.extend_from_slice(&data);
                self.grow(&mut share, buffer.len() as u64)?;
            }
            Ok(buffer)
        };
        let bytes = match tokio::time::timeout(self.timeout, read).await {
            Ok(read) => Bytes::from(read?),
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body-timeout",
                    format!("the request body did not arrive within {:?} (--body-timeout)", self.timeout),
                ))
            }
        };
        let bytes = match content_encoding(headers)?.as_deref() {
            None | Some("identity") => bytes,
            Some("gzip") | Some("x-gzip") => self.gunzip(&bytes, limit, &mut share)?,
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-encoding",
                    format!("Content-Encoding {other} is not supported; send gzip or an uncompressed body"),
                ))
            }
        };
        Ok(BufferedBody { bytes, _share: share })
    }

    /// Decompresses a step at a time, each step paid for before it is
    /// made: eight gzip bombs at once cannot each inflate to the limit.
    fn gunzip(&self, bytes: &[u8], limit: u64, share: &mut OwnedSemaphorePermit) -> Result<Bytes, ApiError> {
        let mut out = Vec::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(limit + 1);
        let mut step = vec![0u8; STEP_KIB as usize * 1024];
        loop {
            let n = decoder
                .read(&mut step)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid gzip: {e}")))?;
            if n == 0 {
                break;
            }
            if (out.len() + n) as u64 > limit {
                return Err(ApiError::too_large(limit));
            }
            self.grow(share, (bytes.len() + out.len() + n) as u64)?;
            out.extend_from_slice(&step[..n]);
        }
        Ok(Bytes::from(out))
    }

    fn take(&self, kib: u64) -> Result<OwnedSemaphorePermit, ApiError> {
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        self.kib.clone().try_acquire_many_owned(kib).map_err(|_| self.spent())
    }

    /// Extends `share` to cover `bytes`, a step at a time.
    fn grow(&self, share: &mut OwnedSemaphorePermit, bytes: u64) -> Result<(), ApiError> {
        let needed = bytes.div_ceil(1024);
        let held = share.num_permits() as u64;
        if needed > held {
            share.merge(self.take((needed - held).max(STEP_KIB as u64))?);
        }
        Ok(())
    }

    fn spent(&self) -> ApiError {
        ApiError::overloaded(format!(
            "the server is holding {} bytes of request bodies, its limit (--max-buffered-bytes); retry shortly",
            self.total_bytes
        ))
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
