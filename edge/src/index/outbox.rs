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
//!
//! # Direct writes
//! A plain (`ws://`) socket's outbox also holds its `TcpStream`, in the same allocation as the
//! lock and the queue ([`PlainStream`]): a push to a socket that keeps up touches the
//! subscriber's entry and this one allocation, and nothing else. When nothing is queued and the
//! socket task is not writing, a push writes the frame to the stream at once, under the outbox's
//! lock, in one non-blocking `send` of the frame's bytes (made once per event, header included),
//! the way the do-nothing floor writes, and the socket task is not woken at all: most deliveries
//! to a client that keeps up cost one system call and no task switch. What the stream does not take at once is queued, with how much of it
//! was written, and the task finishes it. Who writes is decided under the lock, so frames never
//! interleave:
//! - fan-out writes only when the queue is empty and the task does not hold the stream;
//! - the task holds the stream from the moment it takes frames (or [`OutboxReceiver::claim`]s
//!   the stream to write a reply of its own) until it next finds the queue empty;
//! - once the socket closes (a close order, or the task is gone) nobody writes directly again.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::SystemTime;

use futures_util::task::AtomicWaker;
use herald_shared::protocol::Outgoing;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::frame::TextFrame;
use crate::metrics;

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
    /// Written to the socket's stream in full.
    Written,
    /// Queued (possibly begun: the socket task writes the rest).
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

#[derive(Debug)]
struct State {
    frames: VecDeque<Utf8Bytes>,
    /// Bytes of the first queued frame (header included) already written by a direct write.
    front_written: usize,
    bytes: usize,
    limits: OutboxLimits,
    /// Fan-out may write to the plain socket's stream while nothing is queued: false for TLS
    /// sockets, before the outbox is made and once the socket closes.
    direct: bool,
    /// The socket task holds the stream: it is writing, or has frames of its own to write.
    task_writing: bool,
    /// The frame whose delivery is measured: how many frames are taken before it, and its
    /// event's accept time. At most one at a time, so an idle socket pays 16 bytes for it.
    sample: Option<(u32, u64)>,
    close: Option<CloseOrder>,
    closed: bool,
}

impl State {
    fn new(limits: OutboxLimits) -> Self {
        Self {
            frames: VecDeque::new(),
            front_written: 0,
            bytes: 0,
            limits,
            direct: false,
            task_writing: false,
            sample: None,
            close: None,
            closed: false,
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
    /// A plain socket's stream; `None` for TLS sockets.
    stream: Option<TcpStream>,
}

/// A plain (`ws://`) socket's stream, allocated with the outbox it will have: the socket task
/// reads and writes it through this handle (every use is `&TcpStream`: readiness, then a
/// non-blocking call), fan-out writes to it through the outbox.
///
/// The descriptor is freed when the last handle goes (the socket task's, and the index's
/// outboxes, let go as soon as the task's leaving reaches the shards); the connection itself
/// ends with the socket task, which shuts it down when its receiver goes.
#[derive(Debug, Clone)]
pub struct PlainStream {
    shared: Arc<Shared>,
}

impl PlainStream {
    /// Wraps an accepted connection, before its socket has an outbox.
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            shared: Arc::new(Shared {
                // The limits are set when the outbox is made.
                state: Mutex::new(State::new(OutboxLimits {
                    frames: 0,
                    bytes: 0,
                })),
                waker: AtomicWaker::new(),
                stream: Some(tcp),
            }),
        }
    }
}

impl Deref for PlainStream {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        self.shared
            .stream
            .as_ref()
            .expect("a PlainStream is made with its stream")
    }
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
    taken: Taken,
}

/// What the socket task took out of the outbox and has not yet written.
#[derive(Debug, Default)]
struct Taken {
    /// Frames, oldest first.
    frames: VecDeque<Utf8Bytes>,
    /// Bytes of the first frame a direct write already sent.
    from: usize,
    /// The frame among them whose delivery is measured: its position and accept time.
    sample: Option<(usize, u64)>,
}

