//! The hub's publish script (`herald_hub::cluster::scripts`) against a real redis-server: a
//! publish the hub replays under the same publication id — as it does when the reply of the
//! first try was lost — is answered with the first try's sequence and stores (and publishes)
//! the event once; another id publishes again.

use herald_hub::cluster::keys::Keys;
use herald_hub::cluster::scripts::{PUBLICATION_ID_TTL, PublishArgs, Scripts};
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::AppId;
use herald_tests::redis::RedisServer;

fn args<'a>(body: &'a str, id: &'a str) -> PublishArgs<'a> {
    PublishArgs {
        body,
        maxlen: 100,
        history_ttl_ms: 60_000,
        cache_ttl_ms: 0,
        id,
    }
}

#[tokio::test]
async fn a_replayed_publish_returns_the_same_sequence_and_stores_one_event() {
    let redis = RedisServer::start().await;
    let mut connection = redis::Client::open(redis.url(0))
        .expect("a URL")
        .get_multiplexed_async_connection()
        .await
        .expect("redis-server accepts a connection");
    let mut listener = redis.connection();
    let keys = Keys::new("herald");
    let scripts = Scripts::new(false);
    let key = ChannelKey::new(
        AppId::new("100001"),
        ChannelName::parse("orders").expect("a channel name"),
    );
    let mut pubsub = listener.as_pubsub();
    pubsub
        .subscribe(keys.events(&key))
        .expect("SUBSCRIBE answers");
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("a read timeout");

    let publish = async |body: &str, id: &str| -> String {
        scripts
            .publish_call(&keys, &key, args(body, id))
            .invoke_async(&mut connection.clone())
            .await
            .expect("the publish script runs")
    };
    let first = publish("@1:first", "7:0").await;
    let replayed = publish("@1:first", "7:0").await;
    assert_eq!(replayed, first, "a replay answers the first sequence");
    let second = publish("@2:second", "7:1").await;
    let first_seq: u64 = first.parse().expect("a sequence");
    assert_eq!(second, (first_seq + 1).to_string(), "another id publishes");

    let history: u64 = redis::cmd("XLEN")
        .arg(keys.history(&key))
        .query_async(&mut connection)
        .await
        .expect("XLEN answers");
    assert_eq!(history, 2, "history holds each publication once");
    let mut heard = Vec::new();
    for _ in 0..2 {
        let message = pubsub.get_message().expect("a published message");
        heard.push(message.get_payload::<String>().expect("a text payload"));
    }
    assert_eq!(
        heard,
        [format!("{first}:@1:first"), format!("{second}:@2:second")]
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(keys.publication(&key, "7:0"))
        .query_async(&mut connection)
        .await
        .expect("PTTL answers");
    let limit = PUBLICATION_ID_TTL.as_millis() as i64;
    assert!(
        ttl > 0 && ttl <= limit,
        "the id expires within {limit} ms: {ttl}"
    );
}
