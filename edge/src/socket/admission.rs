//! Admission after the upgrade: the app key, the protocol version, the app's state and its
//! allowed origins decide whether the connection is established or refused with a Pusher close
//! code. (Quotas come after: [`crate::quota`].)

use std::sync::Arc;

use herald_shared::app::{App, AppTable};
use herald_shared::origin;
use herald_shared::protocol::{CloseCode, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

use super::handshake::Upgrade;

/// The app the connection belongs to, or the code it is refused with.
pub fn admit<'a>(apps: &'a AppTable, upgrade: &Upgrade) -> Result<&'a Arc<App>, CloseCode> {
    let app = apps
        .by_key(&upgrade.app_key)
        .ok_or(CloseCode::AppNotFound)?;
    let protocol = upgrade
        .protocol
        .as_deref()
        .ok_or(CloseCode::NoProtocolVersion)?;
    let version: u32 = protocol
        .parse()
        .map_err(|_| CloseCode::InvalidVersionFormat)?;
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Err(CloseCode::UnsupportedProtocolVersion);
    }
    if !app.settings.enabled {
        return Err(CloseCode::AppDisabled);
    }
    let settings = &app.settings;
    if !origin::allowed(
        &settings.allowed_origins,
        settings.require_origin,
        upgrade.origin.as_deref(),
    ) {
        return Err(CloseCode::OriginNotAllowed);
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_shared::app::AppSettings;
    use herald_shared::ids::{AppId, AppKey};
    use herald_shared::secret::Secret;

    fn table() -> AppTable {
        let app = |id: &str, key: &str, enabled| App {
            id: AppId::new(id),
            key: AppKey::new(key),
            secret: Secret::new("s"),
            previous_secret: None,
            settings: AppSettings {
                enabled,
                ..AppSettings::default()
            },
        };
        AppTable::new(vec![app("1", "live", true), app("2", "off", false)]).unwrap()
    }

    fn upgrade(key: &str, protocol: Option<&str>) -> Upgrade {
        Upgrade {
            app_key: key.into(),
            protocol: protocol.map(Into::into),
            websocket_key: "k".into(),
            origin: None,
            forwarded_for: None,
            leftover: Vec::new(),
        }
    }

    #[test]
    fn codes_follow_the_pusher_protocol() {
        let apps = table();
        assert!(admit(&apps, &upgrade("live", Some("7"))).is_ok());
        assert!(admit(&apps, &upgrade("live", Some("5"))).is_ok());
        let refused = |key, protocol| admit(&apps, &upgrade(key, protocol)).unwrap_err().code();
        assert_eq!(refused("nope", Some("7")), 4001);
        assert_eq!(refused("off", Some("7")), 4003);
        assert_eq!(refused("live", Some("x")), 4006);
        assert_eq!(refused("live", Some("4")), 4007);
        assert_eq!(refused("live", Some("8")), 4007);
        assert_eq!(refused("live", None), 4008);
    }
}
