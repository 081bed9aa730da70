//! A socket's Pusher session: what it is subscribed to, who it signed in as, and what each
//! client message does. The transport (frames, timers, closing) is [`super::connection`]'s job;
//! this type decides, and returns the direct reply, if any.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use herald_shared::app::App;
use herald_shared::auth::channel::{self as channel_auth, AuthError};
use herald_shared::channel::{ChannelKey, ChannelKind, ChannelName};
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::SocketId;
use herald_shared::limits::MAX_WATCHLIST;
use herald_shared::link::ClientEvent;
use herald_shared::presence::Member;
use herald_shared::protocol::{ErrorCode, Incoming, Outgoing, Resume, Subscribe};
use herald_shared::time::UnixTime;
use herald_shared::user::SignedInUser;
use tokio::time::Instant;

use super::SocketContext;
use super::limiter::TokenBucket;
use crate::index::{Command, Mode, Outbox, encode};

/// One socket's protocol state.
pub struct Session {
    ctx: Arc<SocketContext>,
    app: Arc<App>,
    socket_id: SocketId,
    outbox: Outbox,
    /// Subscribed channels, with the presence user id on presence channels.
    subscriptions: HashMap<ChannelName, Option<String>>,
    user: Option<SignedInUser>,
    client_events: TokenBucket,
}

fn subscription_error(
    channel: &ChannelName,
    kind: &'static str,
    error: String,
    status: u16,
) -> Option<Outgoing> {
    Some(Outgoing::SubscriptionError {
        channel: channel.to_string(),
        kind,
        error,
        status,
    })
}

impl Session {
    /// A fresh session for an admitted socket.
    pub fn new(
        ctx: Arc<SocketContext>,
        app: Arc<App>,
        socket_id: SocketId,
        outbox: Outbox,
    ) -> Self {
        let rate = app.settings.client_events_per_second;
        Self {
            ctx,
            app,
            socket_id,
            outbox,
            subscriptions: HashMap::new(),
            user: None,
            client_events: TokenBucket::new(rate, Instant::now()),
        }
    }

    /// The app this socket belongs to.
    pub fn app_id(&self) -> &herald_shared::ids::AppId {
        &self.app.id
    }

    /// Whether the connection counts as authorized (Pusher's "authorized connections"): it
    /// signed in, or subscribed to a private or presence channel.
    pub fn authorized(&self) -> bool {
        self.user.is_some() || self.subscriptions.keys().any(ChannelName::requires_auth)
    }

    fn key(&self, channel: ChannelName) -> ChannelKey {
        ChannelKey::new(self.app.id.clone(), channel)
    }

    /// Handles one client message; returns the direct reply.
    pub async fn handle(&mut self, incoming: Incoming) -> Option<Outgoing> {
        match incoming {
            Incoming::Ping => Some(Outgoing::Pong),
            Incoming::Pong => None,
            Incoming::Subscribe(subscribe) => self.subscribe(subscribe).await,
            Incoming::Unsubscribe { channel } => {
                if self.subscriptions.remove(&channel).is_some() {
                    self.leave(self.key(channel)).await;
                }
                None
            }
            Incoming::Signin { auth, user_data } => self.signin(auth, user_data).await,
            Incoming::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(event, channel, data).await,
        }
    }

    /// Checks a channel or sign-in signature with the app's secrets as the hub last sent them
    /// (a rotated secret applies to sockets already open; the previous one during its grace).
    fn authorize(&self, signed: &str, auth: Option<&str>) -> Result<(), AuthError> {
        let current = self
            .ctx
            .apps
            .borrow()
            .as_ref()
            .and_then(|apps| apps.by_key(self.app.key.as_str()).cloned());
        let app = current.as_ref().unwrap_or(&self.app);
        let now = UnixTime::from_system(SystemTime::now()).as_secs();
        app.verify_with(now, |secret| {
            channel_auth::verify(app.key.as_str(), secret, signed, auth)
        })
    }

    async fn subscribe(&mut self, subscribe: Subscribe) -> Option<Outgoing> {
        let Subscribe {
            channel,
            auth,
            channel_data,
            resume,
        } = subscribe;
        let max = self.ctx.limits.max_channels;
        if self.subscriptions.len() >= max && !self.subscriptions.contains_key(&channel) {
            self.ctx
                .stats
                .subscriptions_over_limit
                .fetch_add(1, Ordering::Relaxed);
            let error = format!(
                "This connection is subscribed to {max} channels, the most one connection may hold; unsubscribe from one first"
            );
            return subscription_error(&channel, "LimitReached", error, 403);
        }
        let (mode, presence_user) = match channel.kind() {
            ChannelKind::Public => (Mode::Announced, None),
            ChannelKind::Private | ChannelKind::PrivateEncrypted => {
                let socket_id = self.socket_id.to_string();
                let signed =
                    channel_auth::channel_string_to_sign(&socket_id, channel.as_str(), None);
                if let Err(error) = self.authorize(&signed, auth.as_deref()) {
                    return subscription_error(&channel, "AuthError", error.to_string(), 401);
                }
                (Mode::Announced, None)
            }
            ChannelKind::Presence => {
                let socket_id = self.socket_id.to_string();
                let signed = channel_auth::channel_string_to_sign(
                    &socket_id,
                    channel.as_str(),
                    channel_data.as_deref(),
                );
                if let Err(error) = self.authorize(&signed, auth.as_deref()) {
                    return subscription_error(&channel, "AuthError", error.to_string(), 401);
                }
                let limit = self.app.settings.max_user_info_bytes as usize;
                let member = match (&channel_data, &self.user) {
                    // pusher-js 7.4+ joins as its signed-in user, without channel_data (the
                    // signature then covers only socket and channel), as Pusher allows.
                    (None, Some(user)) => user.as_member(limit),
                    _ => Member::parse(channel_data.as_deref(), limit),
                };
                let member = match member {
                    Ok(member) => member,
                    Err(error) => {
                        return subscription_error(
                            &channel,
                            "InvalidChannelData",
                            error.to_string(),
                            400,
                        );
                    }
                };
                let user_id = member.user_id.clone();
                (Mode::Presence(member), Some(user_id))
            }
            ChannelKind::ServerToUser => {
                let own = self
                    .user
                    .as_ref()
                    .and_then(|user| ChannelName::server_to_user(&user.id).ok());
                if own.as_ref() != Some(&channel) {
                    let error = "Only the user signed in on this connection can subscribe to its #server-to-user- channel".to_string();
                    return subscription_error(&channel, "AuthError", error, 403);
                }
                // Held since sign-in; this only asks for the announcement (and never resumes).
                self.send_subscribe(channel, Mode::Announced, None).await;
                return None;
            }
        };
        self.subscriptions.insert(channel.clone(), presence_user);
        self.send_subscribe(channel, mode, resume).await;
        None
    }

