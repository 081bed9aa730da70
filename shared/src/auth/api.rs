//! HTTP API request signatures (Pusher "Authentication" of REST requests).
//!
//! The string to sign is `METHOD\nPATH\nQUERY`, where QUERY is every query parameter except
//! `auth_signature`, keys lower-cased, sorted by key, joined as `key=value` with `&`, values *not*
//! URL-encoded (the PHP, Node and Python SDKs all sign decoded values). POST requests carry
//! `body_md5`, the hex MD5 of the body. `auth_timestamp` must be within
//! [`API_TIMESTAMP_TOLERANCE_SECS`] of the server's clock. On the wire the signed parameters are
//! percent-encoded ([`query_string`]), as every client that sends them does.

use md5::{Digest, Md5};

use crate::auth::{hmac_sha256_hex, signatures_match};
use crate::limits::API_TIMESTAMP_TOLERANCE_SECS;

/// The signature version Pusher's SDKs send.
pub const AUTH_VERSION: &str = "1.0";

/// Why a request's signature is not accepted. Each is a 401 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required parameter is absent.
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    /// A parameter appears twice.
    #[error("query parameter {0} is given more than once")]
    DuplicateParameter(String),
    /// `auth_key` is not the app's key.
    #[error("auth_key does not belong to this app")]
    WrongKey,
    /// `auth_version` is not 1.0.
    #[error("unsupported auth_version {0:?}; expected \"1.0\"")]
    UnsupportedVersion(String),
    /// `auth_timestamp` is not a number of seconds.
    #[error("auth_timestamp {0:?} is not a Unix time in seconds")]
    InvalidTimestamp(String),
    /// `auth_timestamp` is too far from the server's clock.
    #[error(
        "auth_timestamp is {skew} s away from the server's clock (tolerance {API_TIMESTAMP_TOLERANCE_SECS} s); check the clock"
    )]
    TimestampOutOfRange {
        /// The distance in seconds.
        skew: u64,
    },
    /// The request has a body but no `body_md5`.
    #[error("missing query parameter body_md5 for a request with a body")]
    MissingBodyMd5,
    /// `body_md5` does not match the body.
    #[error("body_md5 does not match the request body")]
    BodyMd5Mismatch,
    /// The signature does not match.
    #[error("invalid auth_signature; the string signed should be {0:?}")]
    SignatureMismatch(String),
}

/// Hex MD5 of a request body.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string Pusher signs for a request.
pub fn string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|(key, _)| key != "auth_signature")
        .map(|(key, value)| (key.to_ascii_lowercase(), value.as_str()))
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}\n{path}\n{query}", method.to_ascii_uppercase())
}

/// The query parameters of a signed request: `extra` plus the `auth_*` and `body_md5` ones.
pub fn sign(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    extra: &[(String, String)],
    body: &[u8],
    now_unix_secs: u64,
) -> Vec<(String, String)> {
    let mut params = extra.to_vec();
    params.push(("auth_key".into(), key.into()));
    params.push(("auth_timestamp".into(), now_unix_secs.to_string()));
    params.push(("auth_version".into(), AUTH_VERSION.into()));
    if !body.is_empty() {
        params.push(("body_md5".into(), body_md5(body)));
    }
    let signature = hmac_sha256_hex(secret, &string_to_sign(method, path, &params));
    params.push(("auth_signature".into(), signature));
    params
}

/// Checks a request's signature against the app's key and secret.
pub fn verify(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    params: &[(String, String)],
    body: &[u8],
    now_unix_secs: u64,
) -> Result<(), SignatureError> {
    let mut seen = std::collections::HashSet::new();
    for (name, _) in params {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(SignatureError::DuplicateParameter(name.clone()));
        }
    }
    let param = |name: &'static str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    let given_key = param("auth_key").ok_or(SignatureError::MissingParameter("auth_key"))?;
    let timestamp =
        param("auth_timestamp").ok_or(SignatureError::MissingParameter("auth_timestamp"))?;
    let version = param("auth_version").ok_or(SignatureError::MissingParameter("auth_version"))?;
    let signature =
        param("auth_signature").ok_or(SignatureError::MissingParameter("auth_signature"))?;
    if !signatures_match(key, given_key) {
        return Err(SignatureError::WrongKey);
    }
    if version != AUTH_VERSION {
        return Err(SignatureError::UnsupportedVersion(version.to_string()));
    }
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp(timestamp.to_string()))?;
    let skew = timestamp.abs_diff(now_unix_secs);
    if skew > API_TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::TimestampOutOfRange { skew });
    }
    match param("body_md5") {
        Some(given) if !signatures_match(&body_md5(body), given) => {
            return Err(SignatureError::BodyMd5Mismatch);
        }
        None if !body.is_empty() => return Err(SignatureError::MissingBodyMd5),
        _ => {}
    }
    let signed = string_to_sign(method, path, params);
    if !signatures_match(&hmac_sha256_hex(secret, &signed), signature) {
        return Err(SignatureError::SignatureMismatch(signed));
    }
    Ok(())
}

