//! HTTP API requests per app per second (governor's GCRA, one limiter per app and hub), checked
//! once a request's signature has proven which app sent it — so nobody but the app can spend
//! its allowance. Over it: `429 Too Many Requests` with `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use herald_shared::app::App;
use herald_shared::ids::AppId;

/// One limiter per app, made at its first request with the app's rate (and made again when the
/// rate changes).
#[derive(Debug, Default)]
pub struct ApiRates {
    limiters: Mutex<HashMap<AppId, (u32, Arc<DefaultDirectRateLimiter>)>>,
}

impl ApiRates {
    /// Takes one request from the app's allowance; `Err` says when to retry.
    pub fn check(&self, app: &App) -> Result<(), Duration> {
        let rate = app.settings.api_requests_per_second;
        let limiter = {
            let mut limiters = self
                .limiters
                .lock()
                .expect("no code panics holding the limiters");
            let entry = limiters
                .entry(app.id.clone())
                .or_insert_with(|| (rate, limiter(rate)));
            if entry.0 != rate {
                *entry = (rate, limiter(rate));
            }
            entry.1.clone()
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// `rate` per second, up to one second's worth at once.
fn limiter(rate: u32) -> Arc<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(Quota::per_second(rate)))
}

#[cfg(test)]
mod tests {
    use herald_shared::app::AppSettings;
    use herald_shared::ids::AppKey;
    use herald_shared::secret::Secret;

    use super::*;

    fn app(id: &str, rate: u32) -> App {
        App {
            id: AppId::new(id),
            key: AppKey::new(id),
            secret: Secret::new("s"),
            previous_secret: None,
            settings: AppSettings {
                api_requests_per_second: rate,
                ..AppSettings::default()
            },
        }
    }

    #[test]
    fn each_app_has_its_own_allowance() {
        let rates = ApiRates::default();
        for _ in 0..3 {
            assert!(rates.check(&app("a", 3)).is_ok());
        }
        let wait = rates.check(&app("a", 3)).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(rates.check(&app("b", 3)).is_ok());
        // A new rate takes effect at once.
        assert!(rates.check(&app("a", 10)).is_ok());
    }
}
