//! The signature on an alert, in the scheme Stripe's webhooks use (see
//! docs/alerts.md): `Callqa-Signature: t=<unix seconds>,v1=<hex>`, where
//! the hex is HMAC-SHA256 with the webhook's secret over `"<t>.<body>"`.
//!
//! The timestamp is signed with the body so a captured request cannot be
//! replayed later: a receiver refuses signatures older than its tolerance.
//! A header may carry several `v1` values (a receiver rotating its secret
//! accepts either); callqa sends one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2_hmac::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Callqa-Signature";
/// The event's id (also the body's `id`): what a receiver deduplicates by.
pub const EVENT_ID_HEADER: &str = "Callqa-Event-Id";
/// 1 for the first attempt to deliver an event to a webhook, then 2, 3, ...
pub const ATTEMPT_HEADER: &str = "Callqa-Delivery-Attempt";

/// What a receiver should allow between signing and checking (clock skew
/// and time in transit), as Stripe's libraries default to.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the {SIGNATURE_HEADER} header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the {SIGNATURE_HEADER} header has no v1 signature")]
    NoSignature,
    #[error("the signature's timestamp is {age_seconds} s away from now, more than the {tolerance_seconds} s allowed")]
    Stale { age_seconds: i64, tolerance_seconds: u64 },
    #[error("no v1 signature matches the body with this secret")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` signed at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Checks a `Callqa-Signature` header against the body as received (the
/// raw bytes, before any JSON parsing) and the receiver's clock.
pub fn verify(secret: &[u8], header: &str, body: &[u8], tolerance: Duration) -> Result<(), SignatureError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    verify_at(secret, header, body, tolerance, now)
}

/// [`verify`] with the receiver's clock given (unix seconds).
pub fn verify_at(
    secret: &[u8],
    header: &str,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            // A malformed v1 cannot match; another v1 still may.
            "v1" => signatures.extend(hex::decode(value).ok()),
            // Later schemes (v2, ...) are for later receivers.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    // Checked before the MAC, and both ways: a timestamp far in the future
    // is a replay waiting to happen.
    let age = now.saturating_sub(timestamp);
    if age.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale { age_seconds: age, tolerance_seconds: tolerance.as_secs() });
    }
    let expected = mac(secret, timestamp, body);
    // `verify_slice` compares in constant time.
    if signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"e1","type":"qa.item.failed"}"#;

    #[test]
    fn a_signature_verifies_within_the_tolerance_only() {
        let header = sign(SECRET, 1_800_000_000, BODY);
        assert!(header.starts_with("t=1800000000,v1="), "{header}");
        assert_eq!(verify_at(SECRET, &header, BODY, DEFAULT_TOLERANCE, 1_800_000_100), Ok(()));
        assert_eq!(
            verify_at(SECRET, &header, BODY, DEFAULT_TOLERANCE, 1_800_000_301),
            Err(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
        );
        assert!(matches!(
            verify_at(SECRET, &header, BODY, DEFAULT_TOLERANCE, 1_799_999_000),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn a_changed_body_timestamp_or_secret_is_refused() {
        let header = sign(SECRET, 1_800_000_000, BODY);
        let now = 1_800_000_000;
        assert_eq!(verify_at(SECRET, &header, b"{}", DEFAULT_TOLERANCE, now), Err(SignatureError::Mismatch));
        assert_eq!(verify_at(b"another secret", &header, BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::Mismatch));
        let moved = header.replace("t=1800000000", "t=1800000001");
        assert_eq!(verify_at(SECRET, &moved, BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_v1_may_match_and_malformed_headers_are_named() {
        let good = sign(SECRET, 1_800_000_000, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let rotated = format!("t=1800000000,v1={},v1=zz,v1={v1}", "00".repeat(32));
        assert_eq!(verify_at(SECRET, &rotated, BODY, DEFAULT_TOLERANCE, 1_800_000_000), Ok(()));
        let now = 1_800_000_000;
        assert_eq!(verify_at(SECRET, "", BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::Malformed));
        assert_eq!(verify_at(SECRET, "v1=ab", BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::Malformed));
        assert_eq!(verify_at(SECRET, "t=x,v1=ab", BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::Malformed));
        assert_eq!(verify_at(SECRET, "t=1800000000", BODY, DEFAULT_TOLERANCE, now), Err(SignatureError::NoSignature));
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231's key and data, to pin the construction to plain
        // HMAC-SHA256 any receiver's library computes.
        let key = [0x0b; 20];
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(b"Hi There");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let header = sign(b"k", 7, b"body");
        let mut mac = HmacSha256::new_from_slice(b"k").unwrap();
        mac.update(b"7.body");
        assert_eq!(header, format!("t=7,v1={}", hex::encode(mac.finalize().into_bytes())));
    }
}