/// Creates an empty outbox; `plain`: the plain socket's stream, which pushes write to while
/// nothing is queued (its one outbox: the stream was allocated to hold it).
pub fn outbox(limits: OutboxLimits, plain: Option<&PlainStream>) -> (Outbox, OutboxReceiver) {
    let shared = match plain {
        Some(plain) => {
            let mut state = plain.shared.lock();
            state.limits = limits;
            state.direct = true;
            drop(state);
            plain.shared.clone()
        }
        None => Arc::new(Shared {
            state: Mutex::new(State::new(limits)),
            waker: AtomicWaker::new(),
            stream: None,
        }),
    };
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver {
            shared,
            taken: Taken::default(),
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

    /// [`Outbox::close`], for the outbox and the references fan-out holds to it.
    fn close(&self, order: CloseOrder) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some(order);
            let begun = usize::from(state.front_written > 0);
            state.frames.truncate(begun);
            state.bytes = 0;
            state.sample = None;
            state.direct = false;
        }
        drop(state);
        self.waker.wake();
    }
}

impl Outbox {
    /// Queues a frame without waiting (or writes it at once, see the module's notes).
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        self.push_shared(&TextFrame::new(frame.as_str()), None)
    }

    /// Fan-out's push, see [`OutboxRef::push_shared`].
    pub fn push_shared(&self, frame: &TextFrame, accepted_micros: Option<u64>) -> Pushed {
        self.borrowed().push_shared(frame, accepted_micros)
    }

    /// The outbox by reference: what fan-out keeps for each socket between choosing the
    /// sockets an event goes to and writing it to them.
    pub fn borrowed(&self) -> OutboxRef<'_> {
        OutboxRef {
            shared: &self.shared,
        }
    }

    /// Orders the socket closed; frames still queued are dropped, except the rest of one a
    /// direct write began (the client's stream must stay whole frames).
    pub fn close(&self, order: CloseOrder) {
        self.shared.close(order);
    }
}

/// An [`Outbox`] by reference: the address of its shared state, read once, so a push through it
/// touches that state and nothing else (not the subscriber entry the outbox lives in).
#[derive(Debug, Clone, Copy)]
pub struct OutboxRef<'a> {
    shared: &'a Shared,
}

impl OutboxRef<'_> {
    /// Asks the CPU to start loading what [`OutboxRef::push_shared`] touches first (the lock and
    /// the state behind it, the stream's descriptor), without waiting for it: fan-out calls it
    /// for a socket a little ahead of the one it writes to, so that socket's cache misses overlap
    /// a system call instead of stalling the walk. A hint with no effect on what the program
    /// does; nothing on other architectures.
    pub fn prefetch(self) {
        #[cfg(target_arch = "x86_64")]
        {
            safe_arch::prefetch_t0(&self.shared.state);
            safe_arch::prefetch_t0(&self.shared.stream);
        }
    }

    /// Fan-out's push: `frame` is the event's frame, made once for every subscriber; its payload
    /// is cloned only when it has to be queued. With `accepted_micros` its write is timed (the index samples one
    /// socket per event and shard); when another sample is still queued the frame is queued
    /// unsampled.
    pub fn push_shared(self, frame: &TextFrame, accepted_micros: Option<u64>) -> Pushed {
        let mut state = self.shared.lock();
        if state.closed || state.close.is_some() {
            return Pushed::Dropped;
        }
        let payload = frame.payload();
        let limits = state.limits;
        if state.frames.len() >= limits.frames || state.bytes + payload.len() > limits.bytes {
            drop(state);
            self.shared.close(CloseOrder::SlowConsumer);
            return Pushed::Overflowed;
        }
        let was_empty = state.frames.is_empty();
        if was_empty
            && !state.task_writing
            && state.direct
            && let Some(stream) = &self.shared.stream
        {
            // Nobody else writes while the lock is held and the task does not hold the stream.
            // A failed write leaves the frame queued: the task meets the failure itself.
            let written = write_now(stream, frame).unwrap_or(0);
            if written == frame.wire().len() {
                drop(state);
                if let Some(accepted) = accepted_micros {
                    metrics::delivered(accepted, SystemTime::now());
                }
                return Pushed::Written;
            }
            state.front_written = written;
        }
        state.bytes += payload.len();
        if let Some(accepted) = accepted_micros
            && state.sample.is_none()
        {
            state.sample = Some((state.frames.len() as u32, accepted));
        }
        // Only the push that finds the queue empty wakes the socket task: until the task takes
        // the queue (which empties it, under the lock), that wake is still to come or to be acted
        // on, and the task takes every frame queued by then.
        state.frames.push_back(payload.clone());
        drop(state);
        if was_empty {
            self.shared.waker.wake();
        }
        Pushed::Queued
    }
}

