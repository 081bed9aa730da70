//! Presence members: parsing a subscription's `channel_data` and the data of member events.
//!
//! Laravel and other SDKs may send `user_id` as a number; Herald turns it into a string (the
//! presence `hash` is keyed by strings anyway), so one user is one member whatever its form.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{EventData, json_string};

/// A presence member as the subscribing socket declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user's id.
    pub user_id: String,
    /// The user's info, as JSON text (absent or `null` when not given).
    pub user_info: Option<EventData>,
}

/// Why `channel_data` is not a valid member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// A presence subscription without `channel_data`.
    #[error("presence channels need channel_data with a user_id")]
    Missing,
    /// `channel_data` is not a JSON object.
    #[error("channel_data is not a JSON object: {0}")]
    NotJson(String),
    /// No usable `user_id`.
    #[error("channel_data needs a non-empty string or number user_id")]
    InvalidUserId,
    /// `user_info` is too large.
    #[error("user_info is {len} bytes; the limit is {limit}")]
    InfoTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

#[derive(Deserialize)]
struct ChannelData<'a> {
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    user_info: Option<&'a RawValue>,
}

/// Turns a JSON string or number into an id string.
pub fn id_from_json(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    let id = if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()?
    } else if serde_json::from_str::<serde_json::Number>(text).is_ok() {
        text.to_string()
    } else {
        return None;
    };
    (!id.is_empty()).then_some(id)
}

/// A `user_info` as sent (in `channel_data` or `user_data`): absent and `null` both mean none.
pub(crate) fn user_info(raw: Option<&RawValue>) -> Option<EventData> {
    raw.filter(|info| info.get() != "null")
        .map(|info| EventData::from_json_text(info.get()))
}

impl Member {
    /// Parses a subscription's `channel_data`.
    pub fn parse(channel_data: Option<&str>, max_info_bytes: usize) -> Result<Self, MemberError> {
        let text = channel_data.ok_or(MemberError::Missing)?;
        let data: ChannelData<'_> =
            serde_json::from_str(text).map_err(|e| MemberError::NotJson(e.to_string()))?;
        let user_id = data
            .user_id
            .and_then(id_from_json)
            .ok_or(MemberError::InvalidUserId)?;
        Self::new(user_id, user_info(data.user_info), max_info_bytes)
    }

    /// A member, unless its `user_info` is over `max_info_bytes`.
    pub(crate) fn new(
        user_id: String,
        user_info: Option<EventData>,
        max_info_bytes: usize,
    ) -> Result<Self, MemberError> {
        if let Some(info) = &user_info
            && info.json().len() > max_info_bytes
        {
            return Err(MemberError::InfoTooLarge {
                len: info.json().len(),
                limit: max_info_bytes,
            });
        }
        Ok(Self { user_id, user_info })
    }

    /// The user's info as JSON text, `null` when not given.
    pub fn info_json(&self) -> &str {
        self.user_info.as_ref().map_or("null", EventData::json)
    }

    /// The `data` of `pusher_internal:member_added`: `{"user_id":…,"user_info":…}`, as a string.
    pub fn added_data(&self) -> EventData {
        let user_id = json_string(&self.user_id);
        EventData::from_string(&format!(
            r#"{{"user_id":{user_id},"user_info":{}}}"#,
            self.info_json()
        ))
    }

    /// The `data` of `pusher_internal:member_removed`: `{"user_id":…}`, as a string.
    pub fn removed_data(user_id: &str) -> EventData {
        let user_id = json_string(user_id);
        EventData::from_string(&format!(r#"{{"user_id":{user_id}}}"#))
    }
}

/// The `subscription_succeeded` data, `{"presence":{"ids":[…],"hash":{…},"count":n}}`, for
/// members given as `(user_id, user_info JSON)` in the order they should appear.
pub fn presence_data<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let (mut ids, mut hash, mut count) = (Vec::new(), Vec::new(), 0);
    for (user_id, info) in members {
        let user_id = json_string(user_id);
        hash.push(format!("{user_id}:{info}"));
        ids.push(user_id);
        count += 1;
    }
    format!(
        r#"{{"presence":{{"ids":[{}],"hash":{{{}}},"count":{count}}}}}"#,
        ids.join(","),
        hash.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn numeric_and_string_ids_become_strings() {
        let member =
            Member::parse(Some(r#"{"user_id":10,"user_info":{"name":"A"}}"#), 1024).unwrap();
        assert_eq!(member.user_id, "10");
        assert_eq!(member.user_info.unwrap().json(), r#"{"name":"A"}"#);
        let member = Member::parse(Some(r#"{"user_id":"u-1"}"#), 1024).unwrap();
        assert_eq!((member.user_id.as_str(), member.user_info), ("u-1", None));
    }

    #[test]
    fn bad_channel_data_is_refused() {
        assert_eq!(Member::parse(None, 10), Err(MemberError::Missing));
        assert!(matches!(
            Member::parse(Some("{"), 10),
            Err(MemberError::NotJson(_))
        ));
        for bad in [
            r#"{}"#,
            r#"{"user_id":""}"#,
            r#"{"user_id":null}"#,
            r#"{"user_id":[1]}"#,
        ] {
            assert_eq!(
                Member::parse(Some(bad), 10),
                Err(MemberError::InvalidUserId),
                "{bad}"
            );
        }
        assert_eq!(
            Member::parse(Some(r#"{"user_id":1,"user_info":"0123456789"}"#), 10),
            Err(MemberError::InfoTooLarge { len: 12, limit: 10 })
        );
    }

    #[test]
    fn member_event_data_is_a_json_string() {
        let member = Member::parse(Some(r#"{"user_id":7,"user_info":{"n":1}}"#), 100).unwrap();
        let data: String = serde_json::from_str(member.added_data().json()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&data).unwrap(),
            json!({"user_id": "7", "user_info": {"n": 1}})
        );
        let data: String = serde_json::from_str(Member::removed_data("7").json()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&data).unwrap(),
            json!({"user_id": "7"})
        );
    }
}
