//! Private and encrypted channels: the edge checks the auth signature itself; a bad one fails
//! only that subscription, and the socket stays usable.

use herald_tests::client::PusherClient;
use herald_tests::topology::{APP_KEY, Cluster};
use serde_json::json;

fn auth_error(reply: &serde_json::Value, channel: &str) {
    assert_eq!(reply["event"], "pusher:subscription_error", "{reply}");
    assert_eq!(reply["channel"], channel, "{reply}");
    assert_eq!(reply["data"]["type"], "AuthError", "{reply}");
    assert_eq!(reply["data"]["status"], 401, "{reply}");
}

#[tokio::test]
async fn private_subscriptions_need_a_signature_for_this_socket() {
    let cluster = Cluster::start(
        "private_subscriptions_need_a_signature_for_this_socket",
        1,
        &[],
    )
    .await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    let other = PusherClient::connect(&cluster.edges[0].url()).await;
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
    let sent = cluster
        .api()
        .trigger(json!({"name": "shipped", "channel": channel, "data": "{\"id\":7}"}))
        .await;
    assert_eq!(sent.status, 200);
    assert_eq!(
        client.next_event().await,
        json!({"event": "shipped", "channel": channel, "data": "{\"id\":7}"})
    );
}

#[tokio::test]
async fn encrypted_channels_pass_ciphertext_through_and_refuse_client_events() {
    let cluster = Cluster::start(
        "encrypted_channels_pass_ciphertext_through_and_refuse_client_events",
        1,
        &[],
    )
    .await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    let channel = "private-encrypted-vault";
    let reply = client.subscribe_private(channel).await;
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
    let ciphertext = "{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",\"ciphertext\":\"c2VjcmV0\"}";
    let sent = cluster
        .api()
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
