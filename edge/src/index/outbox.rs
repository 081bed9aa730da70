//! A socket's outbox: the bounded queue of encoded frames waiting to be written to it.
//!
//! Fan-out pushes into it without ever waiting; the socket's own task drains it. It is bounded by
//! frame count and by bytes. When a push would exceed either bound the outbox *overflows*: it
//! stops accepting frames and wakes the socket task, which closes the connection with 4200 (the
//! client reconnects and resubscribes) and counts a slow-consumer close. One slow client never
//! slows the others, and never grows memory without bound. The index can also order a close
//! (terminating a user's connections) through the same outbox.
//!
//! It is a `Mutex<VecDeque>` plus a waker rather than a tokio `mpsc` channel because an idle
//! socket's outbox then costs a few dozen bytes (a tokio channel allocates a 32-slot block up
//! front), and because overflow must be observable by the consumer.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use herald_shared::protocol::Outgoing;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Encodes a frame as the text every writer takes: outboxes queue it, the socket task sends it.
/// Fan-out encodes an event once and gives each subscriber a clone of these bytes.
pub fn encode(frame: &Outgoing) -> Utf8Bytes {
    Utf8Bytes::from(frame.encode())
}

/// The bounds of one outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Most frames queued.
    pub frames: usize,
    /// Most bytes queued.
    pub bytes: usize,
}

/// Why the socket must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOrder {
    /// The outbox overflowed: the client reads too slowly.
    SlowConsumer,
    /// The server terminated the user's connections.
    Terminated,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// This push overflowed the outbox; the socket will close. Reported once.
    Overflowed,
    /// Dropped: the outbox had already overflowed or its socket is gone.
    Dropped,
}

/// What the socket task takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Frames were taken: they are in [`OutboxReceiver::taken`], in order.
    Frames,
    /// Close the socket.
    Close(CloseOrder),
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    /// The frame whose delivery is measured: how many frames are taken before it, and its
    /// event's accept time. At most one at a time, so an idle socket pays 16 bytes for it.
    sample: Option<(u32, u64)>,
    close: Option<CloseOrder>,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
    limits: OutboxLimits,
}

/// The producer side: cheap to clone, held by the channel index for each subscription.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The consumer side, owned by the socket task.
///
/// It takes every queued frame at once by swapping its own (empty) queue with the shared one,
/// so one lock and one wake serve a whole burst, and both queues keep their capacity from burst
/// to burst instead of growing again each time; [`OutboxReceiver::release`] gives it back when
/// the socket goes idle.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    /// Frames taken and not yet written, oldest first.
    taken: VecDeque<Utf8Bytes>,
    /// The frame among `taken` whose delivery is measured: its position and accept time.
    taken_sample: Option<(usize, u64)>,
}

/// Creates an empty outbox.
pub fn outbox(limits: OutboxLimits) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        waker: AtomicWaker::new(),
        limits,
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver {
            shared,
            taken: VecDeque::new(),
            taken_sample: None,
        },
    )
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another holder panicked mid-push; the queue is still a
        // valid queue, so keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        self.push_inner(frame, None)
    }

    /// Queues a frame whose write is timed (the index samples one socket per event and shard);
    /// when another sample is still queued the frame is queued unsampled.
    pub fn push_sampled(&self, frame: Utf8Bytes, accepted_micros: u64) -> Pushed {
        self.push_inner(frame, Some(accepted_micros))
    }

    fn push_inner(&self, frame: Utf8Bytes, accepted_micros: Option<u64>) -> Pushed {
        let limits = self.shared.limits;
        let mut state = self.shared.lock();
        if state.closed || state.close.is_some() {
            return Pushed::Dropped;
        }
        if state.frames.len() >= limits.frames || state.bytes + frame.len() > limits.bytes {
            drop(state);
            self.close(CloseOrder::SlowConsumer);
            return Pushed::Overflowed;
        }
        state.bytes += frame.len();
        if let Some(accepted) = accepted_micros
            && state.sample.is_none()
        {
            state.sample = Some((state.frames.len() as u32, accepted));
        }
        // Only the push that finds the queue empty wakes the socket task: until the task takes
        // the queue (which empties it, under the lock), that wake is still to come or to be acted
        // on, and the task takes every frame queued by then.
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame);
        drop(state);
        if was_empty {
            self.shared.waker.wake();
        }
        Pushed::Queued
    }
}

