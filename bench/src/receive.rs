//! Receiving on many subscriber sockets with a few tasks.
//!
//! Subscribers are dealt round-robin to a small number of groups (twice the cores); each group is
//! one task that owns its sockets in a `SelectAll` and its own latency histogram and
//! [`Tracker`]s, so the per-event work is one borrowed JSON parse, a clock read, a bit set and a
//! histogram increment: no locks, no allocation beyond the frame itself, no task per socket.
//! Each socket is wrapped in a [`Feed`] that answers the server's `pusher:ping` itself, so idle
//! subscribers stay connected past the server's activity timeout.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::stream::SelectAll;
use futures_util::{Sink, Stream, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::payload;
use crate::sequence::{Arrival, Tracker};
use crate::stats;
use herald_wire::{Frame, PONG, Socket};

/// What a [`Feed`] yields.
enum Item {
    /// A text frame other than `pusher:ping`.
    Text(Utf8Bytes),
    /// The socket ended: with the close code, if the server sent one.
    Ended(Option<u16>),
}

/// One subscriber's socket as a stream of text frames, answering `pusher:ping` on its own.
struct Feed {
    index: usize,
    ws: Socket,
    pong_due: bool,
    flush_due: bool,
    ended: bool,
}

impl Feed {
    /// Sends a pending pong and flushes, without blocking reads on either.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), tungstenite::Error> {
        if self.pong_due
            && let Poll::Ready(ready) = Pin::new(&mut self.ws).poll_ready(cx)
        {
            ready?;
            Pin::new(&mut self.ws).start_send(Message::text(PONG))?;
            self.pong_due = false;
            self.flush_due = true;
        }
        if self.flush_due
            && let Poll::Ready(flushed) = Pin::new(&mut self.ws).poll_flush(cx)
        {
            flushed?;
            self.flush_due = false;
        }
        Ok(())
    }
}

fn is_ping(text: &str) -> bool {
    text.len() < 80 && text.contains("\"pusher:ping\"")
}

impl Stream for Feed {
    type Item = (usize, Item);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            if this.poll_write(cx).is_err() {
                this.ended = true;
                return Poll::Ready(Some((this.index, Item::Ended(None))));
            }
            let item = match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(Message::Text(text)))) if is_ping(&text) => {
                    this.pong_due = true;
                    continue;
                }
                Poll::Ready(Some(Ok(Message::Text(text)))) => Item::Text(text),
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    Item::Ended(frame.map(|frame| u16::from(frame.code)))
                }
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_)) | None) => Item::Ended(None),
            };
            if matches!(item, Item::Ended(_)) {
                this.ended = true;
            }
            return Poll::Ready(Some((this.index, item)));
        }
    }
}

/// What one group saw, handed back when it stops.
pub struct GroupResult {
    /// First-arrival latencies, trigger send → receive, in microseconds.
    pub latency: Histogram<u64>,
    /// One tracker per subscriber that joined the group.
    pub trackers: Vec<Tracker>,
    /// Subscribers whose socket ended during the run, by close code (`None`: no close frame).
    pub ended: BTreeMap<Option<u16>, u64>,
    /// Frames that were not this run's events (other events, unknown data, bad JSON).
    pub other_frames: u64,
    /// `pusher:error` frames received after subscribing.
    pub pusher_errors: u64,
    /// When the first and the last first arrival of any event came, in microseconds since the
    /// Unix epoch (`None`: nothing arrived). With one event, the span of its fan-out.
    pub arrivals_us: Option<(u64, u64)>,
    /// The earliest send stamp among the events that arrived (with one event, its stamp).
    pub earliest_sent_us: Option<u64>,
}

/// A group's handle: where to send its subscribers, and its live counts.
pub struct Group {
    /// Connected, subscribed sockets go here.
    pub sockets: mpsc::UnboundedSender<Socket>,
    /// First arrivals so far (read while waiting for the last deliveries).
    pub delivered: Arc<AtomicU64>,
    /// Sockets that ended so far.
    pub ended: Arc<AtomicU64>,
    /// Planned events that sockets which ended had not received: deliveries that will never
    /// come (read while waiting for every open socket to receive).
    pub missed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<GroupResult>,
}

