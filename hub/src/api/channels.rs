//! `GET /apps/{id}/channels`, `GET /apps/{id}/channels/{name}` and
//! `GET /apps/{id}/channels/{name}/users`, shaped as Pusher documents them (`channels` is an
//! object keyed by name — the PHP SDK breaks on an array).

use axum::Json;
use axum::extract::{Path, State};
use herald_shared::channel::{ChannelKey, ChannelKind};
use serde_json::{Map, Value, json};

use super::ApiState;
use super::error::ApiError;
use super::info::Info;
use super::signed::Signed;

/// `GET /apps/{id}/channels?filter_by_prefix=…&info=user_count`.
pub async fn list(State(state): State<ApiState>, request: Signed) -> Result<Json<Value>, ApiError> {
    let prefix = request
        .param("filter_by_prefix")
        .unwrap_or_default()
        .to_string();
    let info = Info::parse(request.param("info"), &["user_count"])?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::InvalidInfo(
            "user_count needs filter_by_prefix=presence-".to_string(),
        ));
    }
    let channels: Map<String, Value> = state
        .store
        .list(request.app.id.clone(), prefix)
        .await?
        .into_iter()
        .map(|(channel, counts)| (channel.to_string(), Value::Object(info.attributes(counts))))
        .collect();
    Ok(Json(json!({ "channels": channels })))
}

/// `GET /apps/{id}/channels/{name}?info=subscription_count,user_count`.
pub async fn show(
    State(state): State<ApiState>,
    Path((_, name)): Path<(String, String)>,
    request: Signed,
) -> Result<Json<Value>, ApiError> {
    let channel = ApiError::channel(name)?;
    let info = Info::parse(request.param("info"), &["subscription_count", "user_count"])?;
    info.check(&channel)?;
    let counts = state
        .store
        .counts(ChannelKey::new(request.app.id.clone(), channel))
        .await?;
    let mut body = info.attributes(counts);
    body.insert("occupied".into(), counts.occupied().into());
    Ok(Json(Value::Object(body)))
}

/// `GET /apps/{id}/channels/{name}/users`: `{"users":[{"id":"…"},…]}`, presence channels only.
pub async fn users(
    State(state): State<ApiState>,
    Path((_, name)): Path<(String, String)>,
    request: Signed,
) -> Result<Json<Value>, ApiError> {
    let channel = ApiError::channel(name)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(ApiError::NotPresence(channel.to_string()));
    }
    let users: Vec<Value> = state
        .store
        .users(ChannelKey::new(request.app.id.clone(), channel))
        .await?
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    Ok(Json(json!({ "users": users })))
}
