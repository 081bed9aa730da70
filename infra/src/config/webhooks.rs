//! Webhook endpoints and delivery settings into the hub's [`WebhookSettings`].
//!
//! An app's endpoints are one key, `app.webhooks` ([`keys::APP_WEBHOOKS`]): `[[app.webhooks]]` /
//! `[[apps.webhooks]]` tables in the file (read as JSON by [`super::raw`]), or the same list as
//! JSON in `HERALD_APP__WEBHOOKS`. [`specs`] reads the list's shape; [`webhooks`] validates each
//! endpoint with [`Endpoint::new`] and reports a problem under the field it concerns
//! (`apps[1].webhooks[0].url (in the config file): "ftp://x" is not an http:// or https:// URL`).
//! Endpoints stay on hubs: they are not part of the app table edges receive.

use std::collections::BTreeMap;

use herald_hub::webhooks::{Endpoint, EndpointError, RetryPolicy, WebhookSettings};
use herald_shared::ids::AppId;
use serde::Deserialize;

use super::keys::{
    APP_ID, APP_WEBHOOKS, WEBHOOKS_BACKOFF_MAX_MS, WEBHOOKS_BACKOFF_MIN_MS, WEBHOOKS_QUEUE_MAX,
    WEBHOOKS_RETRY_FOR_SECS,
};
use super::parse::{Invalid, Parsed};
use super::raw::{RawConfig, Settings};
use super::resolve::Resolver;

/// One endpoint as configured, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where webhooks are POSTed.
    pub url: Option<String>,
    /// Which events (absent: all but `client_event` and `subscription_count`).
    pub event_types: Option<Vec<String>>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only channels starting with this.
    pub channel_prefix: Option<String>,
    /// Only channels ending with this.
    pub channel_suffix: Option<String>,
}

/// The parser of `app.webhooks`: a JSON list of endpoints.
pub fn specs(text: &str) -> Parsed<Vec<WebhookSpec>> {
    serde_json::from_str(text).map_err(|error| {
        Invalid(format!(
            "is not a list of endpoints like [{{\"url\": \"https://example.com/pusher/webhooks\", \"event_types\": [\"channel_occupied\"]}}]: {error}"
        ))
    })
}

/// The field of an endpoint a problem concerns.
fn field(error: &EndpointError) -> &'static str {
    match error {
        EndpointError::MissingUrl | EndpointError::BadUrl(_) | EndpointError::NotHttp(_) => "url",
        EndpointError::UnknownEventType(_) | EndpointError::NoEventTypes => "event_types",
        EndpointError::BadHeader(_) | EndpointError::ReservedHeader(_) => "headers",
    }
}

/// The valid endpoints of one app's settings, problems recorded.
pub fn endpoints(s: &Settings, r: &mut Resolver) -> Vec<Endpoint> {
    let Some(specs) = r.optional(s, &APP_WEBHOOKS) else {
        return Vec::new();
    };
    let setting = s.get(&APP_WEBHOOKS.meta);
    let name = s.name(&APP_WEBHOOKS.meta);
    specs
        .into_iter()
        .enumerate()
        .filter_map(|(index, spec)| {
            let headers: Vec<(String, String)> = spec.headers.into_iter().collect();
            let endpoint = Endpoint::new(
                spec.url.as_deref().unwrap_or_default(),
                spec.event_types.as_deref(),
                &headers,
                spec.channel_prefix,
                spec.channel_suffix,
            );
            endpoint
                .map_err(|error| {
                    let key = format!("{name}[{index}].{}", field(&error));
                    r.fail(key, setting, error.to_string());
                })
                .ok()
        })
        .collect()
}

