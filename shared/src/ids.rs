//! Identifiers: sockets, edges, hubs and apps.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A Pusher socket id, `high.low` with both parts decimal (`\d+\.\d+`).
///
/// Herald makes them unique cluster-wide: `high` is the edge's random [`EdgeId`] and `low` a
/// counter local to that edge process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SocketId {
    /// The issuing edge's id.
    pub high: u64,
    /// The edge-local connection number.
    pub low: u64,
}

/// Why a string is not a socket id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("socket_id must look like \"123.456\" (two decimal numbers joined by a dot)")]
pub struct SocketIdError;

impl FromStr for SocketId {
    type Err = SocketIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (high, low) = text.split_once('.').ok_or(SocketIdError)?;
        let digits = |part: &str| {
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SocketIdError);
            }
            part.parse::<u64>().map_err(|_| SocketIdError)
        };
        Ok(Self {
            high: digits(high)?,
            low: digits(low)?,
        })
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({self})")
    }
}

/// An edge process's id: random at start, the `high` half of its socket ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeId(pub u64);

impl fmt::Display for EdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for EdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EdgeId({})", self.0)
    }
}

/// A hub process's id: random at start, reported to edges and in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HubId(pub u64);

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HubId({self})")
    }
}

/// Why a string is not a hub id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hub id is 1 to 16 hexadecimal digits")]
pub struct HubIdError;

impl FromStr for HubId {
    type Err = HubIdError;

    /// Reads what [`Display`](fmt::Display) writes: hexadecimal digits, no sign.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HubIdError);
        }
        u64::from_str_radix(text, 16)
            .map(Self)
            .map_err(|_| HubIdError)
    }
}

/// Defines a cheap-to-clone string newtype.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps the text as it is.
            pub fn new(value: impl Into<Arc<str>>) -> Self {
                Self(value.into())
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // Hashing an `Arc<str>` hashes the `str`, so lookups by `&str` are consistent.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

string_id!(
    /// A Pusher app id, as used in HTTP API paths (`/apps/{id}/…`).
    AppId
);
string_id!(
    /// A Pusher app key, as used in WebSocket paths (`/app/{key}`) and signatures.
    AppKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_round_trip() {
        let id: SocketId = "123.456".parse().unwrap();
        assert_eq!(
            id,
            SocketId {
                high: 123,
                low: 456
            }
        );
        assert_eq!(id.to_string(), "123.456");
    }

    #[test]
    fn hub_ids_round_trip() {
        for id in [HubId(0), HubId(0xab), HubId(u64::MAX)] {
            assert_eq!(id.to_string().parse::<HubId>(), Ok(id));
        }
        for bad in ["", "+1", "x", "0123456789abcdef0"] {
            assert_eq!(bad.parse::<HubId>(), Err(HubIdError), "{bad:?}");
        }
    }

    #[test]
    fn malformed_socket_ids_are_rejected() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1.2.3",
            "a.1",
            "1.-2",
            " 1.2",
            "1.2 ",
            "99999999999999999999.1",
        ] {
            assert_eq!(bad.parse::<SocketId>(), Err(SocketIdError), "{bad:?}");
        }
    }
}
