//! The JWT an edge presents in its `Hello`: HS256, signed with the cluster key, short-lived.
//!
//! Time is passed in (`now`), so minting and checking are deterministic.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ids::EdgeId;
use crate::secret::Secret;

/// The token's issuer.
pub const ISSUER: &str = "herald-edge";
/// The token's audience.
pub const AUDIENCE: &str = "herald-link";
/// How long a token is valid after it is minted, in seconds.
pub const TOKEN_TTL_SECS: u64 = 60;
/// How far a token's `iat` may be ahead of the hub's clock, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 30;

/// The claims of a link token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// The edge id, in decimal.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// Why a token is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, wrong algorithm, wrong signature, issuer or audience.
    #[error("invalid link token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The token's lifetime is over.
    #[error("link token expired {0} s ago")]
    Expired(u64),
    /// The token claims to be issued in the future.
    #[error("link token issued {0} s in the future; check the clocks")]
    IssuedInFuture(u64),
    /// The token was minted for another edge.
    #[error("link token is for edge {token}, not {hello}")]
    WrongEdge {
        /// The `sub` claim.
        token: String,
        /// The edge id in the `Hello`.
        hello: EdgeId,
    },
}

/// Mints a token for `edge` at `now`.
pub fn mint(cluster_key: &Secret, edge: EdgeId, now: u64) -> String {
    let claims = LinkClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: edge.to_string(),
        iat: now,
        exp: now + TOKEN_TTL_SECS,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(cluster_key.expose().as_bytes()),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Checks a token presented by `edge` at `now`.
pub fn verify(
    cluster_key: &Secret,
    token: &str,
    edge: EdgeId,
    now: u64,
) -> Result<LinkClaims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's `now`, not the library's clock.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let claims = jsonwebtoken::decode::<LinkClaims>(
        token,
        &DecodingKey::from_secret(cluster_key.expose().as_bytes()),
        &validation,
    )?
    .claims;
    if now > claims.exp {
        return Err(TokenError::Expired(now - claims.exp));
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(TokenError::IssuedInFuture(claims.iat - now));
    }
    if claims.sub != edge.to_string() {
        return Err(TokenError::WrongEdge {
            token: claims.sub,
            hello: edge,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn minted_tokens_verify() {
        let key = Secret::new("cluster-key");
        let token = mint(&key, EdgeId(7), NOW);
        let claims = verify(&key, &token, EdgeId(7), NOW + 10).unwrap();
        assert_eq!(claims.sub, "7");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let key = Secret::new("cluster-key");
        let token = mint(&key, EdgeId(7), NOW);
        assert!(matches!(
            verify(&Secret::new("other"), &token, EdgeId(7), NOW),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verify(&key, &token, EdgeId(7), NOW + TOKEN_TTL_SECS + 1),
            Err(TokenError::Expired(1))
        ));
        assert!(matches!(
            verify(&key, &token, EdgeId(7), NOW - CLOCK_SKEW_SECS - 1),
            Err(TokenError::IssuedInFuture(_))
        ));
        assert!(matches!(
            verify(&key, &token, EdgeId(8), NOW),
            Err(TokenError::WrongEdge { .. })
        ));
        assert!(matches!(
            verify(&key, "not.a.jwt", EdgeId(7), NOW),
            Err(TokenError::Invalid(_))
        ));
    }
}
