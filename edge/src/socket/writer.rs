//! The fan-out write path: queued text frames written straight to the client's stream.
//!
//! Each frame's header (RFC 6455 §5.2: final, text, unmasked, its length) is made on the stack
//! and written beside the frame's payload — the same shared bytes for every subscriber of the
//! event — in one vectored write per batch, so nothing is copied per socket (tungstenite's
//! write path copies each frame into each socket's write buffer).
//!
//! tungstenite keeps the handshake, reads, control frames (pong, close) and the socket's direct
//! replies. [`write_frames`] first flushes whatever tungstenite has queued, and always runs to
//! completion (or failure, after which the socket is dropped) before tungstenite writes again,
//! so frames never interleave.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Sink;
use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::stream::ClientStream;

/// Most frames per vectored write (two slices each; Linux takes up to 1,024).
const FRAMES_PER_WRITE: usize = 64;

/// The longest header: FIN + text opcode, the 64-bit length marker and the length.
const MAX_HEADER: usize = 10;

/// Why frames were not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing to the connection failed.
    #[error("writing to the client failed: {0}")]
    Io(#[from] io::Error),
    /// tungstenite could not flush what it had queued.
    #[error("flushing queued control frames failed: {0}")]
    WebSocket(#[from] WsError),
    /// The client did not take the frames within the write timeout.
    #[error("the client did not read its frames in time")]
    TimedOut,
}

/// The header of a final, unmasked text frame of `len` payload bytes, and how much of it is used.
fn header(len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut out = [0; MAX_HEADER];
    out[0] = 0x81;
    let used = if len < 126 {
        // Fits: `len` < 126.
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (out, used)
}

/// How far a run of frames has been written: whole frames, then bytes (header included) of
/// the next one.
#[derive(Debug, Default)]
struct Cursor {
    frame: usize,
    byte: usize,
}

/// Writes `frames` as text frames and flushes. When the client does not take them at once,
/// `timer` (the socket's one timer, which the caller re-arms afterwards) is set to fail the
/// write after `timeout`: no timer is touched while the client keeps up.
pub async fn write_frames(
    ws: &mut WebSocketStream<ClientStream>,
    frames: &VecDeque<Utf8Bytes>,
    mut timer: Pin<&mut Sleep>,
    timeout: Duration,
) -> Result<(), WriteError> {
    let mut cursor = Cursor::default();
    let mut queued_flushed = false;
    let mut armed = false;
    poll_fn(|cx| {
        if let Poll::Ready(result) = poll_write(ws, frames, &mut queued_flushed, &mut cursor, cx) {
            return Poll::Ready(result);
        }
        if !armed {
            timer.as_mut().reset(Instant::now() + timeout);
            armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(WriteError::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

fn poll_write(
    ws: &mut WebSocketStream<ClientStream>,
    frames: &VecDeque<Utf8Bytes>,
    queued_flushed: &mut bool,
    cursor: &mut Cursor,
    cx: &mut Context<'_>,
) -> Poll<Result<(), WriteError>> {
    if !*queued_flushed {
        ready!(<_ as Sink<Message>>::poll_flush(Pin::new(&mut *ws), cx))?;
        *queued_flushed = true;
    }
    let stream = ws.get_mut();
    while cursor.frame < frames.len() {
        let run = frames
            .range(cursor.frame..)
            .take(FRAMES_PER_WRITE)
            .map(|frame| header(frame.len()));
        let mut headers = [([0; MAX_HEADER], 0); FRAMES_PER_WRITE];
        for (slot, made) in headers.iter_mut().zip(run) {
            *slot = made;
        }
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        let mut count = 0;
        let mut skip = cursor.byte;
        for ((bytes, used), frame) in headers.iter().zip(frames.range(cursor.frame..)) {
            for part in [&bytes[..*used], frame.as_bytes()] {
                let done = skip.min(part.len());
                let part = &part[done..];
                skip -= done;
                if !part.is_empty() {
                    slices[count] = IoSlice::new(part);
                    count += 1;
                }
            }
        }
        let written = ready!(Pin::new(&mut *stream).poll_write_vectored(cx, &slices[..count]))?;
        if written == 0 {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
        }
        advance(cursor, frames, written);
    }
    ready!(Pin::new(stream).poll_flush(cx))?;
    Poll::Ready(Ok(()))
}

/// Moves `cursor` past `written` bytes.
fn advance(cursor: &mut Cursor, frames: &VecDeque<Utf8Bytes>, mut written: usize) {
    for frame in frames.range(cursor.frame..) {
        let whole = header(frame.len()).1 + frame.len();
        let left = whole - cursor.byte;
        if written < left {
            cursor.byte += written;
            return;
        }
        written -= left;
        cursor.frame += 1;
        cursor.byte = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(header(0).0[..2], [0x81, 0]);
        assert_eq!(header(125).0[..2], [0x81, 125]);
        assert_eq!(header(126).0[..4], [0x81, 126, 0, 126]);
        assert_eq!(header(65_535).0[..4], [0x81, 126, 0xff, 0xff]);
        assert_eq!(header(65_536).0, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((header(3).1, header(300).1, header(70_000).1), (2, 4, 10));
    }

    #[test]
    fn the_cursor_crosses_frames_and_stops_inside_one() {
        let frames: VecDeque<Utf8Bytes> = ["abc", "de"].map(Utf8Bytes::from).into();
        let mut cursor = Cursor::default();
        advance(&mut cursor, &frames, 1);
        assert_eq!((cursor.frame, cursor.byte), (0, 1));
        advance(&mut cursor, &frames, 5);
        assert_eq!((cursor.frame, cursor.byte), (1, 1));
        advance(&mut cursor, &frames, 3);
        assert_eq!((cursor.frame, cursor.byte), (2, 0));
    }
}