/// The hub's webhook settings: every app's endpoints (`[app]`, then `[[apps]]`) and `[webhooks]`.
pub fn webhooks(raw: &RawConfig, r: &mut Resolver) -> WebhookSettings {
    let mut all = Vec::new();
    for s in std::iter::once(&raw.settings).chain(&raw.apps) {
        let found = endpoints(s, r);
        // An app without an id is reported by the app table; its endpoints go with it.
        if let Some(id) = s.get(&APP_ID.meta) {
            let id = AppId::new(id.text.trim());
            all.extend(found.into_iter().map(|endpoint| (id.clone(), endpoint)));
        }
    }
    let s = &raw.settings;
    let retry = RetryPolicy {
        retry_for: r.get(s, &WEBHOOKS_RETRY_FOR_SECS),
        backoff_min: r.get(s, &WEBHOOKS_BACKOFF_MIN_MS),
        backoff_max: r.get(s, &WEBHOOKS_BACKOFF_MAX_MS),
        ..RetryPolicy::default()
    };
    if retry.backoff_max < retry.backoff_min {
        r.fail(
            s.name(&WEBHOOKS_BACKOFF_MAX_MS.meta),
            s.get(&WEBHOOKS_BACKOFF_MAX_MS.meta),
            "is below webhooks.backoff_min_ms",
        );
    }
    WebhookSettings {
        endpoints: all,
        retry,
        queue_max: r.get(s, &WEBHOOKS_QUEUE_MAX),
        ..WebhookSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;
    use herald_hub::webhooks::EventType;
    use std::collections::HashMap;
    use std::time::Duration;

    fn resolve(toml_text: &str, env: &[(&str, &str)]) -> Result<WebhookSettings, Vec<String>> {
        let path = std::env::temp_dir().join(format!("herald-webhooks-{}", fastrand::u64(..)));
        std::fs::write(&path, toml_text).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let raw = load(Some(&path), &env, &[]);
        let _ = std::fs::remove_file(&path);
        let raw =
            raw.map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let mut r = Resolver::default();
        let settings = webhooks(&raw, &mut r);
        r.finish(settings)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn tables_give_endpoints_per_app() {
        let settings = resolve(
            r#"
            [app]
            id = "1"
            [[app.webhooks]]
            url = "https://example.com/hooks"
            [[apps]]
            id = "2"
            [[apps.webhooks]]
            url = "http://127.0.0.1:9000/"
            event_types = ["client_event", "subscription_count"]
            headers = { "X-Token" = "t" }
            channel_prefix = "private-"
            [webhooks]
            retry_for_secs = 20
            "#,
            &[],
        )
        .unwrap();
        assert_eq!(settings.endpoints.len(), 2);
        assert_eq!(settings.endpoints[0].0.as_str(), "1");
        let (app, second) = &settings.endpoints[1];
        assert_eq!(app.as_str(), "2");
        assert!(second.event_types().contains(EventType::SubscriptionCount));
        assert_eq!(second.headers().len(), 1);
        assert_eq!(settings.retry.retry_for, Duration::from_secs(20));
        assert_eq!(
            settings.retry,
            RetryPolicy {
                retry_for: Duration::from_secs(20),
                ..RetryPolicy::default()
            }
        );
    }

    #[test]
    fn the_environment_gives_json_that_replaces_the_tables() {
        let settings = resolve(
            "[app]\nid = \"1\"\n[[app.webhooks]]\nurl = \"https://file/\"\n",
            &[(
                "HERALD_APP__WEBHOOKS",
                r#"[{"url":"https://env/","event_types":["member_added"]}]"#,
            )],
        )
        .unwrap();
        assert_eq!(settings.endpoints.len(), 1);
        assert_eq!(settings.endpoints[0].1.display(), "https://env/");
    }

    #[test]
    fn each_bad_endpoint_is_reported_with_its_key() {
        let errors = resolve(
            r#"
            [app]
            id = "1"
            [[app.webhooks]]
            event_types = ["channel_occupied"]
            [[app.webhooks]]
            url = "https://ok/"
            event_types = ["channel_ocupied"]
            [[app.webhooks]]
            url = "ftp://files/"
            [[apps]]
            id = "2"
            [[apps.webhooks]]
            url = "https://ok/"
            headers = { "X-Pusher-Signature" = "forged" }
            "#,
            &[],
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors[0].starts_with("app.webhooks[0].url (in the config file): is required"),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with(
                "app.webhooks[1].event_types (in the config file): \"channel_ocupied\" is not a webhook event type"
            ),
            "{errors:#?}"
        );
        assert!(
            errors[2].starts_with(
                "app.webhooks[2].url (in the config file): \"ftp://files/\" is not an http:// or https:// URL"
            ),
            "{errors:#?}"
        );
        assert!(
            errors[3].starts_with("apps[0].webhooks[0].headers (in the config file): \"X-Pusher-Signature\" is set by Herald"),
            "{errors:#?}"
        );
        let errors = resolve(
            "[app]\nid = \"1\"\n",
            &[("HERALD_APP__WEBHOOKS", "{not json")],
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with(
                "app.webhooks (from HERALD_APP__WEBHOOKS): is not a list of endpoints"
            ),
            "{errors:#?}"
        );
        let errors = resolve(
            "[app]\nid = \"1\"\n[[app.webhooks]]\nurl = \"https://ok/\"\nevent_type = [\"x\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(
            errors[0].contains("unknown field `event_type`"),
            "{errors:#?}"
        );
    }
}