/// Writes `frame` to `stream` without waiting; how many bytes (header included) the stream
/// took. One `send` of the frame's bytes, past tokio's readiness bookkeeping: the socket is
/// non-blocking, and a stream that is full answers `WouldBlock`, after which the socket task
/// waits for room through tokio as usual (a readiness tokio still believes in is found stale by
/// the task's own write). SIGPIPE is ignored in Rust programs: a closed peer is an `EPIPE` error.
fn write_now(stream: &TcpStream, frame: &TextFrame) -> io::Result<usize> {
    socket2::SockRef::from(stream).send(frame.wire())
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

    /// Takes every queued frame, if any, behind those already taken, and with them the stream;
    /// else the close order (which drops the taken frames). When there is neither, gives the
    /// stream back to fan-out's direct writes.
    pub fn try_next(&mut self) -> Option<Next> {
        let mut state = self.shared.lock();
        if self.taken.take(&mut state) {
            return Some(Next::Frames);
        }
        if let Some(order) = state.close {
            state.task_writing = true;
            drop(state);
            self.clear_taken();
            return Some(Next::Close(order));
        }
        state.task_writing = false;
        None
    }

    /// Takes the stream from fan-out's direct writes, for a write of the socket task's own (a
    /// reply, a control frame, the close): until the task next finds the queue empty, pushes
    /// queue. Whether frames were taken — a frame fan-out began among them — that must be
    /// written first.
    pub fn claim(&mut self) -> bool {
        let mut state = self.shared.lock();
        state.task_writing = true;
        self.taken.take(&mut state)
    }

    /// The frames taken and not yet written, oldest first.
    pub fn taken(&self) -> &VecDeque<Utf8Bytes> {
        &self.taken.frames
    }

    /// Bytes of the first taken frame already written (fan-out began it).
    pub fn taken_from(&self) -> usize {
        self.taken.from
    }

    /// Marks the taken frames written; returns the accept time of the measured one among them.
    pub fn clear_taken(&mut self) -> Option<u64> {
        self.taken.frames.clear();
        self.taken.from = 0;
        self.taken.sample.take().map(|(_, accepted)| accepted)
    }

    /// Takes the oldest taken frame (tests read frames one by one).
    #[cfg(test)]
    pub fn pop_taken(&mut self) -> Option<Utf8Bytes> {
        self.taken.frames.pop_front()
    }

    /// Gives back the queues' memory when nothing is queued (an idle socket holds none).
    pub fn release(&mut self) {
        if self.taken.frames.is_empty() {
            self.taken.frames = VecDeque::new();
        }
        let mut state = self.shared.lock();
        if state.frames.is_empty() {
            state.frames = VecDeque::new();
        }
    }
}