impl Group {
    /// Starts a group for a run that triggers sequence numbers `0..planned` as `event`, number
    /// `seq` on `channels[seq % channels.len()]`; it stops when `stop` is cancelled.
    pub fn start(
        channels: Vec<String>,
        event: String,
        planned: u64,
        stop: CancellationToken,
    ) -> Self {
        let (sockets, incoming) = mpsc::unbounded_channel();
        let delivered = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let missed = Arc::new(AtomicU64::new(0));
        let state = State {
            channels,
            event,
            planned,
            delivered: delivered.clone(),
            ended: ended.clone(),
            missed: missed.clone(),
            result: GroupResult {
                latency: stats::histogram(),
                trackers: Vec::new(),
                ended: BTreeMap::new(),
                other_frames: 0,
                pusher_errors: 0,
                arrivals_us: None,
                earliest_sent_us: None,
            },
        };
        let task = tokio::spawn(state.run(incoming, stop));
        Self {
            sockets,
            delivered,
            ended,
            missed,
            task,
        }
    }

    /// Waits for the group to stop (after its token is cancelled) and returns what it saw.
    pub async fn finish(self) -> GroupResult {
        drop(self.sockets);
        self.task.await.expect("a receive group does not panic")
    }
}

struct State {
    channels: Vec<String>,
    event: String,
    planned: u64,
    delivered: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
    missed: Arc<AtomicU64>,
    result: GroupResult,
}

impl State {
    async fn run(
        mut self,
        mut incoming: mpsc::UnboundedReceiver<Socket>,
        stop: CancellationToken,
    ) -> GroupResult {
        let mut feeds = SelectAll::new();
        let mut unique = 0u64;
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                socket = incoming.recv(), if open => match socket {
                    Some(ws) => {
                        feeds.push(Feed {
                            index: self.result.trackers.len(),
                            ws,
                            pong_due: false,
                            flush_due: false,
                            ended: false,
                        });
                        self.result
                            .trackers
                            .push(Tracker::new(self.planned, self.channels.len()));
                    }
                    None => open = false,
                },
                Some((index, item)) = feeds.next(), if !feeds.is_empty() => match item {
                    Item::Text(text) => {
                        if self.on_text(index, &text) {
                            unique += 1;
                            self.delivered.store(unique, Ordering::Relaxed);
                        }
                    }
                    Item::Ended(code) => self.on_ended(index, code),
                },
            }
        }
        self.result
    }

    /// Accounts a socket that ended, and the planned events it will never receive.
    fn on_ended(&mut self, index: usize, code: Option<u16>) {
        *self.result.ended.entry(code).or_default() += 1;
        self.ended.fetch_add(1, Ordering::Relaxed);
        let missing = self
            .planned
            .saturating_sub(self.result.trackers[index].unique());
        self.missed.fetch_add(missing, Ordering::Relaxed);
    }

    /// Accounts one frame; true when it is a first arrival of one of this run's events.
    fn on_text(&mut self, index: usize, text: &str) -> bool {
        let Some(frame) = Frame::parse(text) else {
            self.result.other_frames += 1;
            return false;
        };
        let channel = frame
            .channel
            .as_deref()
            .and_then(|name| self.channels.iter().position(|ours| ours == name));
        let Some(channel) = channel.filter(|_| frame.event == self.event) else {
            if frame.event == "pusher:error" {
                self.result.pusher_errors += 1;
            } else {
                self.result.other_frames += 1;
            }
            return false;
        };
        let Some(stamp) = frame.data_str().as_deref().and_then(payload::decode) else {
            self.result.other_frames += 1;
            return false;
        };
        if stamp.seq % self.channels.len() as u64 != channel as u64 {
            // Triggered on another of the run's channels, yet delivered on this one.
            self.result.other_frames += 1;
            return false;
        }
        match self.result.trackers[index].record(stamp.seq) {
            Arrival::InOrder | Arrival::OutOfOrder => {
                let now = payload::now_us();
                stats::record(&mut self.result.latency, now.saturating_sub(stamp.sent_us));
                let result = &mut self.result;
                result.arrivals_us = Some(
                    result
                        .arrivals_us
                        .map_or((now, now), |(first, last)| (first.min(now), last.max(now))),
                );
                result.earliest_sent_us = Some(
                    result
                        .earliest_sent_us
                        .map_or(stamp.sent_us, |sent| sent.min(stamp.sent_us)),
                );
                true
            }
            Arrival::Duplicate => false,
            Arrival::Foreign => {
                self.result.other_frames += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_server_pings_only() {
        assert!(is_ping(r#"{"event":"pusher:ping","data":{}}"#));
        assert!(is_ping(r#"{"event":"pusher:ping"}"#));
        assert!(!is_ping(r#"{"event":"pusher:pong","data":{}}"#));
        assert!(!is_ping(&format!(
            r#"{{"event":"e","channel":"c","data":"\"pusher:ping\"{}"}}"#,
            "x".repeat(100)
        )));
    }
}