    /// Asks the index to add this socket to `channel`.
    async fn send_subscribe(&self, channel: ChannelName, mode: Mode, resume: Option<Resume>) {
        let command = Command::Subscribe {
            key: self.key(channel),
            socket: self.socket_id,
            outbox: self.outbox.clone(),
            mode,
            resume,
        };
        self.ctx.index.send(command).await;
    }

    async fn signin(&mut self, auth: Option<String>, user_data: String) -> Option<Outgoing> {
        let refuse = |message: String| Some(ErrorCode::Unauthorized.reply(message));
        let signed = channel_auth::user_string_to_sign(&self.socket_id.to_string(), &user_data);
        if let Err(error) = self.authorize(&signed, auth.as_deref()) {
            return refuse(format!("Sign-in refused: {error}"));
        }
        let user = match SignedInUser::parse(&user_data) {
            Ok(user) => user,
            Err(error) => return refuse(format!("Sign-in refused: {error}")),
        };
        if let Some(current) = &self.user {
            if current.id != user.id {
                return refuse(format!("Already signed in as user {}", current.id));
            }
            return Some(Outgoing::SigninSuccess { user_data });
        }
        let Ok(channel) = ChannelName::server_to_user(&user.id) else {
            return refuse(format!(
                "User id {:?} cannot name a #server-to-user- channel",
                user.id
            ));
        };
        let mut watchlist = if self.app.settings.watchlist_events {
            user.watchlist.clone()
        } else {
            Vec::new()
        };
        // The success goes out once the hub holds the user's channel, so a server-to-user event
        // sent after it reaches this socket.
        let mut greeting = vec![encode(&Outgoing::SigninSuccess { user_data })];
        if watchlist.len() > MAX_WATCHLIST {
            watchlist.truncate(MAX_WATCHLIST);
            // Behind the sign-in success, as Pusher orders them.
            let warning = ErrorCode::WatchlistLimit.reply(format!(
                "Watchlist limit exceeded. Only the first {MAX_WATCHLIST} user IDs are accepted."
            ));
            greeting.push(encode(&warning));
        }
        let mode = Mode::SignedIn {
            watchlist,
            greeting,
        };
        self.send_subscribe(channel, mode, None).await;
        self.user = Some(user);
        None
    }

    async fn client_event(
        &mut self,
        name: EventName,
        channel: ChannelName,
        data: EventData,
    ) -> Option<Outgoing> {
        let reject = |message: String| Some(ErrorCode::ClientEventRejected.reply(message));
        if !self.app.settings.client_events {
            return reject("Client events are not enabled for this app".into());
        }
        match channel.kind() {
            ChannelKind::Private | ChannelKind::Presence => {}
            ChannelKind::PrivateEncrypted => {
                return reject("Client events are not allowed on encrypted channels".into());
            }
            ChannelKind::Public | ChannelKind::ServerToUser => {
                return reject(
                    "Client events are only allowed on private and presence channels".into(),
                );
            }
        }
        let Some(user_id) = self.subscriptions.get(&channel).cloned() else {
            return reject(format!("Not subscribed to {channel}"));
        };
        if !self.client_events.try_take(Instant::now()) {
            return Some(
                ErrorCode::ClientEventRateLimit.reply("Client event rejected due to rate limit"),
            );
        }
        let event = ClientEvent {
            key: self.key(channel),
            name,
            data,
            socket: self.socket_id,
            user_id,
        };
        let command = Command::ClientEvent {
            event,
            outbox: self.outbox.clone(),
        };
        self.ctx.index.send(command).await;
        None
    }

    /// Leaves every channel, the user channel included.
    pub async fn leave_all(&mut self) {
        let mut keys: Vec<ChannelKey> = self
            .subscriptions
            .drain()
            .map(|(channel, _)| ChannelKey::new(self.app.id.clone(), channel))
            .collect();
        if let Some(channel) = self
            .user
            .take()
            .and_then(|user| ChannelName::server_to_user(&user.id).ok())
        {
            keys.push(self.key(channel));
        }
        for key in keys {
            self.leave(key).await;
        }
    }

    /// Takes the socket off a channel in the index.
    async fn leave(&self, key: ChannelKey) {
        let socket = self.socket_id;
        self.ctx
            .index
            .send(Command::Unsubscribe { key, socket })
            .await;
    }
}
