//! Every bad client input gets its documented answer (docs/protocol-errors.md), and the server
//! keeps serving: after each mistake the same socket (or a new one) still works.

use futures_util::{SinkExt, StreamExt};
use herald_tests::client::{
    self, FRAME_TIMEOUT, Frame, PusherClient, Socket, expect_close, next_frame, next_json,
    send_json,
};
use herald_tests::topology::{APP_KEY, Cluster, Edge};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

fn url(edge: &Edge, key: &str, query: &str) -> String {
    format!("ws://{}/app/{key}{query}", edge.websocket)
}

/// The socket is still usable: a ping gets a pong.
async fn still_usable(ws: &mut Socket) {
    send_json(ws, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        next_json(ws).await,
        json!({"event": "pusher:pong", "data": {}})
    );
}

async fn expect_error(ws: &mut Socket, code: u16) -> Value {
    let frame = next_json(ws).await;
    assert_eq!(frame["event"], "pusher:error", "{frame}");
    assert_eq!(frame["data"]["code"], code, "{frame}");
    assert!(
        frame["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{frame}"
    );
    frame
}

async fn refused_with(edge: &Edge, key: &str, query: &str, code: u16) {
    let mut ws = client::open(&url(edge, key, query)).await;
    expect_error(&mut ws, code).await;
    assert_eq!(expect_close(&mut ws).await, Some(code));
}

#[tokio::test]
async fn connection_refusals_carry_pusher_codes() {
    let cluster = Cluster::start("connection_refusals_carry_pusher_codes", 1, &[]).await;
    let edge = &cluster.edges[0];
    refused_with(edge, "no-such-key", "?protocol=7", 4001).await;
    refused_with(edge, APP_KEY, "", 4008).await;
    refused_with(edge, APP_KEY, "?protocol=seven", 4006).await;
    refused_with(edge, APP_KEY, "?protocol=3", 4007).await;
    refused_with(edge, APP_KEY, "?protocol=8", 4007).await;
    // And the edge still serves a good connection.
    let mut good = PusherClient::connect(&edge.url()).await;
    good.subscribe("after-refusals").await;
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_socket_stays_usable() {
    let cluster = Cluster::start(
        "malformed_frames_get_errors_and_the_socket_stays_usable",
        1,
        &[],
    )
    .await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    let ws = &mut client.ws;

    ws.send(Message::text("{not json")).await.unwrap();
    expect_error(ws, 4300).await;
    still_usable(ws).await;

    ws.send(Message::text("[1,2,3]")).await.unwrap();
    expect_error(ws, 4300).await;
    ws.send(Message::text(r#"{"data":{}}"#)).await.unwrap();
    expect_error(ws, 4300).await;
    send_json(
        ws,
        json!({"event": "pusher:subscribe", "data": {"auth": "x"}}),
    )
    .await;
    expect_error(ws, 4300).await;
    still_usable(ws).await;

    send_json(ws, json!({"event": "pusher:teleport", "data": {}})).await;
    expect_error(ws, 4307).await;
    send_json(ws, json!({"event": "hello"})).await;
    expect_error(ws, 4307).await;
    still_usable(ws).await;

    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(ws, 4303).await;
    still_usable(ws).await;

    let oversized = json!({"event": "pusher:ping", "data": {"pad": "x".repeat(11 * 1024)}});
    send_json(ws, oversized).await;
    expect_error(ws, 4304).await;
    still_usable(ws).await;

    client.subscribe("still-works").await;
}

/// A raw client frame (tungstenite masks it): `fin` false leaves the message open.
fn raw_frame(payload: &[u8], opcode: OpCode, fin: bool) -> Message {
    Message::Frame(WsFrame::message(payload.to_vec(), opcode, fin))
}

#[tokio::test]
async fn control_frames_fragments_and_closes_follow_rfc_6455() {
    let cluster = Cluster::start(
        "control_frames_fragments_and_closes_follow_rfc_6455",
        1,
        &[],
    )
    .await;
    let edge = &cluster.edges[0];
    let mut client = PusherClient::connect(&edge.url()).await;
    let ws = &mut client.ws;

    // A ping is answered with a pong carrying its payload.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
        .await
        .unwrap();
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(payload))) if payload[..] == b"are you there"[..]),
        "{pong:?}"
    );

    // A message in three fragments, a ping between them, is one message.
    let text = OpCode::Data(Data::Text);
    ws.send(raw_frame(br#"{"event":"pusher:pi"#, text, false))
        .await
        .unwrap();
    ws.send(Message::Ping(Vec::new().into())).await.unwrap();
    ws.send(raw_frame(
        br#"ng","da"#,
        OpCode::Data(Data::Continue),
        false,
    ))
    .await
    .unwrap();
    ws.send(raw_frame(br#"ta":{}}"#, OpCode::Data(Data::Continue), true))
        .await
        .unwrap();
    assert!(matches!(next_frame(ws).await, Frame::Pong));
    assert_eq!(
        next_json(ws).await,
        json!({"event": "pusher:pong", "data": {}})
    );
    still_usable(ws).await;

    // The client's close is answered with the client's code.
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(expect_close(ws).await, Some(4000));

    // A text message that is not UTF-8 closes with 1007.
    let mut bad = PusherClient::connect(&edge.url()).await;
    bad.ws
        .send(raw_frame(&[b'"', 0xff, 0xfe, b'"'], text, true))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut bad.ws).await, Some(1007));

    // A continuation with no message to continue breaks the protocol: 1002.
    let mut broken = PusherClient::connect(&edge.url()).await;
    broken
        .ws
        .send(raw_frame(b"{}", OpCode::Data(Data::Continue), true))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut broken.ws).await, Some(1002));

    // And the edge still serves.
    let mut good = PusherClient::connect(&edge.url()).await;
    good.subscribe("after-protocol-errors").await;
}