impl Outbox {
    /// Orders the socket closed; frames still queued are dropped.
    pub fn close(&self, order: CloseOrder) {
        let mut state = self.shared.lock();
        if state.close.is_none() {
            state.close = Some(order);
            state.frames.clear();
            state.bytes = 0;
            state.sample = None;
        }
        drop(state);
        self.shared.waker.wake();
    }
}

impl OutboxReceiver {
    /// Waits until frames are queued (or a close is ordered) and takes them. Cancel-safe:
    /// nothing is taken unless returned.
    pub async fn next(&mut self) -> Next {
        poll_fn(|cx| {
            if let Some(next) = self.try_next() {
                return Poll::Ready(next);
            }
            self.shared.waker.register(cx.waker());
            match self.try_next() {
                Some(next) => Poll::Ready(next),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Takes every queued frame, if any, behind those already taken (or the close order, which
    /// drops them).
    pub fn try_next(&mut self) -> Option<Next> {
        let mut state = self.shared.lock();
        if let Some(order) = state.close {
            drop(state);
            self.clear_taken();
            return Some(Next::Close(order));
        }
        if state.frames.is_empty() {
            return None;
        }
        let before = self.taken.len();
        if let Some((behind, accepted)) = state.sample.take()
            && self.taken_sample.is_none()
        {
            self.taken_sample = Some((before + behind as usize, accepted));
        }
        state.bytes = 0;
        if before == 0 {
            std::mem::swap(&mut state.frames, &mut self.taken);
        } else {
            self.taken.append(&mut state.frames);
        }
        Some(Next::Frames)
    }

    /// The frames taken and not yet written, oldest first.
    pub fn taken(&self) -> &VecDeque<Utf8Bytes> {
        &self.taken
    }

    /// Marks the taken frames written; returns the accept time of the measured one among them.
    pub fn clear_taken(&mut self) -> Option<u64> {
        self.taken.clear();
        self.taken_sample.take().map(|(_, accepted)| accepted)
    }

    /// Takes the oldest taken frame (tests read frames one by one).
    #[cfg(test)]
    pub fn pop_taken(&mut self) -> Option<Utf8Bytes> {
        self.taken.pop_front()
    }

    /// Gives back the queues' memory when nothing is queued (an idle socket holds none).
    pub fn release(&mut self) {
        if self.taken.is_empty() {
            self.taken = VecDeque::new();
        }
        let mut state = self.shared.lock();
        if state.frames.is_empty() {
            state.frames = VecDeque::new();
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text.to_string())
    }

    fn taken(rx: &OutboxReceiver) -> Vec<&str> {
        rx.taken().iter().map(Utf8Bytes::as_str).collect()
    }

    #[tokio::test]
    async fn delivers_in_order() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 4,
            bytes: 100,
        });
        assert_eq!(tx.push(frame("a")), Pushed::Queued);
        assert_eq!(tx.push(frame("b")), Pushed::Queued);
        assert_eq!(rx.next().await, Next::Frames);
        assert_eq!(taken(&rx), ["a", "b"]);
        tx.push(frame("c"));
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!(taken(&rx), ["a", "b", "c"]);
        assert_eq!(rx.clear_taken(), None);
        assert_eq!(rx.try_next(), None);
        assert!(rx.taken().is_empty());
    }

    #[test]
    fn taking_frees_room_and_keeps_capacity() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 2,
            bytes: 100,
        });
        for round in 0..3 {
            assert_eq!(tx.push(frame("a")), Pushed::Queued, "round {round}");
            assert_eq!(tx.push(frame("b")), Pushed::Queued, "round {round}");
            assert_eq!(rx.try_next(), Some(Next::Frames));
            rx.clear_taken();
        }
        assert!(rx.taken().capacity() >= 2);
        rx.release();
        assert_eq!(rx.taken().capacity(), 0);
        assert_eq!(tx.shared.lock().frames.capacity(), 0);
    }

    #[test]
    fn one_sampled_frame_at_a_time_is_reported_when_written() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 8,
            bytes: 100,
        });
        tx.push(frame("a"));
        tx.push_sampled(frame("b"), 7);
        // A second sample while the first is queued goes out as a plain frame.
        tx.push_sampled(frame("c"), 9);
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!(rx.taken_sample, Some((1, 7)));
        assert_eq!(rx.clear_taken(), Some(7));
        tx.push(frame("d"));
        tx.push_sampled(frame("e"), 11);
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!(rx.taken_sample, Some((1, 11)));
        assert_eq!(rx.clear_taken(), Some(11));
        tx.push_sampled(frame("f"), 12);
        tx.close(CloseOrder::Terminated);
        assert_eq!(rx.try_next(), Some(Next::Close(CloseOrder::Terminated)));
        assert_eq!(rx.clear_taken(), None);
    }

    #[tokio::test]
    async fn overflows_on_count_then_drops() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 2,
            bytes: 100,
        });
        assert_eq!(tx.push(frame("a")), Pushed::Queued);
        assert_eq!(tx.push(frame("b")), Pushed::Queued);
        assert_eq!(tx.push(frame("c")), Pushed::Overflowed);
        assert_eq!(tx.push(frame("d")), Pushed::Dropped);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::SlowConsumer));
    }

    #[tokio::test]
    async fn overflows_on_bytes() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 100,
            bytes: 5,
        });
        assert_eq!(tx.push(frame("abc")), Pushed::Queued);
        assert_eq!(tx.push(frame("def")), Pushed::Overflowed);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::SlowConsumer));
    }

    #[tokio::test]
    async fn wakes_a_waiting_receiver() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 4,
            bytes: 100,
        });
        let waiter = tokio::spawn(async move {
            let next = rx.next().await;
            (next, taken(&rx).join(","))
        });
        tokio::task::yield_now().await;
        tx.push(frame("x"));
        assert_eq!(waiter.await.unwrap(), (Next::Frames, "x".to_string()));
    }

    #[test]
    fn only_the_push_onto_an_empty_queue_wakes() {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Context;

        use futures_util::task::ArcWake;

        struct Wakes(AtomicUsize);
        impl ArcWake for Wakes {
            fn wake_by_ref(arc_self: &Arc<Self>) {
                arc_self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 8,
            bytes: 100,
        });
        for round in 1..=2 {
            {
                let mut next = std::pin::pin!(rx.next());
                assert!(next.as_mut().poll(&mut cx).is_pending());
                tx.push(frame("a"));
                tx.push(frame("b"));
                assert_eq!(wakes.0.load(Ordering::SeqCst), round, "one wake for both");
                assert_eq!(next.poll(&mut cx), Poll::Ready(Next::Frames));
            }
            assert_eq!(taken(&rx), ["a", "b"]);
            rx.clear_taken();
        }
    }

    #[tokio::test]
    async fn a_close_order_drops_queued_frames() {
        let (tx, mut rx) = outbox(OutboxLimits {
            frames: 4,
            bytes: 100,
        });
        tx.push(frame("a"));
        tx.close(CloseOrder::Terminated);
        assert_eq!(tx.push(frame("b")), Pushed::Dropped);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::Terminated));
        assert!(rx.taken().is_empty());
    }

    #[test]
    fn pushes_after_the_socket_is_gone_are_dropped() {
        let (tx, rx) = outbox(OutboxLimits {
            frames: 4,
            bytes: 100,
        });
        drop(rx);
        assert_eq!(tx.push(frame("x")), Pushed::Dropped);
    }
}
