//! Webhooks as an app receives them: a real HTTP endpoint that checks every request with the npm
//! and PyPI `pusher` SDKs ([`WebhookReceiver`]), against one hub and against a region of two hubs
//! and three edges — over one Redis and over a local Redis Cluster.
//!
//! "Nothing else was sent" is proven with a fence: a cause whose webhook must come after the
//! ones under test (one courier delivers an endpoint's queue in order), and every event before
//! it is compared as a multiset — events of different channels have no common order.

use std::time::{Duration, Instant};

use herald_tests::client::PusherClient;
use herald_tests::compat::WebhookReceiver;
use herald_tests::eventually::eventually;
use herald_tests::redis_region::RedisKind;
use herald_tests::topology::{APP_KEY, Cluster, Region, Shape, Topology};
use herald_tests::{on_every_redis, on_every_topology};
use serde_json::{Value, json};

/// How long a webhook may take to arrive when nothing fails (batch window, delay, load).
const ARRIVAL: Duration = Duration::from_secs(15);

/// Every type but the opt-in `subscription_count` (its own test below).
const ALL_TYPES: [&str; 6] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
];

/// `HERALD_APP__WEBHOOKS` for one endpoint.
fn endpoint(receiver: &WebhookReceiver, event_types: &[&str]) -> String {
    json!([{"url": receiver.url(), "event_types": event_types}]).to_string()
}

fn occupied(channel: &str) -> Value {
    json!({"name": "channel_occupied", "channel": channel})
}

fn vacated(channel: &str) -> Value {
    json!({"name": "channel_vacated", "channel": channel})
}

fn count(channel: &str, n: u64) -> Value {
    json!({"name": "subscription_count", "channel": channel, "subscription_count": n})
}

fn client_event(channel: &str, event: &str, data: &str, socket_id: &str) -> Value {
    json!({"name": "client_event", "channel": channel, "event": event, "data": data,
           "socket_id": socket_id})
}

/// Lets one socket send as many client events as a test needs (Pusher's default is 10/s).
const FAST_CLIENT_EVENTS: (&str, &str) = ("HERALD_APP__CLIENT_EVENTS_PER_SECOND", "1000");

/// Sorted by their JSON text: a multiset to compare.
fn sorted(mut events: Vec<Value>) -> Vec<Value> {
    events.sort_by_key(Value::to_string);
    events
}

/// Collects delivered events until every one of `fence` has arrived; returns the others.
async fn until_fence(receiver: &mut WebhookReceiver, fence: &[Value]) -> Vec<Value> {
    let events = receiver
        .delivered_until(ARRIVAL, |events| fence.iter().all(|f| events.contains(f)))
        .await;
    events.into_iter().filter(|e| !fence.contains(e)).collect()
}

/// A hub's webhook counters once `ready` holds for them (a counter moves just after the
/// endpoint answered).
async fn stats_when(http: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let api = herald_tests::api::Api::new(http);
    eventually(
        "the hub's webhook counters",
        ARRIVAL,
        async || api.raw("GET", "/stats", "").await.body["counters"]["webhooks"].clone(),
        |webhooks| ready(webhooks),
    )
    .await
    .unwrap()
}

on_every_topology!(each_event_is_sent_once_with_pushers_fields);
async fn each_event_is_sent_once_with_pushers_fields(shape: Shape) {
    let test = "each_event_is_sent_once_with_pushers_fields";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(&receiver, &ALL_TYPES);
    let topology =
        Topology::start_with(shape, test, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    // In a region, edges 0 and 1 are linked to different hubs.
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    let user = json!({"user_id": "u1", "user_info": {"name": "Ada"}});

    a.subscribe("room").await;
    b.subscribe("room").await;
    a.subscribe_presence("presence-lobby", &user).await;
    b.subscribe_presence("presence-lobby", &user).await;
    b.unsubscribe("presence-lobby").await;
    b.sync().await;
    assert_eq!(
        a.subscribe_private("private-chat").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    a.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"x": 1}}))
        .await;
    a.sync().await;
    for client in [&mut a, &mut b] {
        client.subscribe("cache-news").await;
        assert_eq!(client.next_event().await["event"], "pusher:cache_miss");
    }
    b.subscribe("fence").await;

    let delivered = until_fence(&mut receiver, &[occupied("fence")]).await;
    let expected = vec![
        occupied("room"),
        occupied("presence-lobby"),
        json!({"name": "member_added", "channel": "presence-lobby", "user_id": "u1"}),
        occupied("private-chat"),
        client_event("private-chat", "client-typing", "{\"x\":1}", &a.socket_id),
        occupied("cache-news"),
        json!({"name": "cache_miss", "channel": "cache-news"}),
    ];
    assert_eq!(sorted(delivered), sorted(expected));
}

