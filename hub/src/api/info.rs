//! The `info` parameter: which channel attributes a response should carry.

use herald_shared::channel::{ChannelKind, ChannelName};

use super::error::ApiError;
use crate::region::ChannelCounts;

/// The attributes asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info {
    /// `subscription_count`.
    pub subscription_count: bool,
    /// `user_count` (presence channels only).
    pub user_count: bool,
}

impl Info {
    /// Parses a comma-separated attribute list; `allowed` lists what this endpoint offers.
    pub fn parse(text: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut info = Self::default();
        for attribute in text.unwrap_or_default().split(',').map(str::trim) {
            if attribute.is_empty() {
                continue;
            }
            if !allowed.contains(&attribute) {
                return Err(ApiError::InvalidInfo(format!(
                    "{attribute:?} is not available here; use {}",
                    allowed.join(", ")
                )));
            }
            match attribute {
                "subscription_count" => info.subscription_count = true,
                "user_count" => info.user_count = true,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Whether any attribute is asked for.
    pub fn any(&self) -> bool {
        self.subscription_count || self.user_count
    }

    /// Refuses `user_count` for a channel that is not a presence channel (Pusher answers 400).
    pub fn check(&self, channel: &ChannelName) -> Result<(), ApiError> {
        if self.user_count && channel.kind() != ChannelKind::Presence {
            return Err(ApiError::InvalidInfo(format!(
                "user_count is only available for presence channels, not {channel}"
            )));
        }
        Ok(())
    }

    /// The asked-for attributes of a channel, as a JSON object.
    pub fn attributes(&self, counts: ChannelCounts) -> serde_json::Map<String, serde_json::Value> {
        let mut attributes = serde_json::Map::new();
        if self.subscription_count {
            attributes.insert(
                "subscription_count".into(),
                counts.subscription_count.into(),
            );
        }
        if self.user_count
            && let Some(user_count) = counts.user_count
        {
            attributes.insert("user_count".into(), user_count.into());
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_attributes() {
        let info = Info::parse(
            Some("subscription_count, user_count"),
            &["subscription_count", "user_count"],
        )
        .unwrap();
        assert!(info.subscription_count && info.user_count);
        assert_eq!(Info::parse(None, &["user_count"]).unwrap(), Info::default());
        assert!(matches!(
            Info::parse(Some("members"), &["user_count"]),
            Err(ApiError::InvalidInfo(_))
        ));
    }

    #[test]
    fn user_count_needs_a_presence_channel() {
        let info = Info {
            user_count: true,
            ..Info::default()
        };
        assert!(
            info.check(&ChannelName::parse("presence-a").unwrap())
                .is_ok()
        );
        assert!(
            info.check(&ChannelName::parse("private-a").unwrap())
                .is_err()
        );
    }
}
