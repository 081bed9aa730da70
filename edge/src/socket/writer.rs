//! The socket task's write path: queued text frames written straight to the client's stream.
//!
//! Each frame's header ([`crate::frame`]) is made on the stack and written beside the frame's
//! payload — the same shared bytes for every subscriber of the event — in one vectored write per
//! batch, so nothing is copied per socket.
//!
//! Frames reach this path only when the socket could not take them at once: fan-out writes an
//! event straight to a plain socket that has nothing queued ([`crate::index::Outbox`]), and hands
//! the socket task what is left (a frame it began, the frames behind it).
//!
//! The socket's own replies and control frames (pong, close) go out one at a time through
//! [`write_frame`], between batches, once the task has taken the stream from fan-out: a socket
//! task runs one write to completion (or failure, after which the socket is dropped) before the
//! next, so frames never interleave.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::stream::ClientStream;
use crate::frame;

/// Most frames per vectored write (two slices each; Linux takes up to 1,024).
const FRAMES_PER_WRITE: usize = 64;

/// Why frames were not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing to the connection failed.
    #[error("writing to the client failed: {0}")]
    Io(#[from] io::Error),
    /// The client did not take the frames within the write timeout.
    #[error("the client did not read its frames in time")]
    TimedOut,
}

/// How far a run of frames has been written: whole frames, then bytes (header included) of
/// the next one.
#[derive(Debug, Default)]
struct Cursor {
    frame: usize,
    byte: usize,
}

/// Writes `frames` as text frames and flushes, starting `start` bytes into the first one (fan-out
/// began writing it; see [`crate::index::Outbox`]). When the client does not take them at once,
/// `timer` (the socket's one timer, which the caller re-arms afterwards) is set to fail the
/// write after `timeout`: no timer is touched while the client keeps up.
pub async fn write_frames(
    stream: &mut ClientStream,
    frames: &VecDeque<Utf8Bytes>,
    start: usize,
    mut timer: Pin<&mut Sleep>,
    timeout: Duration,
) -> Result<(), WriteError> {
    let mut cursor = Cursor {
        frame: 0,
        byte: start,
    };
    let mut armed = false;
    poll_fn(|cx| {
        if let Poll::Ready(result) = poll_write_frames(stream, frames, &mut cursor, cx) {
            return Poll::Ready(result.map_err(WriteError::from));
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

/// Writes one frame whose first header byte is `first` ([`frame::TEXT`], [`frame::PONG`],
/// [`frame::CLOSE`]) and flushes: the socket's own replies, rare beside fanned-out frames, in one
/// write.
pub async fn write_frame(stream: &mut ClientStream, first: u8, payload: &[u8]) -> io::Result<()> {
    write_frame_after(stream, &[], first, payload).await
}

/// Writes `before` (bytes that are not a frame: the upgrade's answer) and then one frame, as
/// [`write_frame`] does, in one write.
pub async fn write_frame_after(
    stream: &mut ClientStream,
    before: &[u8],
    first: u8,
    payload: &[u8],
) -> io::Result<()> {
    let (header, used) = frame::header(first, payload.len());
    let mut frame = Vec::with_capacity(before.len() + used + payload.len());
    frame.extend_from_slice(before);
    frame.extend_from_slice(&header[..used]);
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Writes the frames from `cursor` on, then flushes.
fn poll_write_frames(
    stream: &mut ClientStream,
    frames: &VecDeque<Utf8Bytes>,
    cursor: &mut Cursor,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while cursor.frame < frames.len() {
        // A write's stack arrays are zeroed on every call: they come in powers of two up to
        // what is queued, so clearing them costs at most twice the frames written (a socket that
        // keeps up writes one frame per wake; zeroing the full 64 slots cost more than the rest).
        let written = match frames.len() - cursor.frame {
            1 => poll_write_run::<1>(stream, frames, cursor, cx),
            2 => poll_write_run::<2>(stream, frames, cursor, cx),
            3..=4 => poll_write_run::<4>(stream, frames, cursor, cx),
            5..=8 => poll_write_run::<8>(stream, frames, cursor, cx),
            9..=16 => poll_write_run::<16>(stream, frames, cursor, cx),
            17..=32 => poll_write_run::<32>(stream, frames, cursor, cx),
            _ => poll_write_run::<FRAMES_PER_WRITE>(stream, frames, cursor, cx),
        };
        let written = ready!(written)?;
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        advance(cursor, frames, written);
    }
    ready!(Pin::new(stream).poll_flush(cx))?;
    Poll::Ready(Ok(()))
}

/// Writes up to `N` frames from `cursor` (headers and payloads) in one vectored write; returns
/// how many bytes were taken.
fn poll_write_run<const N: usize>(
    stream: &mut ClientStream,
    frames: &VecDeque<Utf8Bytes>,
    cursor: &Cursor,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let mut headers = [([0; frame::MAX_HEADER], 0); N];
    for (slot, frame) in headers.iter_mut().zip(frames.range(cursor.frame..)) {
        *slot = frame::text_header(frame.len());
    }
    let mut slices = [[IoSlice::new(&[]); 2]; N];
    let slices = slices.as_flattened_mut();
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
    Pin::new(stream).poll_write_vectored(cx, &slices[..count])
}

/// Moves `cursor` past `written` bytes.
fn advance(cursor: &mut Cursor, frames: &VecDeque<Utf8Bytes>, mut written: usize) {
    for frame in frames.range(cursor.frame..) {
        let whole = frame::text_frame_len(frame.len());
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
    use crate::index::PlainStream;

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

    #[tokio::test]
    async fn every_batch_size_writes_the_frames_from_the_cursor() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // The smallest count of each array size, a full write, and more than one write.
        for count in [
            1,
            2,
            3,
            5,
            9,
            17,
            33,
            FRAMES_PER_WRITE,
            2 * FRAMES_PER_WRITE + 3,
        ] {
            let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
            let mut server =
                ClientStream::Plain(PlainStream::new(listener.accept().await.unwrap().0));
            // Empty, short (2-byte header) and long (4-byte header) frames.
            let frames: VecDeque<Utf8Bytes> = (0..count)
                .map(|i| Utf8Bytes::from(format!("{i:03}").repeat(i % 5 * 20)))
                .collect();
            let mut expected = Vec::new();
            for frame in &frames {
                let (bytes, used) = frame::text_header(frame.len());
                expected.extend_from_slice(&bytes[..used]);
                expected.extend_from_slice(frame.as_bytes());
            }
            // Starts inside the first frame's header, as after a short write.
            let mut cursor = Cursor { frame: 0, byte: 1 };
            poll_fn(|cx| poll_write_frames(&mut server, &frames, &mut cursor, cx))
                .await
                .unwrap();
            assert_eq!((cursor.frame, cursor.byte), (count, 0));
            server.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, expected[1..], "{count} frames");
        }
    }
}
