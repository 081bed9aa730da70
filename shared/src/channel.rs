//! Channel names, their kinds, and Pusher's naming rules.
//!
//! Pusher: "Channel names should only include lower and uppercase letters, numbers and the
//! following punctuation `_ - = @ , . ;`", at most 164 characters. The prefix decides the kind
//! (`private-`, `presence-`, `private-encrypted-`, each optionally followed by `cache-`, or a bare
//! `cache-`), and `#server-to-user-{user_id}` is the one name allowed to start with `#`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a;
use crate::ids::AppId;
use crate::limits::MAX_CHANNEL_NAME_LEN;

/// The prefix of the channel Pusher uses for server-to-user events.
const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

/// A validated channel name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(Arc<str>);

/// What a channel is, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// No auth; anyone may subscribe.
    Public,
    /// `private-`: subscription needs an auth signature.
    Private,
    /// `private-encrypted-`: private, and the payload is end-to-end encrypted.
    PrivateEncrypted,
    /// `presence-`: private plus a member list.
    Presence,
    /// `#server-to-user-{id}`: only the signed-in user's own sockets receive it.
    ServerToUser,
}

/// Why a string is not a valid channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than Pusher allows.
    #[error("channel name is {len} characters long; the limit is {MAX_CHANNEL_NAME_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character outside Pusher's set.
    #[error("channel name contains {found:?}; only letters, digits and _ - = @ , . ; are allowed")]
    InvalidCharacter {
        /// The first offending character.
        found: char,
    },
    /// `#server-to-user-` with nothing after it.
    #[error("#server-to-user- channel names need a user id")]
    MissingUserId,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

impl ChannelName {
    /// Validates a channel name.
    pub fn parse(text: &str) -> Result<Self, ChannelNameError> {
        if text.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if text.len() > MAX_CHANNEL_NAME_LEN {
            return Err(ChannelNameError::TooLong { len: text.len() });
        }
        let checked = match text.strip_prefix(SERVER_TO_USER_PREFIX) {
            Some("") => return Err(ChannelNameError::MissingUserId),
            Some(user_id) => user_id,
            None => text,
        };
        if let Some(found) = checked.chars().find(|&c| !allowed(c)) {
            return Err(ChannelNameError::InvalidCharacter { found });
        }
        Ok(Self(text.into()))
    }

    /// The user's own `#server-to-user-{user_id}` channel; fails when the id cannot be part of a
    /// channel name.
    pub fn server_to_user(user_id: &str) -> Result<Self, ChannelNameError> {
        Self::parse(&format!("{SERVER_TO_USER_PREFIX}{user_id}"))
    }

    /// The user id of a `#server-to-user-` channel; `None` for every other kind.
    pub fn server_to_user_id(&self) -> Option<&str> {
        self.as_str().strip_prefix(SERVER_TO_USER_PREFIX)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        let name = self.as_str();
        if name.starts_with(SERVER_TO_USER_PREFIX) {
            ChannelKind::ServerToUser
        } else if name.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if name.starts_with("private-") {
            ChannelKind::Private
        } else if name.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        }
    }

    /// Whether the channel keeps its last event for new subscribers (`cache-` variants).
    pub fn is_cache(&self) -> bool {
        let name = self.as_str();
        [
            "cache-",
            "private-cache-",
            "private-encrypted-cache-",
            "presence-cache-",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    }

    /// Whether subscribing needs an authorization signature.
    pub fn requires_auth(&self) -> bool {
        matches!(
            self.kind(),
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        )
    }
}

impl TryFrom<String> for ChannelName {
    type Error = ChannelNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<ChannelName> for String {
    fn from(name: ChannelName) -> Self {
        name.0.to_string()
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelName({:?})", &*self.0)
    }
}

/// A channel of one app: the unit of subscription, sequencing and sharding everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelKey {
    /// The app.
    pub app: AppId,
    /// The channel.
    pub channel: ChannelName,
}

impl ChannelKey {
    /// Pairs an app and a channel.
    pub fn new(app: AppId, channel: ChannelName) -> Self {
        Self { app, channel }
    }

    /// A stable hash (FNV-1a), the same in every process and build, used to pick shards and
    /// link streams.
    pub fn stable_hash(&self) -> u64 {
        fnv1a(
            self.app
                .as_str()
                .bytes()
                .chain([0])
                .chain(self.channel.as_str().bytes()),
        )
    }

    /// The index among `n` shards or streams this channel belongs to (0 when `n` is 0).
    pub fn slot(&self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.stable_hash() % n as u64) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_prefix() {
        let cases = [
            ("orders", ChannelKind::Public, false),
            ("cache-prices", ChannelKind::Public, true),
            ("private-user.1", ChannelKind::Private, false),
            ("private-cache-x", ChannelKind::Private, true),
            ("private-encrypted-x", ChannelKind::PrivateEncrypted, false),
            (
                "private-encrypted-cache-x",
                ChannelKind::PrivateEncrypted,
                true,
            ),
            ("presence-room", ChannelKind::Presence, false),
            ("presence-cache-room", ChannelKind::Presence, true),
            ("#server-to-user-42", ChannelKind::ServerToUser, false),
        ];
        for (name, kind, cache) in cases {
            let parsed = ChannelName::parse(name).unwrap();
            assert_eq!(parsed.kind(), kind, "{name}");
            assert_eq!(parsed.is_cache(), cache, "{name}");
        }
    }

    #[test]
    fn keys_hash_stably_into_range() {
        let key = ChannelKey::new(AppId::new("1"), ChannelName::parse("orders").unwrap());
        assert_eq!(key.stable_hash(), key.clone().stable_hash());
        assert!(key.slot(4) < 4);
        assert_eq!(key.slot(0), 0);
        let other = ChannelKey::new(AppId::new("1o"), ChannelName::parse("rders").unwrap());
        assert_ne!(key.stable_hash(), other.stable_hash());
    }

    #[test]
    fn server_to_user_channels_name_their_user() {
        let channel = ChannelName::server_to_user("42").unwrap();
        assert_eq!(channel.as_str(), "#server-to-user-42");
        assert_eq!(channel.server_to_user_id(), Some("42"));
        assert_eq!(
            ChannelName::parse("orders").unwrap().server_to_user_id(),
            None
        );
        assert_eq!(
            ChannelName::server_to_user(""),
            Err(ChannelNameError::MissingUserId)
        );
    }

    #[test]
    fn pusher_punctuation_is_allowed() {
        assert!(ChannelName::parse("a_b-c=d@e,f.g;h").is_ok());
    }

    #[test]
    fn bad_names_are_rejected_with_the_reason() {
        assert_eq!(ChannelName::parse(""), Err(ChannelNameError::Empty));
        assert_eq!(
            ChannelName::parse("a b"),
            Err(ChannelNameError::InvalidCharacter { found: ' ' })
        );
        assert_eq!(
            ChannelName::parse("#other"),
            Err(ChannelNameError::InvalidCharacter { found: '#' })
        );
        assert_eq!(
            ChannelName::parse("#server-to-user-"),
            Err(ChannelNameError::MissingUserId)
        );
        let long = "a".repeat(MAX_CHANNEL_NAME_LEN + 1);
        assert_eq!(
            ChannelName::parse(&long),
            Err(ChannelNameError::TooLong {
                len: MAX_CHANNEL_NAME_LEN + 1
            })
        );
        assert!(ChannelName::parse(&"a".repeat(MAX_CHANNEL_NAME_LEN)).is_ok());
    }
}
