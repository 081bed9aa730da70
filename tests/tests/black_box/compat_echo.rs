//! Laravel Echo 2 (`broadcaster: 'pusher'` over the pusher-js Node build) against a real cluster
//! of one hub and two edges, the way a Laravel front end uses it: private channels with Laravel's
//! event names, presence `here` / `joining` / `leaving`, whispers, and encrypted private channels.
//! The app's auth endpoints are Echo's `channelAuthorization` / `userAuthentication`
//! `customHandler`s signing with the npm `pusher` SDK (see `herald_tests::compat`); events come
//! from the npm SDK too.

use herald_tests::compat::{EchoClient, Kind, node_sdk, server};
use herald_tests::on_every_topology;
use herald_tests::topology::{Cluster, Shape, Topology};
use serde_json::{Value, json};

/// A Laravel-style user: `user_info` is what the app puts there (Echo hands only that to
/// `here` / `joining` / `leaving`).
fn user(id: u64, name: &str) -> Value {
    json!({"id": id.to_string(), "info": {"id": id, "name": name}})
}

/// A payload with non-ASCII text, quotes and nesting.
fn payload() -> Value {
    json!({"order": {"id": 42, "note": "ünïcode \"quoted\" ✓"}, "items": [1, 2.5, null]})
}

/// Reads `client`'s reports up to and including the first `event` report for `fence`.
async fn reports_until_fence(client: &mut EchoClient, fence: &str) -> Vec<Value> {
    let mut reports = Vec::new();
    loop {
        let report = client.next_report().await;
        let done = report["type"] == "event" && report["event"] == fence;
        reports.push(report);
        if done {
            return reports;
        }
    }
}

#[tokio::test]
async fn echo_private_listen_receives_npm_sdk_events_on_both_edges() {
    const TEST: &str = "echo_private_listen_receives_npm_sdk_events_on_both_edges";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut clients = Vec::new();
    for (index, edge) in cluster.edges.iter().enumerate() {
        let mut echo =
            EchoClient::connect(TEST, &format!("echo-{index}"), edge, &user(1, "Ada")).await;
        // `.shipped` binds `shipped`; `OrderShipped` binds Laravel's `App\Events\OrderShipped`.
        let subscribed = echo
            .subscribe(Kind::Private, "orders", &[".shipped", "OrderShipped"], &[])
            .await;
        assert_eq!(subscribed, json!({"channel": "private-orders"}));
        clients.push(echo);
    }

    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([
            {"op": "trigger", "channels": "private-orders", "event": "shipped", "data": payload()},
            {"op": "trigger", "channels": "private-orders", "event": "App\\Events\\OrderShipped",
             "data": {"order": {"id": 7}}},
        ]),
    )
    .await;
    let ok = json!({"op": "trigger", "status": 200, "body": {}});
    assert_eq!(results, vec![ok.clone(), ok]);

    for echo in &mut clients {
        assert_eq!(
            echo.expect("event").await,
            json!({"channel": "private-orders", "event": ".shipped", "data": payload()})
        );
        assert_eq!(
            echo.expect("event").await,
            json!({"channel": "private-orders", "event": "OrderShipped",
                   "data": {"order": {"id": 7}}})
        );
    }
    for echo in clients {
        echo.close().await;
    }
}

