//! Pusher's documented limits, which Herald uses as defaults (apps may override some), and the
//! listen backlog every Herald listener shares.

/// The listen backlog of every TCP listener Herald binds (and of the benchmark's floor server,
/// so both meet a connect burst with the same kernel queue). Tokio's `TcpListener::bind`, like
/// std, listens with 128, which makes the kernel's `somaxconn` moot and turns a reconnect burst
/// into SYN retries of a second and more.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Longest channel name, in bytes (Pusher: 164 characters).
pub const MAX_CHANNEL_NAME_LEN: usize = 164;

/// Longest event name, in bytes (Pusher: 200 characters).
pub const MAX_EVENT_NAME_LEN: usize = 200;

/// Largest `data` of one event triggered through the HTTP API, in bytes (Pusher: 10 KB).
pub const DEFAULT_MAX_EVENT_DATA_BYTES: usize = 10 * 1024;

/// Most channels one trigger may name (Pusher: 100).
pub const DEFAULT_MAX_CHANNELS_PER_TRIGGER: usize = 100;

/// Most events in one batch trigger (Pusher: 10).
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 10;

/// Largest client WebSocket message Herald handles as a message, in bytes (Pusher: 10 KB).
/// Larger text frames get a `pusher:error` and the socket stays open.
pub const DEFAULT_MAX_CLIENT_MESSAGE_BYTES: usize = 10 * 1024;

/// Pusher's recommended activity timeout, in seconds, announced in `connection_established`.
pub const DEFAULT_ACTIVITY_TIMEOUT_SECS: u64 = 120;

/// How long the server waits for `pusher:pong` after its `pusher:ping`, in seconds (Pusher: 30).
pub const DEFAULT_PONG_TIMEOUT_SECS: u64 = 30;

/// Most members one presence channel may hold (Pusher: 100).
pub const DEFAULT_MAX_PRESENCE_MEMBERS: usize = 100;

/// Largest `user_info` of one presence member, in bytes (Pusher: 1 KB).
pub const DEFAULT_MAX_USER_INFO_BYTES: usize = 1024;

/// Client events per second per socket (Pusher: 10).
pub const DEFAULT_CLIENT_EVENTS_PER_SECOND: u32 = 10;

/// Most user ids in a signed-in user's watchlist (Pusher: 100; the rest are ignored).
pub const MAX_WATCHLIST: usize = 100;

/// How far an HTTP API request's `auth_timestamp` may be from the server's clock (Pusher: 600 s).
pub const API_TIMESTAMP_TOLERANCE_SECS: u64 = 600;

/// HTTP API requests one app may make per second on one hub (Herald's default, generous: a
/// broadcasting Laravel app sends far fewer; it stops a runaway loop, not normal use).
pub const DEFAULT_API_REQUESTS_PER_SECOND: u32 = 10_000;

/// Channels one connection may be subscribed to at once (Pusher's figure).
pub const DEFAULT_MAX_CHANNELS_PER_SOCKET: usize = 100;
