//! One configured webhook endpoint: where to send, which events, which channels, extra headers.
//!
//! Endpoints are validated when the hub is configured (`herald` reports each problem with its
//! key), so everything past [`Endpoint::new`] holds a usable `http`/`https` URL and valid headers.
//! Endpoints never travel to edges: only hubs send webhooks, and URLs and headers may carry
//! credentials. Their `Debug` output and [`Endpoint::display`] show neither query, user info nor
//! header values.

use std::fmt;

use herald_shared::auth::webhook::{KEY_HEADER, SIGNATURE_HEADER};
use herald_shared::channel::ChannelName;
use herald_shared::hash::fnv1a;
use herald_shared::ids::AppId;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Scheme, Uri};

use super::event::{EventType, EventTypes, UnknownEventType};

/// Why an endpoint's configuration is unusable. `herald` names the key of each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// `url` is missing or empty.
    #[error("is required: the URL webhooks are POSTed to")]
    MissingUrl,
    /// `url` does not parse as an absolute URL with a host.
    #[error("{0:?} is not an absolute URL like https://example.com/pusher/webhooks")]
    BadUrl(String),
    /// `url` is not `http` or `https`.
    #[error("{0:?} is not an http:// or https:// URL")]
    NotHttp(String),
    /// An `event_types` entry is unknown.
    #[error(transparent)]
    UnknownEventType(#[from] UnknownEventType),
    /// `event_types` is given but empty.
    #[error(
        "is empty; leave it out for the default (every event but client_event and subscription_count)"
    )]
    NoEventTypes,
    /// A header name or value is not valid HTTP.
    #[error("{0:?} is not a valid HTTP header name and value")]
    BadHeader(String),
    /// A header Herald sets itself.
    #[error("{0:?} is set by Herald and cannot be configured")]
    ReservedHeader(String),
}

/// A configured endpoint, validated.
#[derive(Clone)]
pub struct Endpoint {
    url: Uri,
    event_types: EventTypes,
    headers: Vec<(HeaderName, HeaderValue)>,
    channel_prefix: Option<String>,
    channel_suffix: Option<String>,
}

/// Headers an endpoint may not set: Herald sets them on every request.
const RESERVED: [&str; 5] = [
    KEY_HEADER,
    SIGNATURE_HEADER,
    "content-type",
    "content-length",
    "host",
];

impl Endpoint {
    /// Validates an endpoint. `event_types` `None` takes the default set.
    pub fn new(
        url: &str,
        event_types: Option<&[String]>,
        headers: &[(String, String)],
        channel_prefix: Option<String>,
        channel_suffix: Option<String>,
    ) -> Result<Self, EndpointError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(EndpointError::MissingUrl);
        }
        let parsed: Uri = url
            .parse()
            .map_err(|_| EndpointError::BadUrl(url.to_string()))?;
        let Some(scheme) = parsed.scheme() else {
            return Err(EndpointError::BadUrl(url.to_string()));
        };
        if *scheme != Scheme::HTTP && *scheme != Scheme::HTTPS {
            return Err(EndpointError::NotHttp(url.to_string()));
        }
        if parsed.host().is_none_or(str::is_empty) {
            return Err(EndpointError::BadUrl(url.to_string()));
        }
        let event_types = match event_types {
            None => EventTypes::default_set(),
            Some(names) => {
                let kinds = names
                    .iter()
                    .map(|name| EventType::parse(name.trim()))
                    .collect::<Result<EventTypes, _>>()?;
                if kinds.is_empty() {
                    return Err(EndpointError::NoEventTypes);
                }
                kinds
            }
        };
        let headers = headers
            .iter()
            .map(|(name, value)| {
                if RESERVED
                    .iter()
                    .any(|reserved| reserved.eq_ignore_ascii_case(name))
                {
                    return Err(EndpointError::ReservedHeader(name.clone()));
                }
                let bad = || EndpointError::BadHeader(name.clone());
                Ok((
                    HeaderName::try_from(name.as_str()).map_err(|_| bad())?,
                    HeaderValue::try_from(value.as_str()).map_err(|_| bad())?,
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            url: parsed,
            event_types,
            headers,
            channel_prefix: channel_prefix.filter(|p| !p.is_empty()),
            channel_suffix: channel_suffix.filter(|s| !s.is_empty()),
        })
    }

    /// Where requests go.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The extra headers.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The event types it receives.
    pub fn event_types(&self) -> EventTypes {
        self.event_types
    }

    /// Whether it receives events of `kind` about `channel`.
    pub fn wants(&self, kind: EventType, channel: &ChannelName) -> bool {
        self.event_types.contains(kind) && self.matches(channel)
    }

    /// Whether `channel` passes the prefix and suffix filters.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        let name = channel.as_str();
        self.channel_prefix
            .as_deref()
            .is_none_or(|prefix| name.starts_with(prefix))
            && self
                .channel_suffix
                .as_deref()
                .is_none_or(|suffix| name.ends_with(suffix))
    }

    /// The URL for logs: scheme, host, port and path, without user info or query.
    pub fn display(&self) -> String {
        let authority = self.url.authority().map_or("", |a| a.as_str());
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!(
            "{}://{host}{}",
            self.url.scheme_str().unwrap_or("http"),
            self.url.path()
        )
    }

    /// A stable id of this endpoint of `app`, the same on every hub configured alike: it names
    /// the endpoint's queue in Redis.
    pub fn id(&self, app: &AppId) -> EndpointId {
        let url = self.url.to_string();
        EndpointId(fnv1a(
            app.as_str().bytes().chain([b'\n']).chain(url.bytes()),
        ))
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.display())
            .field("event_types", &self.event_types)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("channel_prefix", &self.channel_prefix)
            .field("channel_suffix", &self.channel_suffix)
            .finish()
    }
}

