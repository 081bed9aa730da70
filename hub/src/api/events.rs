//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`.
//!
//! A trigger is acknowledged only once it has been handed to the fan-out path (R-API-5): in a
//! region, Redis holds it with its sequence; alone, the hub's memory region has numbered it and
//! the registry shard has queued it to every interested edge.

use axum::Json;
use axum::extract::State;
use futures_util::future::try_join_all;
use herald_shared::app::App;
use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::event::{EventData, EventName};
use herald_shared::ids::SocketId;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::ApiState;
use super::error::ApiError;
use super::info::Info;
use super::signed::Signed;
use crate::console::ConsoleEvent;
use crate::region::{ChannelCounts, Publication};

/// The attributes a trigger's `info` may ask for.
const TRIGGER_INFO: &[&str] = &["subscription_count", "user_count"];

/// One event as the SDKs send it (a trigger body, or one item of a batch). The PHP SDK sends
/// `channels`, some SDKs `channel`; both are accepted.
#[derive(Debug, Deserialize)]
struct EventBody {
    name: Option<String>,
    data: Option<Box<RawValue>>,
    channel: Option<String>,
    channels: Option<Vec<String>>,
    socket_id: Option<String>,
    info: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    batch: Option<Vec<EventBody>>,
}

/// A validated event.
#[derive(Debug)]
struct Trigger {
    name: EventName,
    data: EventData,
    channels: Vec<ChannelName>,
    exclude: Option<SocketId>,
    info: Info,
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::InvalidJson(error.to_string()))
}

fn validate(body: EventBody, app: &App) -> Result<Trigger, ApiError> {
    let settings = &app.settings;
    let name = EventName::parse(&body.name.ok_or(ApiError::MissingField("name"))?)?;
    if name.is_reserved() {
        return Err(ApiError::ReservedEventName(name.to_string()));
    }
    let data = EventData::from_json_text(body.data.ok_or(ApiError::MissingField("data"))?.get());
    let limit = settings.max_event_data_bytes as usize;
    let len = data.payload_len();
    if len > limit {
        return Err(ApiError::DataTooLarge { len, limit });
    }
    let names = match (body.channels, body.channel) {
        (Some(channels), _) if !channels.is_empty() => channels,
        (_, Some(channel)) => vec![channel],
        _ => return Err(ApiError::MissingField("channels")),
    };
    let limit = settings.max_channels_per_trigger as usize;
    if names.len() > limit {
        return Err(ApiError::TooManyChannels {
            count: names.len(),
            limit,
        });
    }
    let mut channels: Vec<ChannelName> = Vec::with_capacity(names.len());
    for name in names {
        let channel = ApiError::channel(name)?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    let exclude = body
        .socket_id
        .map(|id| id.parse().map_err(|_| ApiError::InvalidSocketId(id)))
        .transpose()?;
    let info = Info::parse(body.info.as_deref(), TRIGGER_INFO)?;
    for channel in &channels {
        info.check(channel)?;
    }
    Ok(Trigger {
        name,
        data,
        channels,
        exclude,
        info,
    })
}

/// Publishes on every channel of the trigger; returns each channel's counts when the trigger
/// asked for `info` (read after publishing, as Pusher does).
async fn publish(
    state: &ApiState,
    app: &App,
    trigger: &Trigger,
) -> Result<Vec<(ChannelName, ChannelCounts)>, ApiError> {
    let publications = trigger.channels.iter().map(|channel| {
        let publication = Publication {
            key: ChannelKey::new(app.id.clone(), channel.clone()),
            name: trigger.name.clone(),
            data: trigger.data.clone(),
            exclude: trigger.exclude,
            user_id: None,
        };
        async move {
            state.store.publish(publication).await?;
            crate::metrics::published(&app.id);
            state
                .stats
                .events_published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.console.publish(ConsoleEvent::Trigger {
                app_id: app.id.clone(),
                channel: channel.as_str().to_string(),
                event: trigger.name.as_str().to_string(),
            });
            let counts = if trigger.info.any() {
                state
                    .store
                    .counts(ChannelKey::new(app.id.clone(), channel.clone()))
                    .await?
            } else {
                ChannelCounts::default()
            };
            Ok::<_, ApiError>((channel.clone(), counts))
        }
    });
    try_join_all(publications).await
}

/// `POST /apps/{id}/events`: `{}` or, with `info`, `{"channels": {name: attributes}}`.
pub async fn trigger(
    State(state): State<ApiState>,
    request: Signed,
) -> Result<Json<Value>, ApiError> {
    let trigger = validate(parse_json(&request.body)?, &request.app)?;
    let published = publish(&state, &request.app, &trigger).await?;
    if !trigger.info.any() {
        return Ok(Json(json!({})));
    }
    let channels: Map<String, Value> = published
        .into_iter()
        .map(|(channel, counts)| {
            (
                channel.to_string(),
                Value::Object(trigger.info.attributes(counts)),
            )
        })
        .collect();
    Ok(Json(json!({ "channels": channels })))
}

/// `POST /apps/{id}/batch_events`: `{}` or, when any event asks for `info`,
/// `{"batch": [attributes, …]}` in the order of the events.
pub async fn batch(
    State(state): State<ApiState>,
    request: Signed,
) -> Result<Json<Value>, ApiError> {
    let body: BatchBody = parse_json(&request.body)?;
    let events = body.batch.ok_or(ApiError::MissingField("batch"))?;
    let limit = request.app.settings.max_batch_events as usize;
    if events.len() > limit {
        return Err(ApiError::BatchTooLarge {
            count: events.len(),
            limit,
        });
    }
    let triggers = events
        .into_iter()
        .map(|event| validate(event, &request.app))
        .collect::<Result<Vec<_>, _>>()?;
    let mut attributes = Vec::with_capacity(triggers.len());
    for trigger in &triggers {
        let published = publish(&state, &request.app, trigger).await?;
        let counts = published
            .first()
            .map(|(_, counts)| *counts)
            .unwrap_or_default();
        attributes.push(Value::Object(trigger.info.attributes(counts)));
    }
    if triggers.iter().any(|trigger| trigger.info.any()) {
        Ok(Json(json!({ "batch": attributes })))
    } else {
        Ok(Json(json!({})))
    }
}