#[tokio::test]
async fn invalid_channel_names_fail_the_subscription_only() {
    let cluster = Cluster::start("invalid_channel_names_fail_the_subscription_only", 1, &[]).await;
    let mut client = PusherClient::connect(&cluster.edges[0].url()).await;
    for name in ["has space", "emoji-✨", &"x".repeat(165), ""] {
        client
            .send(json!({"event": "pusher:subscribe", "data": {"channel": name}}))
            .await;
        let reply = client.next_event().await;
        assert_eq!(reply["event"], "pusher:subscription_error", "{reply}");
        assert_eq!(reply["channel"], name);
        assert_eq!(reply["data"]["status"], 400, "{reply}");
        assert_eq!(reply["data"]["type"], "InvalidChannelName", "{reply}");
    }
    client
        .subscribe("valid_name-with=all@the,punctuation.;")
        .await;
}

#[tokio::test]
async fn a_frame_far_over_the_limit_closes_with_1009() {
    let cluster = Cluster::start("a_frame_far_over_the_limit_closes_with_1009", 1, &[]).await;
    let edge = &cluster.edges[0];
    let mut client = PusherClient::connect(&edge.url()).await;
    let huge = "y".repeat(64 * 1024);
    let _ = client.ws.send(Message::text(huge)).await;
    expect_error(&mut client.ws, 4304).await;
    assert_eq!(expect_close(&mut client.ws).await, Some(1009));
    // Other connections are unaffected.
    let mut next = PusherClient::connect(&edge.url()).await;
    next.subscribe("fine").await;
}

