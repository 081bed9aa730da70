//! Several apps on one server: each with its own key, secret, channels and settings, and none
//! reaching into another's.

use herald_shared::auth::channel::{channel_string_to_sign, sign};
use herald_tests::api::Api;
use herald_tests::binary::target_dir;
use herald_tests::client::PusherClient;
use herald_tests::topology::{CLUSTER_KEY, Edge, Hub};
use serde_json::json;

struct App {
    id: &'static str,
    key: &'static str,
    secret: &'static str,
}

const CHATTY: App = App {
    id: "111",
    key: "chatty-key",
    secret: "chatty-secret",
};
const QUIET: App = App {
    id: "222",
    key: "quiet-key",
    secret: "quiet-secret",
};

async fn start(test: &str) -> (Hub, Edge) {
    let dir = target_dir().join("test-logs").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("herald.toml");
    let toml = format!(
        "[cluster]\nkey = \"{CLUSTER_KEY}\"\n\n\
         [[apps]]\nid = \"{}\"\nkey = \"{}\"\nsecret = \"{}\"\n\n\
         [[apps]]\nid = \"{}\"\nkey = \"{}\"\nsecret = \"{}\"\nclient_events = false\n",
        CHATTY.id, CHATTY.key, CHATTY.secret, QUIET.id, QUIET.key, QUIET.secret
    );
    std::fs::write(&config, toml).unwrap();
    let hub = Hub::start_with_config(test, "hub", &config).await;
    let edge = Edge::start(test, "edge", &hub, &[]).await;
    (hub, edge)
}

async fn connect(edge: &Edge, app: &App) -> PusherClient {
    PusherClient::connect(&format!(
        "ws://{}/app/{}?protocol=7",
        edge.websocket, app.key
    ))
    .await
}

/// Subscribes to a private channel signed with `secret` as `app`'s key; returns the answer.
async fn subscribe_private(
    client: &mut PusherClient,
    app: &App,
    secret: &str,
    channel: &str,
) -> serde_json::Value {
    let signed = channel_string_to_sign(&client.socket_id, channel, None);
    let auth = sign(app.key, secret, &signed);
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
        .await;
    client.next_event().await
}

fn api(hub: &Hub, app: &App, secret: &str) -> Api {
    Api::for_app(&hub.http, app.id, app.key, secret)
}

#[tokio::test]
async fn apps_share_a_server_but_not_channels_secrets_or_settings() {
    let (hub, edge) = start("apps_share_a_server_but_not_channels_secrets_or_settings").await;
    let mut chatty = connect(&edge, &CHATTY).await;
    let mut quiet = connect(&edge, &QUIET).await;
    chatty.subscribe("news").await;
    quiet.subscribe("news").await;

    // The same channel name in two apps is two channels.
    let trigger = json!({"name": "story", "channel": "news", "data": "for chatty"});
    assert_eq!(
        api(&hub, &CHATTY, CHATTY.secret)
            .trigger(trigger)
            .await
            .status,
        200
    );
    assert_eq!(chatty.next_event().await["data"], "for chatty");
    // Both sockets are on one edge, which hands an event to all its subscribers at once: had
    // chatty's event been handed to quiet, it would be ahead of anything triggered from now on.
    let fence = json!({"name": "fence", "channel": "news", "data": "for quiet"});
    assert_eq!(
        api(&hub, &QUIET, QUIET.secret).trigger(fence).await.status,
        200
    );
    assert_eq!(
        quiet.next_event().await["data"],
        "for quiet",
        "quiet never saw chatty's event"
    );
    let counts = api(&hub, &QUIET, QUIET.secret)
        .get("channels/news", &[("info", "subscription_count")])
        .await;
    assert_eq!(counts.body["subscription_count"], 1, "{:?}", counts.body);

    // One app's secret signs nothing for another.
    let crossed = api(&hub, &QUIET, CHATTY.secret)
        .trigger(json!({"name": "x", "channel": "news", "data": "x"}))
        .await;
    assert_eq!(crossed.status, 401, "{:?}", crossed.body);
    let refused = subscribe_private(&mut quiet, &QUIET, CHATTY.secret, "private-room").await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");

    // Settings are per app: client events are on for one, off for the other.
    let ok = subscribe_private(&mut chatty, &CHATTY, CHATTY.secret, "private-room").await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    let mut peer = connect(&edge, &CHATTY).await;
    let ok = subscribe_private(&mut peer, &CHATTY, CHATTY.secret, "private-room").await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    chatty
        .send(json!({"event": "client-typing", "channel": "private-room", "data": {}}))
        .await;
    assert_eq!(peer.next_event().await["event"], "client-typing");

    let ok = subscribe_private(&mut quiet, &QUIET, QUIET.secret, "private-room").await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    quiet
        .send(json!({"event": "client-typing", "channel": "private-room", "data": {}}))
        .await;
    let rejected = quiet.next_event().await;
    assert_eq!(
        (rejected["event"].clone(), rejected["data"]["code"].clone()),
        (json!("pusher:error"), json!(4306)),
        "{rejected}"
    );
}