impl Taken {
    /// Moves the queued frames behind these, with the stream; whether there were any.
    fn take(&mut self, state: &mut State) -> bool {
        if state.frames.is_empty() {
            return false;
        }
        state.task_writing = true;
        let before = self.frames.len();
        if let Some((behind, accepted)) = state.sample.take()
            && self.sample.is_none()
        {
            self.sample = Some((before + behind as usize, accepted));
        }
        state.bytes = 0;
        if before == 0 {
            // Only a socket task with nothing taken can find a begun frame: fan-out writes only
            // while the task does not hold the stream, and it holds it until all is written.
            self.from = std::mem::take(&mut state.front_written);
            std::mem::swap(&mut state.frames, &mut self.frames);
        } else {
            self.frames.append(&mut state.frames);
        }
        true
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.frames.clear();
        state.direct = false;
        drop(state);
        // The connection ends with the task, not when the index lets go of the outbox (which
        // frees the descriptor): the client sees the end of the stream now.
        if let Some(stream) = &self.shared.stream {
            let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
        }
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
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 4,
                bytes: 100,
            },
            None,
        );
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
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 2,
                bytes: 100,
            },
            None,
        );
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
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 8,
                bytes: 100,
            },
            None,
        );
        tx.push(frame("a"));
        tx.push_shared(&TextFrame::new("b"), Some(7));
        // A second sample while the first is queued goes out as a plain frame.
        tx.push_shared(&TextFrame::new("c"), Some(9));
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!(rx.taken.sample, Some((1, 7)));
        assert_eq!(rx.clear_taken(), Some(7));
        tx.push(frame("d"));
        tx.push_shared(&TextFrame::new("e"), Some(11));
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!(rx.taken.sample, Some((1, 11)));
        assert_eq!(rx.clear_taken(), Some(11));
        tx.push_shared(&TextFrame::new("f"), Some(12));
        tx.close(CloseOrder::Terminated);
        assert_eq!(rx.try_next(), Some(Next::Close(CloseOrder::Terminated)));
        assert_eq!(rx.clear_taken(), None);
    }

    #[tokio::test]
    async fn overflows_on_count_then_drops() {
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 2,
                bytes: 100,
            },
            None,
        );
        assert_eq!(tx.push(frame("a")), Pushed::Queued);
        assert_eq!(tx.push(frame("b")), Pushed::Queued);
        assert_eq!(tx.push(frame("c")), Pushed::Overflowed);
        assert_eq!(tx.push(frame("d")), Pushed::Dropped);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::SlowConsumer));
    }

    #[tokio::test]
    async fn overflows_on_bytes() {
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 100,
                bytes: 5,
            },
            None,
        );
        assert_eq!(tx.push(frame("abc")), Pushed::Queued);
        assert_eq!(tx.push(frame("def")), Pushed::Overflowed);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::SlowConsumer));
    }

    #[tokio::test]
    async fn wakes_a_waiting_receiver() {
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 4,
                bytes: 100,
            },
            None,
        );
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
        use std::sync::atomic::Ordering;

        let (wakes, waker) = counting_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 8,
                bytes: 100,
            },
            None,
        );
        for round in 1..=2 {
            {
                let mut next = std::pin::pin!(rx.next());
                assert!(next.as_mut().poll(&mut cx).is_pending());
                tx.push(frame("a"));
                tx.push(frame("b"));
                assert_eq!(wakes.load(Ordering::SeqCst), round, "one wake for both");
                assert_eq!(next.poll(&mut cx), Poll::Ready(Next::Frames));
            }
            assert_eq!(taken(&rx), ["a", "b"]);
            rx.clear_taken();
        }
    }

    #[tokio::test]
    async fn a_close_order_drops_queued_frames() {
        let (tx, mut rx) = outbox(
            OutboxLimits {
                frames: 4,
                bytes: 100,
            },
            None,
        );
        tx.push(frame("a"));
        tx.close(CloseOrder::Terminated);
        assert_eq!(tx.push(frame("b")), Pushed::Dropped);
        assert_eq!(rx.next().await, Next::Close(CloseOrder::Terminated));
        assert!(rx.taken().is_empty());
    }

    #[test]
    fn pushes_after_the_socket_is_gone_are_dropped() {
        let (tx, rx) = outbox(
            OutboxLimits {
                frames: 4,
                bytes: 100,
            },
            None,
        );
        drop(rx);
        assert_eq!(tx.push(frame("x")), Pushed::Dropped);
    }

    /// The limits of the direct-write tests that do not fill anything.
    const SMALL: OutboxLimits = OutboxLimits {
        frames: 4,
        bytes: 100,
    };

    /// An outbox whose socket is the server side of a fresh connection; the server side (shared
    /// with the outbox) and the client side.
    async fn direct_outbox(
        limits: OutboxLimits,
    ) -> (Outbox, OutboxReceiver, PlainStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let server = PlainStream::new(listener.accept().await.unwrap().0);
        let (tx, rx) = outbox(limits, Some(&server));
        (tx, rx, server, client)
    }

    /// Reads exactly `len` bytes the client was sent.
    async fn read_exact(client: &mut TcpStream, len: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut bytes = vec![0; len];
        client.read_exact(&mut bytes).await.unwrap();
        bytes
    }

    fn wire(text: &str) -> Vec<u8> {
        TextFrame::new(text).wire().to_vec()
    }

    /// Counts the wakes of the socket task.
    fn counting_waker() -> (Arc<std::sync::atomic::AtomicUsize>, std::task::Waker) {
        use futures_util::task::ArcWake;
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Wakes(Arc<AtomicUsize>);
        impl ArcWake for Wakes {
            fn wake_by_ref(arc_self: &Arc<Self>) {
                arc_self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(AtomicUsize::new(0));
        (
            count.clone(),
            futures_util::task::waker(Arc::new(Wakes(count))),
        )
    }

    #[tokio::test]
    async fn a_push_to_an_idle_plain_socket_is_written_at_once_without_waking_the_task() {
        use std::future::Future;
        use std::sync::atomic::Ordering;
        let (tx, mut rx, _, mut client) = direct_outbox(SMALL).await;
        let (wakes, waker) = counting_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut next = std::pin::pin!(rx.next());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        assert_eq!(tx.push(frame("one")), Pushed::Written);
        assert_eq!(
            tx.push_shared(&TextFrame::new("two"), Some(5)),
            Pushed::Written
        );
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
        assert!(next.as_mut().poll(&mut cx).is_pending(), "nothing queued");
        assert_eq!(
            read_exact(&mut client, 10).await,
            [wire("one"), wire("two")].concat()
        );
    }

    #[tokio::test]
    async fn while_the_task_holds_the_stream_pushes_queue_until_it_finds_the_queue_empty() {
        let (tx, mut rx, _, mut client) = direct_outbox(SMALL).await;
        // The task writes a reply of its own: fan-out queues behind it.
        assert!(!rx.claim(), "nothing was queued");
        assert_eq!(tx.push(frame("a")), Pushed::Queued);
        assert_eq!(rx.try_next(), Some(Next::Frames));
        assert_eq!((taken(&rx), rx.taken_from()), (vec!["a"], 0));
        rx.clear_taken();
        // Still held until the task finds nothing queued.
        assert_eq!(tx.push(frame("b")), Pushed::Queued);
        assert_eq!(rx.try_next(), Some(Next::Frames));
        rx.clear_taken();
        assert_eq!(rx.try_next(), None);
        assert_eq!(tx.push(frame("c")), Pushed::Written);
        assert_eq!(read_exact(&mut client, 3).await, wire("c"));
    }

    #[tokio::test]
    async fn a_frame_the_stream_took_in_part_is_finished_by_the_task_even_when_closing() {
        // The kernel decides where a write stops: when the frames fill the send buffer to the
        // byte (the stream takes nothing of the next one), try a fresh connection.
        for _attempt in 0..20 {
            let limits = OutboxLimits {
                frames: 1_000,
                bytes: 1 << 30,
            };
            let (tx, mut rx, server, mut client) = direct_outbox(limits).await;
            socket2::SockRef::from(&*server)
                .set_send_buffer_size(4096)
                .unwrap();
            drop(server);
            let big = "x".repeat(60_001);
            let mut written = 0;
            while tx.push(frame(&big)) == Pushed::Written {
                written += 1;
                assert!(
                    written < 1_000,
                    "the client never read, yet every frame went out"
                );
            }
            let begun = tx.shared.lock().front_written;
            if begun == 0 {
                continue;
            }
            assert_eq!(tx.push(frame("after")), Pushed::Queued);
            tx.close(CloseOrder::SlowConsumer);
            assert_eq!(tx.push(frame("dropped")), Pushed::Dropped);
            // The frames written in full, then as much of the next one as the stream took: the
            // task gets that frame, from there, and only then the close order.
            assert_eq!(rx.try_next(), Some(Next::Frames));
            assert_eq!(rx.taken().len(), 1, "only the begun frame is kept");
            assert_eq!(rx.taken_from(), begun);
            let whole = wire(&big);
            let sent = read_exact(&mut client, written * whole.len() + begun).await;
            for (index, chunk) in sent.chunks(whole.len()).enumerate() {
                assert_eq!(chunk, &whole[..chunk.len()], "frame {index}");
            }
            rx.clear_taken();
            assert_eq!(rx.try_next(), Some(Next::Close(CloseOrder::SlowConsumer)));
            return;
        }
        panic!("the stream never took part of a frame in 20 connections");
    }

    #[tokio::test]
    async fn nobody_writes_directly_once_the_socket_task_is_gone() {
        use tokio::io::AsyncReadExt;
        let (tx, rx, server, mut client) = direct_outbox(SMALL).await;
        drop(server);
        drop(rx);
        assert_eq!(tx.push(frame("x")), Pushed::Dropped);
        // The index still holds the outbox (and with it the descriptor), yet the connection
        // ended with the task: the client reads the end of the stream, and nothing before it.
        let mut rest = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_to_end(&mut rest),
        )
        .await
        .expect("the connection ends with the task")
        .unwrap();
        assert!(rest.is_empty());
    }
}
