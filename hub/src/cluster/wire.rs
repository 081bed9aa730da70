//! How an event travels through Redis: the body a hub publishes (and history stores), and the
//! message subscribers receive, `"{seq}:{body}"`.
//!
//! The body is the time the event was accepted (`@{unix micros}:`), three length-prefixed
//! fields — event name, excluded socket, sender's user id — then the data's JSON text:
//! `@{micros}:{len}:{name}{len}:{socket}{len}:{user}{data}`. The Lua scripts build the same form
//! for the events they make (stamped with Redis's clock), so the format stays this simple.
//!
//! The stamp is what the edges' `herald_edge_delivery_seconds` measures from, whichever hub
//! delivers the event and whether it arrives live, from history or from the cache. A body
//! without one (written by an older Herald) is stamped when it is decoded.

use herald_shared::channel::ChannelKey;
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::SocketId;
use herald_shared::link::Event;
use herald_shared::time::UnixTime;
use std::time::SystemTime;

/// A message or history entry that is not a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event from Redis: {0}")]
pub struct WireError(&'static str);

fn field(out: &mut String, text: &str) {
    out.push_str(&text.len().to_string());
    out.push(':');
    out.push_str(text);
}

/// The body of an event accepted at `accepted_micros` (since 1970).
pub fn body(
    name: &EventName,
    data: &EventData,
    exclude: Option<SocketId>,
    user_id: Option<&str>,
    accepted_micros: u64,
) -> String {
    let mut out = String::with_capacity(name.as_str().len() + data.json().len() + 56);
    out.push('@');
    out.push_str(&accepted_micros.to_string());
    out.push(':');
    field(&mut out, name.as_str());
    field(
        &mut out,
        &exclude.map(|s| s.to_string()).unwrap_or_default(),
    );
    field(&mut out, user_id.unwrap_or_default());
    out.push_str(data.json());
    out
}

fn take_field<'a>(rest: &mut &'a str) -> Result<&'a str, WireError> {
    let (len, tail) = rest
        .split_once(':')
        .ok_or(WireError("missing field length"))?;
    let len: usize = len.parse().map_err(|_| WireError("bad field length"))?;
    if tail.len() < len || !tail.is_char_boundary(len) {
        return Err(WireError("field longer than the message"));
    }
    let (value, tail) = tail.split_at(len);
    *rest = tail;
    Ok(value)
}

/// Decodes `"{seq}:{body}"` into the event for `key`.
pub fn decode(key: ChannelKey, message: &str) -> Result<Event, WireError> {
    let (seq, mut rest) = message
        .split_once(':')
        .ok_or(WireError("missing sequence"))?;
    let seq: u64 = seq.parse().map_err(|_| WireError("bad sequence"))?;
    let accepted_micros = match rest.strip_prefix('@') {
        Some(stamped) => {
            let (micros, tail) = stamped
                .split_once(':')
                .ok_or(WireError("missing accept time"))?;
            rest = tail;
            micros.parse().map_err(|_| WireError("bad accept time"))?
        }
        None => UnixTime::from_system(SystemTime::now()).as_micros(),
    };
    let name = EventName::parse(take_field(&mut rest)?).map_err(|_| WireError("bad event name"))?;
    let exclude = match take_field(&mut rest)? {
        "" => None,
        socket => Some(socket.parse().map_err(|_| WireError("bad socket id"))?),
    };
    let user_id = match take_field(&mut rest)? {
        "" => None,
        user => Some(user.to_string()),
    };
    if rest.is_empty() {
        return Err(WireError("missing data"));
    }
    Ok(Event {
        key,
        seq,
        name,
        data: EventData::from_json_text(rest),
        exclude,
        user_id,
        accepted_micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::channel::ChannelName;
    use herald_shared::ids::AppId;

    fn key() -> ChannelKey {
        ChannelKey::new(AppId::new("1"), ChannelName::parse("c").unwrap())
    }

    #[test]
    fn bodies_round_trip() {
        let name = EventName::parse("weird:name 3:x").unwrap();
        let data = EventData::from_string("d:1:2");
        let exclude = Some(SocketId { high: 1, low: 2 });
        let text = format!("42:{}", body(&name, &data, exclude, Some("ü"), 1_234_567));
        let event = decode(key(), &text).unwrap();
        assert_eq!(
            (event.seq, event.name, event.data, event.exclude),
            (42, name, data, exclude)
        );
        assert_eq!(event.accepted_micros, 1_234_567);
        assert_eq!(event.user_id.as_deref(), Some("ü"));
        let plain = decode(
            key(),
            &format!(
                "7:{}",
                body(
                    &EventName::parse("e").unwrap(),
                    &EventData::from_string("x"),
                    None,
                    None,
                    7
                )
            ),
        )
        .unwrap();
        assert_eq!((plain.exclude, plain.user_id), (None, None));
        // A body without a stamp (an older Herald's) is stamped on decoding.
        let before = UnixTime::from_system(SystemTime::now()).as_micros();
        let unstamped = decode(key(), "7:1:e0:0:\"x\"").unwrap();
        assert!(unstamped.accepted_micros >= before);
    }

    #[test]
    fn the_lua_stamp_is_what_rust_decodes() {
        // The scripts' events start with `'@' .. micros .. ':'`, as `body` writes.
        assert!(
            super::super::scripts::STAMP_LUA
                .contains("'@' .. string.format('%.0f', now_us()) .. ':'")
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "x:1:e0:0:\"d\"",
            "1:99:e",
            "1:1:e0:0:",
            "1:1:e0:3:ab",
            "1:1:e1:x0:\"d\"",
            "1:@12",
            "1:@x:1:e0:0:\"d\"",
        ] {
            assert!(decode(key(), bad).is_err(), "{bad:?}");
        }
    }
}
