//! Private and encrypted channels: the edge checks the auth signature itself; a bad one fails
//! only that subscription, and the socket stays usable. Events triggered on a hub other than the
//! subscriber's reach it, on one hub and in a region over one Redis and over a Redis Cluster
//! (`on_every_topology!`).

use herald_tests::on_every_topology;
use herald_tests::topology::{APP_KEY, Shape, Topology};
use serde_json::json;

fn auth_error(reply: &serde_json::Value, channel: &str) {
    assert_eq!(reply["event"], "pusher:subscription_error", "{reply}");
    assert_eq!(reply["channel"], channel, "{reply}");
    assert_eq!(reply["data"]["type"], "AuthError", "{reply}");
    assert_eq!(reply["data"]["status"], 401, "{reply}");
}

on_every_topology!(private_subscriptions_need_a_signature_for_this_socket);
async fn private_subscriptions_need_a_signature_for_this_socket(shape: Shape) {
    let topology = Topology::start(
        shape,
        "private_subscriptions_need_a_signature_for_this_socket",
    )
    .await;
    let mut client = topology.connect(0).await;
    let other = topology.connect(0).await;
    let channel = "private-orders.7";

    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
        .await;
    auth_error(&client.next_event().await, channel);

    let forged = herald_shared::auth::channel::sign(
        APP_KEY,
        "not-the-secret",
        &format!("{}:{channel}", client.socket_id),
    );
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": forged}}))
        .await;
    auth_error(&client.next_event().await, channel);

    let for_other_socket = herald_tests::auth::channel(&other.socket_id, channel, None);
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": for_other_socket}}))
        .await;
    auth_error(&client.next_event().await, channel);

    let for_other_channel = herald_tests::auth::channel(&client.socket_id, "private-other", None);
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": for_other_channel}}))
        .await;
    auth_error(&client.next_event().await, channel);

    client.sync().await;
    let reply = client.subscribe_private(channel).await;
    assert_eq!(
        reply,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
    );
    let sent = topology
        .api_for_other_hub(0)
        .await
        .trigger(json!({"name": "shipped", "channel": channel, "data": "{\"id\":7}"}))
        .await;
    assert_eq!(sent.status, 200);
    assert_eq!(
        client.next_event().await,
        json!({"event": "shipped", "channel": channel, "data": "{\"id\":7}"})
    );
}

on_every_topology!(encrypted_channels_pass_ciphertext_through_and_refuse_client_events);
async fn encrypted_channels_pass_ciphertext_through_and_refuse_client_events(shape: Shape) {
    let topology = Topology::start(
        shape,
        "encrypted_channels_pass_ciphertext_through_and_refuse_client_events",
    )
    .await;
    let mut client = topology.connect(0).await;
    let channel = "private-encrypted-vault";
    let reply = client.subscribe_private(channel).await;
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
    let ciphertext = "{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",\"ciphertext\":\"c2VjcmV0\"}";
    let sent = topology
        .api_for_other_hub(0)
        .await
        .trigger(json!({"name": "secret", "channel": channel, "data": ciphertext}))
        .await;
    assert_eq!(sent.status, 200);
    assert_eq!(
        client.next_event().await["data"],
        ciphertext,
        "the server never touches the payload"
    );

    client
        .send(json!({"event": "client-peek", "channel": channel, "data": {}}))
        .await;
    let refused = client.next_event().await;
    assert_eq!(refused["event"], "pusher:error");
    assert_eq!(refused["data"]["code"], 4306, "{refused}");
}
