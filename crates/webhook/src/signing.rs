//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use stephook_core::SigningSecret;

const SIGNATURE_VERSION: &str = "v1";

/// The value of the `webhook-signature` header for one message.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = signed_content_mac(secret, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!(
        "{SIGNATURE_VERSION},{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Why a signed request was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing webhook-id, webhook-timestamp or webhook-signature header")]
    MissingHeaders,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away from now")]
    StaleTimestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// How far a timestamp may be from the receiver's clock (replay protection).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Checks a Standard Webhooks signature header (which may list several space-separated
/// `v1,<base64>` signatures) in constant time, and the timestamp against `now`.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::StaleTimestamp);
    }
    let expected_prefix = format!("{SIGNATURE_VERSION},");
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix(&expected_prefix) else {
            continue;
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        if signed_content_mac(secret, msg_id, timestamp, body)
            .verify_slice(&given)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

/// HMAC-SHA256 over the Standard Webhooks signed content `id.timestamp.body`.
fn signed_content_mac(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.key())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification's reference libraries.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verify_accepts_our_signatures_and_rejects_tampering() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(&secret, "id", 1_000, b"body");
        let listed = format!("v1,bm9wZQ== {signature}");
        assert_eq!(
            verify(&secret, "id", "1000", &listed, b"body", 1_010),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "id", "1000", &signature, b"bodx", 1_000),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&secret, "id", "1000", &signature, b"body", 1_000 + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify(&secret, "id", "soon", &signature, b"body", 1_000),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let base = sign(&secret, "id", 1, b"body");
        assert_ne!(base, sign(&secret, "id", 1, b"bodY"));
        assert_ne!(base, sign(&secret, "id", 2, b"body"));
        assert_ne!(base, sign(&secret, "id2", 1, b"body"));
    }
}