on_every_topology!(subscription_counts_follow_each_change_but_not_on_presence_channels);
async fn subscription_counts_follow_each_change_but_not_on_presence_channels(shape: Shape) {
    let test = "subscription_counts_follow_each_change_but_not_on_presence_channels";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(&receiver, &["subscription_count"]);
    let env = [
        ("HERALD_APP__WEBHOOKS", hooks.as_str()),
        ("HERALD_APP__SUBSCRIPTION_COUNT_EVENTS", "true"),
    ];
    let topology = Topology::start_with(shape, test, &env, &[]).await;
    let mut a = topology.connect(0).await;
    let mut b = topology.connect(1).await;
    // Each change is awaited before the next, so each count is sent.
    a.subscribe("counted").await;
    assert_eq!(
        until_fence(&mut receiver, &[count("counted", 1)]).await,
        Vec::<Value>::new()
    );
    b.subscribe("counted").await;
    assert_eq!(
        until_fence(&mut receiver, &[count("counted", 2)]).await,
        Vec::<Value>::new()
    );
    a.unsubscribe("counted").await;
    assert_eq!(
        until_fence(&mut receiver, &[count("counted", 1)]).await,
        Vec::<Value>::new()
    );
    // Presence channels have none; the fence is the next count. (A fresh client: the others
    // hold `pusher_internal:subscription_count` frames nobody reads.)
    let mut c = topology.connect(2).await;
    c.subscribe_presence("presence-counted", &json!({"user_id": "p"}))
        .await;
    // The presence channel's count is announced (to its subscribers) before c's join is
    // answered, and the fence's count is decided later by the same hub (same edge): a webhook
    // of that announcement would come before the fence.
    let mut d = topology.connect(2).await;
    d.subscribe("fence").await;
    assert_eq!(
        until_fence(&mut receiver, &[count("fence", 1)]).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn requests_are_signed_batched_and_carry_the_configured_headers() {
    let test = "requests_are_signed_batched_and_carry_the_configured_headers";
    let mut receiver = WebhookReceiver::start(test, "receiver").await;
    let hooks = json!([{"url": receiver.url(), "event_types": ["client_event"],
                        "headers": {"X-Api-Token": "t0ken"}}])
    .to_string();
    let env = [("HERALD_APP__WEBHOOKS", hooks.as_str()), FAST_CLIENT_EVENTS];
    let cluster = Cluster::start_with(test, 1, &env, &[]).await;
    let mut clients = vec![PusherClient::connect(&cluster.edges[0].url()).await];
    join_private(&mut clients[0], "private-batch-0").await;
    let expected = chatter(&mut clients, "private-batch", 25).await;
    let mut requests = Vec::new();
    let mut events = Vec::new();
    while events.len() < expected.len() {
        let request = receiver.next_request(ARRIVAL).await;
        events.extend(request["events"].as_array().cloned().unwrap_or_default());
        requests.push(request);
    }
    // One socket's events on one channel: in the order they were sent.
    assert_eq!(events, expected);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for request in &requests {
        assert_eq!(request["key"], APP_KEY, "{request}");
        assert_eq!(request["content_type"], "application/json", "{request}");
        assert_eq!(request["headers"]["x-api-token"], "t0ken", "{request}");
        assert_eq!(request["headers"]["path"], "/pusher/webhooks", "{request}");
        // Sent as Pusher names them, for endpoints that read headers by exact name.
        let names = &request["headers"]["names"];
        for name in ["X-Pusher-Key", "X-Pusher-Signature", "Content-Type"] {
            assert!(
                names.as_array().unwrap().contains(&json!(name)),
                "{request}"
            );
        }
        let time_ms = request["time_ms"].as_u64().expect("a time_ms");
        assert!(time_ms <= now_ms && now_ms - time_ms < 60_000, "{request}");
        assert!(
            request["events"].as_array().unwrap().len() <= 20,
            "{request}"
        );
    }
    // 25 events at once make at least two requests of at most 20.
    assert!(requests.len() >= 2, "{requests:#?}");
}

/// A return this soon after a leave is well within the 3 s delay, on a loaded machine too.
const QUICK_RETURN: Duration = Duration::from_secs(2);

/// A delayed removal arrived 3–4 s after the leave: at least 3 s after the client sent it
/// (`sent`; the hub cannot have started the delay earlier), at most 4 s after the edge had it
/// (`left`: the delay, the 250 ms batch window, and the request).
fn assert_delayed(sent: Instant, left: Instant, what: &str) {
    let (since_sent, since_left) = (sent.elapsed(), left.elapsed());
    assert!(
        since_sent >= Duration::from_secs(3) && since_left <= Duration::from_secs(4),
        "{what} arrived {since_sent:?} after the leave was sent, {since_left:?} after the edge had it"
    );
}

on_every_topology!(a_quick_return_sends_nothing_and_a_real_leave_is_sent_after_three_seconds);
async fn a_quick_return_sends_nothing_and_a_real_leave_is_sent_after_three_seconds(shape: Shape) {
    let test = "a_quick_return_sends_nothing_and_a_real_leave_is_sent_after_three_seconds";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(&receiver, &["channel_occupied", "channel_vacated"]);
    let topology =
        Topology::start_with(shape, test, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    let mut client = topology.connect(0).await;
    client.subscribe("flap").await;
    until_fence(&mut receiver, &[occupied("flap")]).await;

    // Unsubscribe and subscribe again within a second — through another edge (and, in a
    // region, another hub): neither vacated nor occupied.
    let mut elsewhere = topology.connect(1).await;
    let left = Instant::now();
    client.unsubscribe("flap").await;
    client.sync().await;
    elsewhere.subscribe("flap").await;
    // Well within the delay, with room for a loaded machine.
    assert!(left.elapsed() < QUICK_RETURN, "{:?}", left.elapsed());

    // Now leave for good.
    let sent = Instant::now();
    elsewhere.unsubscribe("flap").await;
    elsewhere.sync().await;
    let left = Instant::now();
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| events.contains(&vacated("flap")))
        .await;
    assert_eq!(delivered, vec![vacated("flap")]);
    assert_delayed(sent, left, "channel_vacated");
    // Nothing else came from the flap: the fence is next.
    client.subscribe("fence").await;
    assert_eq!(
        until_fence(&mut receiver, &[occupied("fence")]).await,
        Vec::<Value>::new()
    );
}

on_every_topology!(members_are_added_for_a_users_first_socket_and_removed_after_their_last);
async fn members_are_added_for_a_users_first_socket_and_removed_after_their_last(shape: Shape) {
    let test = "members_are_added_for_a_users_first_socket_and_removed_after_their_last";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(
        &receiver,
        &["member_added", "member_removed", "channel_occupied"],
    );
    let topology =
        Topology::start_with(shape, test, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    let channel = "presence-room";
    let alice = json!({"user_id": "alice"});
    let mut first = topology.connect(0).await;
    let mut second = topology.connect(1).await;
    first.subscribe_presence(channel, &alice).await;
    second.subscribe_presence(channel, &alice).await;
    first.unsubscribe(channel).await;
    first.sync().await;
    // Alice still has a socket: nothing is removed. Her last socket goes: removed after 3 s.
    drop(second);
    let removed = json!({"name": "member_removed", "channel": channel, "user_id": "alice"});
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| events.contains(&removed))
        .await;
    assert_eq!(
        sorted(delivered),
        sorted(vec![
            occupied(channel),
            json!({"name": "member_added", "channel": channel, "user_id": "alice"}),
            removed,
        ])
    );
}

on_every_topology!(a_member_back_within_the_delay_sends_nothing);
async fn a_member_back_within_the_delay_sends_nothing(shape: Shape) {
    let test = "a_member_back_within_the_delay_sends_nothing";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(&receiver, &["member_added", "member_removed"]);
    let topology =
        Topology::start_with(shape, test, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    let channel = "presence-reload";
    let alice = json!({"user_id": "alice"});
    let added = |user: &str, channel: &str| json!({"name": "member_added", "channel": channel, "user_id": user});
    let mut first = topology.connect(0).await;
    first.subscribe_presence(channel, &alice).await;
    until_fence(&mut receiver, &[added("alice", channel)]).await;

    // Alice's only socket leaves, and she is back within a second through another edge (and, in
    // a region, another hub): neither member_removed nor member_added.
    let mut again = topology.connect(1).await;
    let left = Instant::now();
    first.unsubscribe(channel).await;
    first.sync().await;
    again.subscribe_presence(channel, &alice).await;
    // Well within the delay, with room for a loaded machine.
    assert!(left.elapsed() < QUICK_RETURN, "{:?}", left.elapsed());

    // Gone for good: removed 3–4 s after the leave, and nothing else came from the reload.
    let sent = Instant::now();
    again.unsubscribe(channel).await;
    again.sync().await;
    let left = Instant::now();
    let removed = json!({"name": "member_removed", "channel": channel, "user_id": "alice"});
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| events.contains(&removed))
        .await;
    assert_eq!(delivered, vec![removed]);
    assert_delayed(sent, left, "member_removed");
    let fence = json!({"user_id": "fence"});
    first.subscribe_presence("presence-fence", &fence).await;
    assert_eq!(
        until_fence(&mut receiver, &[added("fence", "presence-fence")]).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_batch_again_until_it_accepts_it() {
    let test = "a_failing_endpoint_gets_the_batch_again_until_it_accepts_it";
    let mut receiver = WebhookReceiver::start(test, "receiver").await;
    let hooks = endpoint(&receiver, &["client_event"]);
    let cluster = Cluster::start_with(
        test,
        1,
        &[
            ("HERALD_APP__WEBHOOKS", &hooks),
            ("HERALD_WEBHOOKS__BACKOFF_MIN_MS", "200"),
            ("HERALD_WEBHOOKS__BACKOFF_MAX_MS", "2000"),
        ],
        &[],
    )
    .await;
    receiver.respond(&[500, 500, 500]).await;
    let mut clients = vec![PusherClient::connect(&cluster.edges[0].url()).await];
    join_private(&mut clients[0], "private-retried-0").await;
    let retried = chatter(&mut clients, "private-retried", 1).await;
    let mut requests = Vec::new();
    for _ in 0..4 {
        requests.push(receiver.next_request(ARRIVAL).await);
    }
    let statuses: Vec<&Value> = requests.iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    for request in &requests {
        assert_eq!(request["events"], json!(retried));
    }
    // The same body each time, signature and time included.
    assert!(
        requests
            .iter()
            .all(|r| r["time_ms"] == requests[0]["time_ms"])
    );
    // Backoff: each wait at least half its doubling step (200, 400, 800 ms), timed by the
    // receiver (answer to answer: a retry leaves only after the failing answer), not by when
    // this test got round to reading the lines.
    for (index, pair) in requests.windows(2).enumerate() {
        let answered = |r: &Value| r["answered_ms"].as_f64().expect("answered_ms");
        let waited = answered(&pair[1]) - answered(&pair[0]);
        let floor = (100 << index) as f64;
        assert!(
            waited >= floor,
            "retry {index} came {waited} ms after the failure"
        );
    }
    // Delivered once: the fence is the next thing the endpoint gets.
    let fence = client_event(
        "private-retried-0",
        "client-fence",
        "{}",
        &clients[0].socket_id,
    );
    clients[0]
        .send(json!({"event": "client-fence", "channel": "private-retried-0", "data": {}}))
        .await;
    assert_eq!(
        until_fence(&mut receiver, &[fence]).await,
        Vec::<Value>::new()
    );
    let webhooks = stats_when(&cluster.hub.http, |w| w["sent"] == 2).await;
    assert_eq!(webhooks["retried"], 3, "{webhooks}");
    assert_eq!(webhooks["failed"], 0, "{webhooks}");
}

/// The trigger → client latency of one trigger.
async fn trigger_latency(cluster: &Cluster, client: &mut PusherClient, i: usize) -> Duration {
    let started = Instant::now();
    let trigger = json!({"name": "tick", "channel": "ticks", "data": i.to_string()});
    assert_eq!(cluster.api().trigger(trigger).await.status, 200);
    let event = client.next_event().await;
    assert_eq!(event["event"], "tick", "{event}");
    assert_eq!(event["data"], i.to_string(), "{event}");
    started.elapsed()
}

/// A hub whose app sends client events to one endpoint, a subscriber timing triggers, and a
/// client making webhook events.
struct Side {
    cluster: Cluster,
    client: PusherClient,
    busy: Vec<PusherClient>,
}

impl Side {
    async fn start(test: &str, receiver: &WebhookReceiver) -> Self {
        let hooks = endpoint(receiver, &["client_event"]);
        let env = [("HERALD_APP__WEBHOOKS", hooks.as_str()), FAST_CLIENT_EVENTS];
        let cluster = Cluster::start_with(test, 1, &env, &[]).await;
        let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
        client.subscribe("ticks").await;
        let mut busy = vec![PusherClient::connect(&cluster.edges[0].url()).await];
        join_private(&mut busy[0], "private-busy-0").await;
        Self {
            cluster,
            client,
            busy,
        }
    }
}

#[tokio::test]
async fn an_endpoint_that_never_answers_does_not_slow_triggers() {
    let test = "an_endpoint_that_never_answers_does_not_slow_triggers";
    // Two hubs side by side, one with an endpoint that answers, one with an endpoint that never
    // does, timed in pairs — one trigger on each, in alternating order — so whatever else
    // loads the shared machine falls on both samples alike, at the same moments.
    let answering = WebhookReceiver::start(test, "answering").await;
    let mut hanging = WebhookReceiver::start(test, "hanging").await;
    hanging.mode("hang").await;
    let mut usual = Side::start(&format!("{test}-usual"), &answering).await;
    let mut slowed = Side::start(&format!("{test}-hanging"), &hanging).await;
    let (mut usual_latencies, mut slowed_latencies, mut added) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        // The same work on both: 200 webhook events flowing (or stuck), then 60 timed pairs.
        for side in [&mut usual, &mut slowed] {
            chatter(&mut side.busy, "private-busy", 200).await;
        }
        for i in 0..60 {
            let (u, h) = if i % 2 == 0 {
                let u = trigger_latency(&usual.cluster, &mut usual.client, i).await;
                (
                    u,
                    trigger_latency(&slowed.cluster, &mut slowed.client, i).await,
                )
            } else {
                let h = trigger_latency(&slowed.cluster, &mut slowed.client, i).await;
                (
                    trigger_latency(&usual.cluster, &mut usual.client, i).await,
                    h,
                )
            };
            usual_latencies.push(u);
            slowed_latencies.push(h);
            added.push(h.as_secs_f64() - u.as_secs_f64());
        }
    }
    usual_latencies.sort();
    slowed_latencies.sort();
    added.sort_by(f64::total_cmp);
    // "Delayed by no more than the usual p99": what a hanging endpoint adds to a trigger — the
    // median of the paired differences — stays within the usual p99, and so does a typical
    // trigger (the median) with it. Medians, not the extreme tail, so a stall of the shared
    // machine does not decide the verdict.
    let p = |latencies: &[Duration], q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let usual_p99 = p(&usual_latencies, 0.99);
    let slowed_p50 = p(&slowed_latencies, 0.5);
    let added_p50 = Duration::from_secs_f64(added[added.len() / 2].max(0.0));
    eprintln!(
        "trigger latency: usual p50 {:?} p99 {usual_p99:?}; endpoint hanging p50 {slowed_p50:?} p99 {:?}; added by the hang (paired median) {added_p50:?}",
        p(&usual_latencies, 0.5),
        p(&slowed_latencies, 0.99),
    );
    assert!(
        added_p50 <= usual_p99 && slowed_p50 <= usual_p99,
        "triggers slowed by a hanging endpoint: {added_p50:?} added (paired median), median {slowed_p50:?}, usual p99 {usual_p99:?}"
    );
    // The hang was real: the hub timed a request out (4 s) and counts its retry.
    stats_when(&slowed.cluster.hub.http, |w| {
        w["retried"].as_u64() >= Some(1)
    })
    .await;
}

/// Subscribes `client` to a private channel, checking the answer.
async fn join_private(client: &mut PusherClient, channel: &str) {
    let reply = client.subscribe_private(channel).await;
    assert_eq!(
        reply["event"], "pusher_internal:subscription_succeeded",
        "{reply}"
    );
}

/// Sends `n` client events from each client (within its rate limit), client `i` on
/// `{channel}-{i}` (which it alone joined), and returns the webhook events they make, in order.
async fn chatter(clients: &mut [PusherClient], channel: &str, n: usize) -> Vec<Value> {
    let mut expected = Vec::new();
    for (index, client) in clients.iter_mut().enumerate() {
        let channel = &format!("{channel}-{index}");
        for i in 0..n {
            let data = json!({"from": index, "i": i});
            client
                .send(json!({"event": "client-say", "channel": channel, "data": data}))
                .await;
            expected.push(client_event(
                channel,
                "client-say",
                &data.to_string(),
                &client.socket_id,
            ));
        }
        client.sync().await;
    }
    expected
}

on_every_redis!(a_region_sends_each_client_event_once);
async fn a_region_sends_each_client_event_once(redis: RedisKind) {
    let test = "a_region_sends_each_client_event_once";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", redis.label())).await;
    let hooks = endpoint(&receiver, &["client_event"]);
    let region =
        Region::start_over(redis, test, 2, 3, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    let mut clients = Vec::new();
    for (index, edge) in region.edges.iter().enumerate() {
        let mut client = PusherClient::connect(&edge.url()).await;
        join_private(&mut client, &format!("private-chat-{index}")).await;
        clients.push(client);
    }
    // Sockets on three edges and both hubs.
    let expected = chatter(&mut clients, "private-chat", 5).await;
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| {
            expected.iter().all(|e| events.contains(e))
        })
        .await;
    // The fence: one more client event, sent once all the others were delivered.
    let fence = client_event(
        "private-chat-1",
        "client-fence",
        "{}",
        &clients[1].socket_id,
    );
    clients[1]
        .send(json!({"event": "client-fence", "channel": "private-chat-1", "data": {}}))
        .await;
    let after = until_fence(&mut receiver, &[fence]).await;
    let all: Vec<Value> = delivered.into_iter().chain(after).collect();
    assert_eq!(sorted(all), sorted(expected), "each event exactly once");
}

on_every_topology!(one_cache_miss_for_subscribers_of_an_empty_cache_channel_on_every_edge);
async fn one_cache_miss_for_subscribers_of_an_empty_cache_channel_on_every_edge(shape: Shape) {
    let test = "one_cache_miss_for_subscribers_of_an_empty_cache_channel_on_every_edge";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", shape.label())).await;
    let hooks = endpoint(&receiver, &["cache_miss", "client_event"]);
    let topology =
        Topology::start_with(shape, test, &[("HERALD_APP__WEBHOOKS", &hooks)], &[]).await;
    let mut clients = Vec::new();
    for edge in 0..topology.edges().len() {
        let mut client = topology.connect(edge).await;
        client.subscribe("cache-empty").await;
        assert_eq!(client.next_event().await["event"], "pusher:cache_miss");
        clients.push(client);
    }
    join_private(&mut clients[0], "private-fence").await;
    let fence = client_event("private-fence", "client-fence", "{}", &clients[0].socket_id);
    clients[0]
        .send(json!({"event": "client-fence", "channel": "private-fence", "data": {}}))
        .await;
    assert_eq!(
        until_fence(&mut receiver, &[fence]).await,
        vec![json!({"name": "cache_miss", "channel": "cache-empty"})]
    );
}

on_every_redis!(webhooks_pending_on_a_killed_hub_are_delivered_by_another);
async fn webhooks_pending_on_a_killed_hub_are_delivered_by_another(redis: RedisKind) {
    let test = "webhooks_pending_on_a_killed_hub_are_delivered_by_another";
    let mut receiver = WebhookReceiver::start(test, &format!("receiver-{}", redis.label())).await;
    let hooks = endpoint(&receiver, &["client_event"]);
    let mut region = Region::start_over(
        redis,
        test,
        2,
        3,
        &[
            ("HERALD_APP__WEBHOOKS", &hooks),
            ("HERALD_WEBHOOKS__BACKOFF_MIN_MS", "200"),
            ("HERALD_WEBHOOKS__BACKOFF_MAX_MS", "1000"),
        ],
        &[],
    )
    .await;
    receiver.mode("fail").await;
    let mut clients = Vec::new();
    for (index, edge) in region.edges.iter().enumerate() {
        let mut client = PusherClient::connect(&edge.url()).await;
        join_private(&mut client, &format!("private-crash-{index}")).await;
        clients.push(client);
    }
    let expected = chatter(&mut clients, "private-crash", 8).await;

    // The courier holds them all, failing: find it.
    let mut courier = None;
    for (index, hub) in region.hubs.iter().enumerate() {
        let stats = hub.api().raw("GET", "/stats", "").await.body;
        if stats["counters"]["webhooks"]["delivering"] == true {
            courier = Some(index);
        }
    }
    let courier = courier.expect("one hub delivers the region's webhooks");
    stats_when(&region.hubs[courier].http, |w| {
        w["queue_depth"].as_u64() == Some(expected.len() as u64) && w["retried"].as_u64() >= Some(1)
    })
    .await;
    receiver.next_request(ARRIVAL).await;

    // SIGKILL it while the endpoint fails, then let the endpoint recover.
    region.hubs[courier].process.kill().await;
    let survivor = &region.hubs[1 - courier];
    stats_when(&survivor.http, |w| w["delivering"] == true).await;
    receiver.mode("ok").await;
    let delivered = receiver
        .delivered_until(Duration::from_secs(30), |events| {
            expected.iter().all(|e| events.contains(e))
        })
        .await;
    let duplicates = delivered.len() - expected.len();
    eprintln!(
        "crash: {} events, all delivered after the courier was killed, {duplicates} delivered twice",
        expected.len()
    );
    for event in &delivered {
        assert!(expected.contains(event), "unexpected {event}");
    }
}

/// On a Redis Cluster the hubs keep the delayed set around the channel scripts: a channel is
/// marked before a script that may decide a removal, and checked after one that did. A hub that
/// dies between the script and the check leaves the removal in the channel's record with only
/// the marker pointing at it: the courier sends it all the same. And a removal an arrival undid
/// while the courier was queueing it (a note in the record, the removal already queued) has
/// that arrival sent after it. Both states are written into Redis as such a hub and such a race
/// leave them.
#[tokio::test]
async fn a_cluster_sends_a_removal_found_by_its_marker_and_an_arrival_after_its_queued_removal() {
    use herald_tests::redis_cluster::on_node;
    let test = "webhooks/cluster_marker";
    let mut receiver = WebhookReceiver::start(test, "receiver").await;
    let hooks = endpoint(&receiver, &["channel_occupied", "channel_vacated"]);
    let region = Region::start_over(
        RedisKind::Cluster,
        test,
        2,
        1,
        &[("HERALD_APP__WEBHOOKS", &hooks)],
        &[],
    )
    .await;
    let cluster = region.redis.cluster();
    let delayed = "herald:{wh}:delayed";
    let at_delayed = cluster.primary_of(delayed);
    let now_ms = |port: u16| -> u64 {
        let (seconds, micros): (u64, u64) =
            on_node(port, |c| redis::cmd("TIME").query(c)).expect("TIME answers");
        seconds * 1000 + micros / 1000
    };
    // "lost": its vacated removal is due, recorded in its record, marked, never checked.
    let lost = "herald:whp:{424242:lost}";
    let member = "v\n424242\nlost";
    let at_lost = cluster.primary_of(lost);
    let due = now_ms(at_lost).to_string();
    let _: i64 = on_node(at_lost, |c| {
        redis::cmd("HSET").arg(lost).arg(member).arg(&due).query(c)
    })
    .unwrap();
    // "back": its removal was queued (its queued key is set) and an arrival undid it (the note).
    let back = "herald:whp:{424242:back}";
    let back_member = "v\n424242\nback";
    let at_back = cluster.primary_of(back);
    let back_due = now_ms(at_back).to_string();
    let note = format!("u{back_due}\n{back_member}");
    let _: i64 = on_node(at_back, |c| {
        redis::cmd("HSET")
            .arg(back)
            .arg(&note)
            .arg(&back_due)
            .query(c)
    })
    .unwrap();
    let queued = format!("herald:{{wh}}:queued:{back_due}:{back_member}");
    let now = now_ms(at_delayed);
    let () = on_node(at_delayed, |c| {
        redis::pipe()
            .cmd("SET")
            .arg(&queued)
            .arg("1")
            .ignore()
            .cmd("ZADD")
            .arg(delayed)
            .arg(now)
            .arg("p\n424242\nlost")
            .ignore()
            .cmd("ZADD")
            .arg(delayed)
            .arg(now)
            .arg("p\n424242\nback")
            .ignore()
            .query(c)
    })
    .unwrap();
    let expected = [vacated("lost"), occupied("back")];
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| {
            expected.iter().all(|e| events.contains(e))
        })
        .await;
    assert_eq!(sorted(delivered), sorted(expected.to_vec()));
    // The records are emptied, and the marks go.
    eventually(
        "the records and the delayed set to be empty",
        ARRIVAL,
        async || -> [Vec<String>; 3] {
            let keys = |port: u16, key: &str| -> Vec<String> {
                on_node(port, |c| redis::cmd("HKEYS").arg(key).query(c)).unwrap()
            };
            [
                keys(at_lost, lost),
                keys(at_back, back),
                on_node(at_delayed, |c| {
                    redis::cmd("ZRANGE").arg(delayed).arg(0).arg(-1).query(c)
                })
                .unwrap(),
            ]
        },
        |left| left.iter().all(Vec::is_empty),
    )
    .await
    .unwrap();
}

/// On a Redis Cluster the webhook keys follow a failover: the primary of the `{wh}` slot is
/// SIGKILLed and its replica promoted; webhooks caused afterwards — occupancy, client events
/// and a delayed `channel_vacated` — are delivered, each once.
#[tokio::test]
async fn a_cluster_delivers_webhooks_after_the_primary_of_their_keys_fails_over() {
    use herald_tests::redis_cluster::on_node;
    let test = "webhooks/cluster_failover";
    let mut receiver = WebhookReceiver::start(test, "receiver").await;
    let hooks = endpoint(
        &receiver,
        &["client_event", "channel_occupied", "channel_vacated"],
    );
    let mut region = Region::start_over(
        RedisKind::Cluster,
        test,
        2,
        2,
        &[("HERALD_APP__WEBHOOKS", &hooks)],
        &[],
    )
    .await;
    let mut clients = Vec::new();
    for edge in &region.edges {
        clients.push(PusherClient::connect(&edge.url()).await);
    }
    for (index, client) in clients.iter_mut().enumerate() {
        join_private(client, &format!("private-before-{index}")).await;
    }
    let mut expected = chatter(&mut clients, "private-before", 3).await;
    expected.extend((0..clients.len()).map(|index| occupied(&format!("private-before-{index}"))));
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| {
            expected.iter().all(|e| events.contains(e))
        })
        .await;
    assert_eq!(sorted(delivered), sorted(expected));
    // Delivered events are deleted from the queues: wait until the replica that will be
    // promoted has the deletions too, so that the failover cannot bring them back.
    let cluster = region.redis.cluster();
    let slot = cluster.slot("herald:{wh}:delayed");
    let replica = cluster.replicas_of_slot(slot)[0];
    eventually(
        "the webhook queues to be empty on the replica",
        ARRIVAL,
        async || -> u64 {
            on_node(replica, |c| {
                let _: () = redis::cmd("READONLY").query(c)?;
                let queues: Vec<String> = redis::cmd("KEYS").arg("herald:{wh}:q:*").query(c)?;
                let mut total = 0;
                for queue in queues {
                    let length: u64 = redis::cmd("XLEN").arg(queue).query(c)?;
                    total += length;
                }
                Ok(total)
            })
            .unwrap()
        },
        |total| *total == 0,
    )
    .await
    .unwrap();

    let promotion = region.redis.cluster_mut().fail_over(slot).await;
    eprintln!(
        "webhooks: the primary of {{wh}} ({}) killed, {} promoted after {} ms",
        promotion.killed,
        promotion.promoted,
        promotion.took.as_millis()
    );
    let promoted = Instant::now();
    for (index, client) in clients.iter_mut().enumerate() {
        join_private(client, &format!("private-after-{index}")).await;
    }
    let mut expected = chatter(&mut clients, "private-after", 3).await;
    expected.extend((0..clients.len()).map(|index| occupied(&format!("private-after-{index}"))));
    clients[0].unsubscribe("private-after-0").await;
    clients[0].sync().await;
    expected.push(vacated("private-after-0"));
    let delivered = receiver
        .delivered_until(ARRIVAL, |events| {
            expected.iter().all(|e| events.contains(e))
        })
        .await;
    eprintln!(
        "webhooks: everything caused after the promotion delivered {} ms after it (the \
         channel_vacated waits 3 s)",
        promoted.elapsed().as_millis()
    );
    // The fence: one more client event, caused once all the others were delivered.
    let fence = client_event(
        "private-after-1",
        "client-fence",
        "{}",
        &clients[1].socket_id,
    );
    clients[1]
        .send(json!({"event": "client-fence", "channel": "private-after-1", "data": {}}))
        .await;
    let after = until_fence(&mut receiver, &[fence]).await;
    let all: Vec<Value> = delivered.into_iter().chain(after).collect();
    assert_eq!(sorted(all), sorted(expected), "each event exactly once");
}
