//! Webhook signatures (Pusher "Webhooks › Authentication").
//!
//! A webhook request carries `X-Pusher-Key` (the app key) and `X-Pusher-Signature`, the hex
//! HMAC-SHA256 of the exact request body under the app secret. The receiving SDKs (npm
//! `pusher`'s `webhook().isValid()`, PyPI `pusher`'s `validate_webhook`, pusher-http-php's
//! `webhook()`) recompute it over the raw body, so the body is signed as the bytes sent.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::signatures_match;
use crate::secret::Secret;

/// The header naming the app key.
pub const KEY_HEADER: &str = "X-Pusher-Key";
/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Pusher-Signature";

/// The `X-Pusher-Signature` of a webhook body.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any size");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the body's signature (constant-time).
pub fn verify(secret: &Secret, body: &[u8], signature: &str) -> bool {
    signatures_match(&sign(secret, body), signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hmac_sha256_hex;

    #[test]
    fn signs_the_exact_body_like_the_sdks() {
        let secret = Secret::new("7ad3773142a6692b25b8");
        let body =
            br#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test"}]}"#;
        let signature = sign(&secret, body);
        // The same HMAC every other Pusher signature uses, over the body as text.
        assert_eq!(
            signature,
            hmac_sha256_hex(secret.expose(), std::str::from_utf8(body).unwrap())
        );
        assert_eq!(signature.len(), 64);
        assert!(verify(&secret, body, &signature));
        assert!(!verify(&secret, b"{}", &signature));
        assert!(!verify(&Secret::new("other"), body, &signature));
    }
}
