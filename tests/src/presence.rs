//! Presence members as the region tests watch them: a client joined to one presence channel as
//! a user, and who a member event names.

use serde_json::{Value, json};

use crate::client::PusherClient;
use crate::topology::Edge;

/// The presence channel the region tests' members join.
pub const ROOM: &str = "presence-room";

/// The event name and the `user_id` of a member event
/// (`pusher_internal:member_added`/`member_removed`); empty strings for what a frame lacks.
pub fn member_event(frame: &Value) -> (String, String) {
    let data: Value = serde_json::from_str(frame["data"].as_str().expect("a string")).unwrap();
    (
        frame["event"].as_str().unwrap_or_default().to_string(),
        data["user_id"].as_str().unwrap_or_default().to_string(),
    )
}

/// A client of `edge` subscribed to [`ROOM`] as `user`; panics unless the subscription
/// succeeded.
pub async fn join(edge: &Edge, user: &str) -> PusherClient {
    let mut client = PusherClient::connect(&edge.url()).await;
    let reply = client
        .subscribe_presence(ROOM, &json!({"user_id": user}))
        .await;
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
    client
}
