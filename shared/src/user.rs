//! Signed-in users: the `user_data` of `pusher:signin`.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::EventData;
use crate::presence::{Member, MemberError, id_from_json, user_info};

/// The user a socket signed in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInUser {
    /// The user's id.
    pub id: String,
    /// The user's info (JSON text), shared with presence channels.
    pub user_info: Option<EventData>,
    /// The ids whose online status the user watches.
    pub watchlist: Vec<String>,
}

/// Why `user_data` is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    /// Not a JSON object.
    #[error("user_data is not a JSON object: {0}")]
    NotJson(String),
    /// No usable `id`.
    #[error("user_data needs a non-empty string id")]
    InvalidId,
    /// `watchlist` is not a list of ids.
    #[error("watchlist must be a list of user ids")]
    InvalidWatchlist,
}

#[derive(Deserialize)]
struct UserData<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    watchlist: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    user_info: Option<&'a RawValue>,
}

impl SignedInUser {
    /// Parses `user_data`.
    pub fn parse(user_data: &str) -> Result<Self, UserDataError> {
        let data: UserData<'_> =
            serde_json::from_str(user_data).map_err(|e| UserDataError::NotJson(e.to_string()))?;
        let id = data
            .id
            .and_then(id_from_json)
            .ok_or(UserDataError::InvalidId)?;
        let watchlist = data
            .watchlist
            .unwrap_or_default()
            .into_iter()
            .map(|raw| id_from_json(raw).ok_or(UserDataError::InvalidWatchlist))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id,
            user_info: user_info(data.user_info),
            watchlist,
        })
    }

    /// The presence member this user joins as when the subscription carries no `channel_data`.
    pub fn as_member(&self, max_info_bytes: usize) -> Result<Member, MemberError> {
        Member::new(self.id.clone(), self.user_info.clone(), max_info_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_and_watchlist() {
        let user = SignedInUser::parse(r#"{"id":"1","name":"A","watchlist":["2",3]}"#).unwrap();
        assert_eq!(user.id, "1");
        assert_eq!(user.watchlist, vec!["2".to_string(), "3".to_string()]);
        let with_info = SignedInUser::parse(r#"{"id":"1","user_info":{"n":1}}"#).unwrap();
        assert_eq!(
            with_info.as_member(100).unwrap().user_info.unwrap().json(),
            r#"{"n":1}"#
        );
        assert!(with_info.as_member(3).is_err());
        assert_eq!(SignedInUser::parse(r#"{"id":5}"#).unwrap().id, "5");
    }

    #[test]
    fn refuses_unusable_user_data() {
        assert!(matches!(
            SignedInUser::parse("nope"),
            Err(UserDataError::NotJson(_))
        ));
        assert_eq!(
            SignedInUser::parse(r#"{"name":"x"}"#),
            Err(UserDataError::InvalidId)
        );
        assert_eq!(
            SignedInUser::parse(r#"{"id":"1","watchlist":[{}]}"#),
            Err(UserDataError::InvalidWatchlist)
        );
    }
}
