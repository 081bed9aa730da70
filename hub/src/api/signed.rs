//! The extractor every Pusher API handler starts with: finds the app from the path, checks that a
//! POST body is declared as JSON, reads the body (within the body limit), checks the request
//! signature (R-API-2), and takes the request from the app's allowance ([`super::rate`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use herald_shared::app::App;
use herald_shared::auth::api;
use herald_shared::time::UnixTime;

use super::ApiState;
use super::error::ApiError;

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Signed {
    /// The app named in the path.
    pub app: Arc<App>,
    /// The decoded query parameters.
    pub params: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl Signed {
    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl FromRequest<ApiState> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let Path(path) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, state)
            .await
            .map_err(|rejection| ApiError::NotFound(rejection.body_text()))?;
        let params: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let app = match path.get("app_id") {
            Some(app_id) => state.apps.by_id(app_id),
            // Routes without an app id (see `router`) name the app by its signing key.
            None => params
                .iter()
                .find(|(name, _)| name == "auth_key")
                .and_then(|(_, key)| state.apps.by_key(key)),
        };
        let app = app
            .ok_or_else(|| ApiError::UnknownApp(path.get("app_id").cloned().unwrap_or_default()))?;
        let method = parts.method.clone();
        if method == Method::POST {
            declared_json(&parts.headers)?;
        }
        let path = parts.uri.path().to_string();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::BodyTooLarge
                } else {
                    ApiError::BodyUnreadable(rejection.body_text())
                }
            })?;
        let now = UnixTime::from_system(SystemTime::now()).as_secs();
        // During a rotation's grace period the previous secret signs too.
        let verified = app.verify_with(now, |secret| {
            api::verify(
                app.key.as_str(),
                secret,
                method.as_str(),
                &path,
                &params,
                &body,
                now,
            )
        });
        if let Err(error) = verified {
            state.stats.api_unauthorized.fetch_add(1, Ordering::Relaxed);
            return Err(error.into());
        }
        if !app.settings.enabled {
            return Err(ApiError::AppDisabled(app.id.to_string()));
        }
        if let Err(wait) = state.rates.check(&app) {
            state.stats.api_rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::RateLimited {
                limit: app.settings.api_requests_per_second,
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        Ok(Self { app, params, body })
    }
}

/// A POST body is JSON: its `Content-Type` must be `application/json`, in any case and with any
/// parameters (the SDKs send it, some with `; charset=utf-8`). A request without one is taken
/// as JSON too (RFC 9110 lets the recipient look at the data; no official SDK omits it, and the
/// body is still parsed as JSON); anything else (`text/plain`, a form) is refused with 415.
fn declared_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let declared = String::from_utf8_lossy(value.as_bytes()).into_owned();
    match declared.parse::<mime::Mime>() {
        Ok(media) if media.type_() == mime::APPLICATION && media.subtype() == mime::JSON => Ok(()),
        _ => Err(ApiError::UnsupportedContentType(declared)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(content_type: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn json_in_any_spelling_or_none_is_accepted() {
        for accepted in [
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("Application/JSON;charset=UTF-8"),
            None,
        ] {
            assert!(declared_json(&with(accepted)).is_ok(), "{accepted:?}");
        }
    }

    #[test]
    fn anything_else_is_415() {
        for refused in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/jsonp",
            "text/json",
            "",
            "json",
        ] {
            let error = declared_json(&with(Some(refused))).unwrap_err();
            assert_eq!(
                error.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{refused:?}"
            );
            assert!(error.to_string().contains(refused), "{error}");
        }
    }
}