/// Sends one text frame of `size` bytes and reads the answer: the `pusher:error` code and the
/// close code (`None`: the connection ended without a close frame, a 1006 to the client).
async fn oversized_frame(edge: &Edge, size: usize) -> (Option<u64>, Option<u16>) {
    let mut client = PusherClient::connect(&edge.url()).await;
    if client
        .ws
        .send(Message::text("y".repeat(size)))
        .await
        .is_err()
    {
        // The edge reset the connection while the frame was still going out.
        return (None, None);
    }
    let error = match next_frame(&mut client.ws).await {
        Frame::Json(frame) if frame["event"] == "pusher:error" => frame["data"]["code"].as_u64(),
        Frame::Closed(code, _) => return (None, code),
        other => panic!("expected pusher:error 4304, got {other:?}"),
    };
    (error, expect_close(&mut client.ws).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_always_gets_its_error_and_close_never_a_reset() {
    let cluster = Cluster::start(
        "an_oversized_frame_always_gets_its_error_and_close_never_a_reset",
        1,
        &[],
    )
    .await;
    let edge = &cluster.edges[0];
    // The edge stops reading at the frame header; the client is still writing megabytes when
    // the error and the close go out. Closing at once made the kernel answer the rest with a
    // reset, which threw the error and the close away (a 1006) in 2 runs out of 3.
    for size in [2 << 20, 16 << 20] {
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            outcomes.push(oversized_frame(edge, size).await);
        }
        assert!(
            outcomes
                .iter()
                .all(|outcome| *outcome == (Some(4304), Some(1009))),
            "{size}-byte frames: (pusher:error code, close code) per attempt: {outcomes:?}"
        );
    }
    // The edge still serves.
    let mut next = PusherClient::connect(&edge.url()).await;
    next.subscribe("fine").await;
}

#[tokio::test]
async fn an_oversized_request_head_always_gets_its_431() {
    let cluster = Cluster::start("an_oversized_request_head_always_gets_its_431", 1, &[]).await;
    let edge = &cluster.edges[0];
    // The head is refused after its first 8 KiB; the rest is still on its way (16 MiB: more than
    // the loopback socket buffers hold, so the client is still writing when the answer goes).
    let head = format!(
        "GET /app/{APP_KEY}?protocol=7 HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "y".repeat(16 << 20)
    );
    let mut answers = Vec::new();
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(&edge.websocket)
            .await
            .unwrap();
        let mut answer = String::new();
        let exchange = async {
            stream.write_all(head.as_bytes()).await?;
            stream.read_to_string(&mut answer).await
        };
        let outcome = tokio::time::timeout(client::FRAME_TIMEOUT, exchange)
            .await
            .expect("the edge answers and closes");
        answers.push(match outcome {
            Ok(_) => answer.lines().next().unwrap_or_default().to_string(),
            Err(error) => format!("{error}"),
        });
    }
    assert!(
        answers
            .iter()
            .all(|answer| answer == "HTTP/1.1 431 Request Header Fields Too Large"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn plain_http_on_the_websocket_port_gets_an_http_answer() {
    let cluster = Cluster::start(
        "plain_http_on_the_websocket_port_gets_an_http_answer",
        1,
        &[],
    )
    .await;
    let edge = &cluster.edges[0];
    for (request, status) in [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        (
            &format!("GET /app/{APP_KEY} HTTP/1.1\r\nHost: x\r\n\r\n") as &str,
            "426",
        ),
        ("\x16\x03\x01 not http at all\r\n\r\n", "400"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&edge.websocket)
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(client::FRAME_TIMEOUT, stream.read_to_string(&mut answer))
            .await
            .expect("the edge answers and closes")
            .unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?} → {answer:?}"
        );
    }
    let mut good = PusherClient::connect(&edge.url()).await;
    good.subscribe("after-http").await;
}

#[tokio::test]
async fn heartbeats_ping_idle_clients_and_close_silent_ones_with_4201() {
    let env = [
        ("HERALD_EDGE__ACTIVITY_TIMEOUT_SECS", "1"),
        ("HERALD_EDGE__PONG_TIMEOUT_SECS", "1"),
    ];
    let cluster = Cluster::start(
        "heartbeats_ping_idle_clients_and_close_silent_ones_with_4201",
        1,
        &env,
    )
    .await;
    let edge = &cluster.edges[0];

    let mut client = PusherClient::connect(&edge.url()).await;
    // A client ping is answered, and WebSocket-level pings too.
    client
        .send(json!({"event": "pusher:ping", "data": {}}))
        .await;
    assert_eq!(
        client.next().await,
        json!({"event": "pusher:pong", "data": {}})
    );
    client
        .ws
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    assert!(matches!(next_frame(&mut client.ws).await, Frame::Pong));

    // Idle: the server pings; answering keeps the connection.
    assert_eq!(
        client.next().await,
        json!({"event": "pusher:ping", "data": {}})
    );
    client
        .send(json!({"event": "pusher:pong", "data": {}}))
        .await;
    assert_eq!(
        client.next().await,
        json!({"event": "pusher:ping", "data": {}})
    );
    // Silence after the ping: closed with 4201, which pusher-js answers by reconnecting.
    assert_eq!(expect_close(&mut client.ws).await, Some(4201));
}
