//! Channel authorization and user authentication signatures (Pusher "Authentication and
//! authorization signatures").
//!
//! A private or encrypted channel's `auth` is `key:HMAC-SHA256(secret, "socket_id:channel")`; a
//! presence channel signs `"socket_id:channel:channel_data"`; `pusher:signin` signs
//! `"socket_id::user::user_data"`. The server recomputes the signature with the app secret and
//! compares in constant time.

use crate::auth::{hmac_sha256_hex, signatures_match};

/// Why an `auth` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `auth` was sent.
    #[error("no auth signature was given")]
    Missing,
    /// `auth` is not `key:signature`.
    #[error("auth must be \"key:signature\"")]
    Malformed,
    /// The key part is another app's.
    #[error("auth was signed for another app key")]
    WrongKey,
    /// The signature does not match.
    #[error("invalid signature: expected HMAC-SHA256 of {0:?}")]
    Mismatch(String),
}

/// The string signed to authorize a subscription.
pub fn channel_string_to_sign(
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The string signed to authenticate a user.
pub fn user_string_to_sign(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// The `auth` value for a signed string: `key:signature`.
pub fn sign(key: &str, secret: &str, signed: &str) -> String {
    format!("{key}:{}", hmac_sha256_hex(secret, signed))
}

/// Checks an `auth` value against the string that should have been signed.
pub fn verify(key: &str, secret: &str, signed: &str, auth: Option<&str>) -> Result<(), AuthError> {
    let auth = auth.ok_or(AuthError::Missing)?;
    let (given_key, signature) = auth.split_once(':').ok_or(AuthError::Malformed)?;
    if !signatures_match(key, given_key) {
        return Err(AuthError::WrongKey);
    }
    if !signatures_match(&hmac_sha256_hex(secret, signed), signature) {
        return Err(AuthError::Mismatch(signed.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pushers_documented_examples() {
        // Pusher's auth signature docs: key 278d425bdf160c739803, secret 7ad3773142a6692b25b8.
        let private = channel_string_to_sign("1234.1234", "private-foobar", None);
        assert_eq!(
            sign("278d425bdf160c739803", "7ad3773142a6692b25b8", &private),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let presence = channel_string_to_sign("1234.1234", "presence-foobar", Some(data));
        assert_eq!(
            sign("278d425bdf160c739803", "7ad3773142a6692b25b8", &presence),
            "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
        );
    }

    #[test]
    fn refuses_bad_auth() {
        let signed = channel_string_to_sign("1.2", "private-a", None);
        let good = sign("key", "secret", &signed);
        assert_eq!(verify("key", "secret", &signed, Some(&good)), Ok(()));
        assert_eq!(
            verify("key", "secret", &signed, None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify("key", "secret", &signed, Some("nocolon")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify(
                "key",
                "secret",
                &signed,
                Some(&sign("other", "secret", &signed))
            ),
            Err(AuthError::WrongKey)
        );
        let other_socket = channel_string_to_sign("1.3", "private-a", None);
        assert!(matches!(
            verify("key", "secret", &other_socket, Some(&good)),
            Err(AuthError::Mismatch(_))
        ));
        let user = user_string_to_sign("1.2", r#"{"id":"7"}"#);
        assert_eq!(
            verify("key", "secret", &user, Some(&sign("key", "secret", &user))),
            Ok(())
        );
    }
}