/// An endpoint's stable id (see [`Endpoint::id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::new(url, None, &[], None, None)
    }

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        assert!(endpoint("https://example.com/hooks").is_ok());
        assert!(endpoint("http://127.0.0.1:9000/").is_ok());
        assert_eq!(endpoint("  ").unwrap_err(), EndpointError::MissingUrl);
        assert_eq!(
            endpoint("ftp://example.com/").unwrap_err(),
            EndpointError::NotHttp("ftp://example.com/".into())
        );
        assert_eq!(
            endpoint("/relative").unwrap_err(),
            EndpointError::BadUrl("/relative".into())
        );
        assert!(matches!(
            endpoint("not a url").unwrap_err(),
            EndpointError::BadUrl(_)
        ));
    }

    #[test]
    fn event_types_and_headers_are_checked() {
        let types = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            Endpoint::new("http://h/", Some(&names), &[], None, None)
        };
        assert_eq!(
            types(&["member_added", "nope"]).unwrap_err(),
            EndpointError::UnknownEventType(UnknownEventType("nope".into()))
        );
        assert_eq!(types(&[]).unwrap_err(), EndpointError::NoEventTypes);
        let chosen = types(&["client_event"]).unwrap();
        assert!(chosen.event_types().contains(EventType::ClientEvent));
        assert!(!chosen.event_types().contains(EventType::ChannelOccupied));
        let header =
            |name: &str| Endpoint::new("http://h/", None, &[(name.into(), "v".into())], None, None);
        assert!(header("X-Api-Token").is_ok());
        assert_eq!(
            header("x-pusher-signature").unwrap_err(),
            EndpointError::ReservedHeader("x-pusher-signature".into())
        );
        assert_eq!(
            header("bad header").unwrap_err(),
            EndpointError::BadHeader("bad header".into())
        );
    }

    #[test]
    fn channel_filters_match_prefix_and_suffix() {
        let filtered = Endpoint::new(
            "http://h/",
            None,
            &[],
            Some("presence-".into()),
            Some("-room".into()),
        )
        .unwrap();
        let channel = |name: &str| ChannelName::parse(name).unwrap();
        assert!(filtered.wants(EventType::MemberAdded, &channel("presence-game-room")));
        assert!(!filtered.wants(EventType::MemberAdded, &channel("presence-game")));
        assert!(!filtered.wants(EventType::MemberAdded, &channel("private-x-room")));
        assert!(!filtered.wants(EventType::ClientEvent, &channel("presence-game-room")));
    }

    #[test]
    fn logs_show_no_credentials() {
        let secretive = Endpoint::new(
            "https://user:pw@example.com:8443/hooks?token=abc",
            None,
            &[("Authorization".into(), "Bearer xyz".into())],
            None,
            None,
        )
        .unwrap();
        assert_eq!(secretive.display(), "https://example.com:8443/hooks");
        let debug = format!("{secretive:?}");
        assert!(!debug.contains("pw") && !debug.contains("abc") && !debug.contains("xyz"));
        let app = AppId::new("1");
        assert_eq!(secretive.id(&app), secretive.clone().id(&app));
        assert_ne!(secretive.id(&app), secretive.id(&AppId::new("2")));
    }
}
