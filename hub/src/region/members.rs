//! A presence channel's members: pure rules over sockets and users, no I/O. The memory region
//! decides with them; the Redis region runs the same rules in its Lua scripts.
//!
//! A user is one member however many sockets (on however many edges) joined as that user; the
//! member is added when its first socket joins and removed when its last socket leaves. Sockets
//! are keyed by their [`SocketId`], which is unique cluster-wide.

use std::collections::{BTreeMap, HashMap};

use herald_shared::ids::SocketId;
use herald_shared::presence::Member;

#[derive(Debug)]
struct Entry {
    member: Member,
    /// How many of `Members::sockets` are this user's.
    sockets: usize,
}

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The user was not a member: announce `member_added`.
    NewMember,
    /// The user already had a socket here; nothing to announce.
    Existing,
}

/// Why a join is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the presence channel is full ({limit} members)")]
pub struct ChannelFull {
    /// The member limit.
    pub limit: usize,
}

/// The members of one presence channel.
#[derive(Debug, Default)]
pub struct Members {
    users: BTreeMap<String, Entry>,
    sockets: HashMap<SocketId, String>,
}

impl Members {
    /// The user a socket joined as.
    pub fn user_of(&self, socket: SocketId) -> Option<&str> {
        self.sockets.get(&socket).map(String::as_str)
    }

    /// Adds a socket as `member`. A socket that joins again (after a reconnect) keeps its place;
    /// a new user beyond `limit` members is refused. A socket that joined as another user must
    /// [`Members::leave`] first.
    pub fn join(
        &mut self,
        socket: SocketId,
        member: Member,
        limit: usize,
    ) -> Result<Joined, ChannelFull> {
        if self
            .sockets
            .get(&socket)
            .is_some_and(|user_id| *user_id != member.user_id)
        {
            self.leave(socket);
        }
        let is_new = !self.users.contains_key(&member.user_id);
        if is_new && self.users.len() >= limit {
            return Err(ChannelFull { limit });
        }
        let rejoined = self
            .sockets
            .insert(socket, member.user_id.clone())
            .is_some();
        let entry = self
            .users
            .entry(member.user_id.clone())
            .or_insert_with(|| Entry {
                member: member.clone(),
                sockets: 0,
            });
        if !rejoined {
            entry.sockets += 1;
        }
        Ok(if is_new {
            Joined::NewMember
        } else {
            Joined::Existing
        })
    }

    /// Removes a socket; returns the user id when it was the user's last socket.
    pub fn leave(&mut self, socket: SocketId) -> Option<String> {
        let user_id = self.sockets.remove(&socket)?;
        let entry = self.users.get_mut(&user_id)?;
        entry.sockets -= 1;
        if entry.sockets == 0 {
            self.users.remove(&user_id);
            Some(user_id)
        } else {
            None
        }
    }

    /// Members (users).
    pub fn count(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user ids, sorted.
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The `subscription_succeeded` data: `{"presence":{"ids":[…],"hash":{…},"count":n}}`.
    pub fn snapshot(&self) -> String {
        herald_shared::presence::presence_data(
            self.users
                .iter()
                .map(|(id, entry)| (id.as_str(), entry.member.info_json())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn member(id: &str) -> Member {
        Member::parse(
            Some(&format!(
                r#"{{"user_id":"{id}","user_info":{{"name":"{id}"}}}}"#
            )),
            1024,
        )
        .unwrap()
    }

    fn socket(low: u64) -> SocketId {
        SocketId { high: 1, low }
    }

    #[test]
    fn a_user_with_several_sockets_is_one_member_until_the_last_leaves() {
        let mut members = Members::default();
        assert_eq!(
            members.join(socket(1), member("a"), 100),
            Ok(Joined::NewMember)
        );
        assert_eq!(
            members.join(socket(2), member("a"), 100),
            Ok(Joined::Existing)
        );
        assert_eq!(members.count(), 1);
        assert_eq!(members.leave(socket(1)), None);
        assert_eq!(members.leave(socket(2)), Some("a".to_string()));
        assert!(members.is_empty());
        assert_eq!(members.leave(socket(2)), None, "leaving twice is harmless");
    }

    #[test]
    fn the_member_limit_refuses_new_users_only() {
        let mut members = Members::default();
        members.join(socket(1), member("a"), 1).unwrap();
        assert_eq!(
            members.join(socket(2), member("b"), 1),
            Err(ChannelFull { limit: 1 })
        );
        assert_eq!(
            members.join(socket(3), member("a"), 1),
            Ok(Joined::Existing)
        );
    }

    #[test]
    fn rejoining_as_another_user_moves_the_socket() {
        let mut members = Members::default();
        members.join(socket(1), member("a"), 100).unwrap();
        assert_eq!(
            members.join(socket(1), member("b"), 100),
            Ok(Joined::NewMember)
        );
        assert_eq!(members.user_ids().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn the_snapshot_has_pushers_shape() {
        let mut members = Members::default();
        members.join(socket(1), member("a"), 100).unwrap();
        members
            .join(
                socket(2),
                Member::parse(Some(r#"{"user_id":2}"#), 10).unwrap(),
                100,
            )
            .unwrap();
        let snapshot: Value = serde_json::from_str(&members.snapshot()).unwrap();
        assert_eq!(
            snapshot,
            json!({"presence": {"ids": ["2", "a"], "hash": {"2": null, "a": {"name": "a"}}, "count": 2}})
        );
        assert_eq!(
            Members::default().snapshot(),
            r#"{"presence":{"ids":[],"hash":{},"count":0}}"#
        );
    }
}
