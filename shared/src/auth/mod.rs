//! Signatures: HTTP API requests ([`api`]); channel authorization and user authentication
//! ([`channel`]); webhook requests ([`webhook`]).
//!
//! Every comparison of a signature is constant-time ([`subtle`]).

pub mod api;
pub mod channel;
pub mod webhook;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Hex HMAC-SHA256 of `message` under `secret`, as Pusher signs everything.
pub fn hmac_sha256_hex(secret: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any size");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares two signatures in constant time (for equal lengths).
pub fn signatures_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}
