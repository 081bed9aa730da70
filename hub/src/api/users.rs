//! `POST /apps/{id}/users/{user_id}/terminate_connections`: closes every connection of a
//! signed-in user, on every edge.
//!
//! The order travels as Herald's internal `pusher_internal:terminate_connections` event on the
//! user's own `#server-to-user-{id}` channel, which every signed-in socket of that user holds:
//! it reaches exactly the edges that have such sockets, and edges close them instead of
//! forwarding the event.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::event::{EventData, EventName, TERMINATE_CONNECTIONS};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::signed::Signed;
use crate::region::Publication;

/// Terminates the user's connections; answers `{}`.
pub async fn terminate(
    State(state): State<ApiState>,
    Path(path): Path<HashMap<String, String>>,
    request: Signed,
) -> Result<Json<Value>, ApiError> {
    let user_id = path.get("user_id").cloned().unwrap_or_default();
    let channel = ChannelName::server_to_user(&user_id)
        .map_err(|_| ApiError::InvalidUserId(user_id.clone()))?;
    let publication = Publication {
        key: ChannelKey::new(request.app.id.clone(), channel),
        name: EventName::internal(TERMINATE_CONNECTIONS),
        data: EventData::from_json_text("{}"),
        exclude: None,
        user_id: None,
    };
    state.store.publish(publication).await?;
    Ok(Json(json!({})))
}
