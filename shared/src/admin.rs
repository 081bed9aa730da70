//! Who may read the operator endpoints (`/stats`, `/metrics`): anyone on a loopback listener,
//! and beyond loopback only a request carrying the admin token (`Authorization: Bearer …`).
//! `/up` is never guarded: load balancers probe it without credentials.

use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The rule for one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// Anyone (a loopback listener with no token configured).
    Open,
    /// Requests carrying this bearer token.
    Bearer(Secret),
    /// Nobody: the listener is reachable beyond loopback and no token is configured.
    Closed,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// No token is configured for a listener beyond loopback.
    #[error(
        "this listener is reachable beyond loopback: set admin.token (HERALD_ADMIN__TOKEN) and send it as Authorization: Bearer <token>"
    )]
    NotConfigured,
    /// The request carries no bearer token.
    #[error("send the admin token as Authorization: Bearer <token>")]
    Missing,
    /// The request carries another token.
    #[error("the admin token is wrong")]
    Wrong,
}

impl AdminAccess {
    /// The rule for a listener bound on a loopback address or not, with the configured token.
    /// A configured token is required everywhere, loopback included.
    pub fn for_listener(token: Option<Secret>, loopback: bool) -> Self {
        match (token, loopback) {
            (Some(token), _) => Self::Bearer(token),
            (None, true) => Self::Open,
            (None, false) => Self::Closed,
        }
    }

    /// Checks a request's `Authorization` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), AdminRefusal> {
        match self {
            Self::Open => Ok(()),
            Self::Closed => Err(AdminRefusal::NotConfigured),
            Self::Bearer(token) => {
                let given = authorization
                    .and_then(|value| {
                        let (scheme, rest) = value.split_at_checked(7)?;
                        scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
                    })
                    .ok_or(AdminRefusal::Missing)?;
                // Constant time: the comparison says nothing about how much of a guess was right.
                if bool::from(given.trim_ascii().ct_eq(token.expose().as_bytes())) {
                    Ok(())
                } else {
                    Err(AdminRefusal::Wrong)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_open_until_a_token_is_set_and_beyond_it_a_token_is_required() {
        assert_eq!(AdminAccess::for_listener(None, true).check(None), Ok(()));
        assert_eq!(
            AdminAccess::for_listener(None, false).check(Some(b"Bearer anything")),
            Err(AdminRefusal::NotConfigured)
        );
        let access = AdminAccess::for_listener(Some(Secret::new("0123456789abcdef")), true);
        assert_eq!(access.check(None), Err(AdminRefusal::Missing));
        assert_eq!(access.check(Some(b"Basic abc")), Err(AdminRefusal::Missing));
        assert_eq!(
            access.check(Some(b"Bearer 0123456789abcdeX")),
            Err(AdminRefusal::Wrong)
        );
        assert_eq!(access.check(Some(b"bearer 0123456789abcdef")), Ok(()));
        assert_eq!(access.check(Some(b"Bearer")), Err(AdminRefusal::Missing));
    }
}
