//! Client-side signatures, as an app's auth endpoint computes them (for the test app).

use herald_shared::auth::channel::{channel_string_to_sign, sign, user_string_to_sign};

use crate::topology::{APP_KEY, APP_SECRET};

/// The `auth` of a private, encrypted or presence subscription.
pub fn channel(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    sign(
        APP_KEY,
        APP_SECRET,
        &channel_string_to_sign(socket_id, channel, channel_data),
    )
}

/// The `auth` of a `pusher:signin`.
pub fn user(socket_id: &str, user_data: &str) -> String {
    sign(
        APP_KEY,
        APP_SECRET,
        &user_string_to_sign(socket_id, user_data),
    )
}