/// The query string of signed parameters, each key and value percent-encoded.
pub fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay as they are).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent_encode("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(percent_encode("a b,c"), "a%20b%2Cc");
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matches_pushers_documented_example() {
        // From Pusher's HTTP API reference ("Worked authentication example").
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let params = pairs(&[
            ("auth_key", "278d425bdf160c739803"),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", &body_md5(body)),
        ]);
        assert_eq!(params[3].1, "ec365a775a4cd0599faeb73354201b6f");
        let signed = string_to_sign("POST", "/apps/3/events", &params);
        assert_eq!(
            hmac_sha256_hex("7ad3773142a6692b25b8", &signed),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn signed_requests_verify() {
        let body = br#"{"name":"e","channel":"c","data":"x"}"#;
        let params = sign("key", "secret", "POST", "/apps/1/events", &[], body, NOW);
        assert_eq!(
            verify(
                "key",
                "secret",
                "POST",
                "/apps/1/events",
                &params,
                body,
                NOW + 5
            ),
            Ok(())
        );
        let query = pairs(&[("filter_by_prefix", "presence-"), ("info", "user_count")]);
        let params = sign("key", "secret", "GET", "/apps/1/channels", &query, b"", NOW);
        assert_eq!(
            verify(
                "key",
                "secret",
                "GET",
                "/apps/1/channels",
                &params,
                b"",
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn every_tampering_is_refused() {
        let body = br#"{"name":"e","channel":"c","data":"x"}"#;
        let good = sign("key", "secret", "POST", "/apps/1/events", &[], body, NOW);
        let check = |params: &[(String, String)], body: &[u8], now: u64| {
            verify("key", "secret", "POST", "/apps/1/events", params, body, now)
        };
        assert_eq!(
            check(&good, b"{}", NOW),
            Err(SignatureError::BodyMd5Mismatch)
        );
        assert_eq!(
            check(&good, body, NOW + 601),
            Err(SignatureError::TimestampOutOfRange { skew: 601 })
        );
        let wrong_secret = sign("key", "other", "POST", "/apps/1/events", &[], body, NOW);
        assert!(matches!(
            check(&wrong_secret, body, NOW),
            Err(SignatureError::SignatureMismatch(_))
        ));
        let wrong_key = sign("nope", "secret", "POST", "/apps/1/events", &[], body, NOW);
        assert_eq!(check(&wrong_key, body, NOW), Err(SignatureError::WrongKey));
        let without_md5: Vec<_> = good
            .iter()
            .filter(|(k, _)| k != "body_md5")
            .cloned()
            .collect();
        assert_eq!(
            check(&without_md5, body, NOW),
            Err(SignatureError::MissingBodyMd5)
        );
        let without_sig: Vec<_> = good
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .cloned()
            .collect();
        assert_eq!(
            check(&without_sig, body, NOW),
            Err(SignatureError::MissingParameter("auth_signature"))
        );
        let mut doubled = good.clone();
        doubled.push(("auth_key".into(), "key".into()));
        assert_eq!(
            check(&doubled, body, NOW),
            Err(SignatureError::DuplicateParameter("auth_key".into()))
        );
        let mut extra = good.clone();
        extra.push(("info".into(), "subscription_count".into()));
        assert!(matches!(
            check(&extra, body, NOW),
            Err(SignatureError::SignatureMismatch(_))
        ));
    }
}