on_every_topology!(echo_presence_here_joining_leaving_across_edges);
async fn echo_presence_here_joining_leaving_across_edges(shape: Shape) {
    const TEST: &str = "echo_presence_here_joining_leaving_across_edges";
    let topology = Topology::start(shape, TEST).await;
    let test = topology.name();
    let (ada, bob) = (user(1, "Ada"), user(2, "Bob"));
    let (ada_info, bob_info) = (ada["info"].clone(), bob["info"].clone());
    let mut first = EchoClient::connect(test, "echo-ada", &topology.edges()[0], &ada).await;
    assert_eq!(
        first
            .subscribe(Kind::Presence, "room", &[], &["typing"])
            .await,
        json!({"channel": "presence-room", "users": [ada_info]})
    );

    // `here` is Object.keys(members) in JS order: integer-like ids ascending, whatever the
    // order on the wire.
    let mut second = EchoClient::connect(test, "echo-bob", &topology.edges()[1], &bob).await;
    let both = json!({"channel": "presence-room", "users": [ada_info, bob_info]});
    assert_eq!(
        second
            .subscribe(Kind::Presence, "room", &[], &["typing"])
            .await,
        both
    );
    let joining = json!({"channel": "presence-room", "user": bob_info});
    assert_eq!(first.expect("joining").await, joining);

    // A presence whisper carries the sender's user id to pusher-js, and Echo passes it on.
    second
        .whisper(Kind::Presence, "room", "typing", json!({"typing": true}))
        .await;
    assert_eq!(
        first.expect("whisper").await,
        json!({"channel": "presence-room", "event": "typing", "data": {"typing": true},
               "metadata": {"user_id": "2"}})
    );

    // Leaving by Echo.leave (pusher-js unsubscribes), then joining again.
    second.leave("room").await;
    let leaving = json!({"channel": "presence-room", "user": bob_info});
    assert_eq!(first.expect("leaving").await, leaving);
    assert_eq!(
        second.subscribe(Kind::Presence, "room", &[], &[]).await,
        both
    );
    assert_eq!(first.expect("joining").await, joining);

    // Leaving by disconnecting.
    second.close().await;
    assert_eq!(first.expect("leaving").await, leaving);
    first.close().await;
}

#[tokio::test]
async fn echo_whispers_cross_edges_and_skip_the_sender() {
    const TEST: &str = "echo_whispers_cross_edges_and_skip_the_sender";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut ada = EchoClient::connect(TEST, "echo-ada", &cluster.edges[0], &user(1, "Ada")).await;
    let mut bob = EchoClient::connect(TEST, "echo-bob", &cluster.edges[1], &user(2, "Bob")).await;
    for echo in [&mut ada, &mut bob] {
        echo.subscribe(Kind::Private, "chat", &[".fence"], &["typing"])
            .await;
    }

    let from_ada = json!({"name": "Ada", "typing": true, "text": "ünï ✓"});
    ada.whisper(Kind::Private, "chat", "typing", from_ada.clone())
        .await;
    let whisper = |data: &Value| json!({"type": "whisper", "channel": "private-chat", "event": "typing", "data": data});
    assert_eq!(bob.next_report().await, whisper(&from_ada));
    let from_bob = json!({"name": "Bob", "typing": false});
    bob.whisper(Kind::Private, "chat", "typing", from_bob.clone())
        .await;

    // The fence is triggered after both whispers were delivered: each client's reports up to it
    // are the other's whisper only, never its own.
    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([{"op": "trigger", "channels": "private-chat", "event": "fence", "data": "end"}]),
    )
    .await;
    assert_eq!(
        results,
        vec![json!({"op": "trigger", "status": 200, "body": {}})]
    );
    let fence =
        json!({"type": "event", "channel": "private-chat", "event": ".fence", "data": "end"});
    assert_eq!(
        reports_until_fence(&mut ada, ".fence").await,
        vec![whisper(&from_bob), fence.clone()]
    );
    assert_eq!(reports_until_fence(&mut bob, ".fence").await, vec![fence]);
    ada.close().await;
    bob.close().await;
}

#[tokio::test]
async fn echo_encrypted_private_decrypts_what_the_npm_sdk_encrypts() {
    const TEST: &str = "echo_encrypted_private_decrypts_what_the_npm_sdk_encrypts";
    let cluster = Cluster::start(TEST, 2, &[]).await;
    let mut clients = Vec::new();
    for (index, edge) in cluster.edges.iter().enumerate() {
        let mut echo =
            EchoClient::connect(TEST, &format!("echo-{index}"), edge, &user(1, "Ada")).await;
        assert_eq!(
            echo.subscribe(Kind::EncryptedPrivate, "secret", &[".msg"], &[])
                .await,
            json!({"channel": "private-encrypted-secret"})
        );
        clients.push(echo);
    }
    let results = node_sdk(
        TEST,
        &server(&cluster),
        json!([{"op": "trigger", "channels": "private-encrypted-secret", "event": "msg",
                "data": payload()}]),
    )
    .await;
    assert_eq!(
        results,
        vec![json!({"op": "trigger", "status": 200, "body": {}})]
    );
    for echo in &mut clients {
        assert_eq!(
            echo.expect("event").await,
            json!({"channel": "private-encrypted-secret", "event": ".msg", "data": payload()})
        );
    }
    for echo in clients {
        echo.close().await;
    }
}
