//! Allowed origins: which pages may open WebSockets to an app, by the host of the upgrade's
//! `Origin` header, with Laravel Reverb's rules — `*` allows every origin; otherwise each
//! pattern is a host where `*` stands for any run of characters (`*.example.com` covers
//! `app.example.com` and `a.b.example.com`, not `example.com`). Scheme and port do not count.
//! Hosts compare without regard to case.
//!
//! A request without `Origin` (or with `Origin: null`) comes from something that is not a page
//! of a site — a mobile app, a server, a sandboxed frame: `require_origin` decides.

/// Whether an upgrade with this `Origin` may connect to an app allowing `patterns`.
pub fn allowed(patterns: &[String], require_origin: bool, origin: Option<&str>) -> bool {
    if patterns.iter().any(|pattern| pattern == "*") {
        return true;
    }
    match origin.and_then(host) {
        Some(host) => patterns.iter().any(|pattern| glob(pattern, &host)),
        None => !require_origin,
    }
}

/// The lower-cased host of an origin (`https://App.Example.com:8443` → `app.example.com`);
/// `None` for `null` and anything without a host.
pub fn host(origin: &str) -> Option<String> {
    let (_, rest) = origin.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split_once(']')?.0
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A pattern with `*` wildcards, compared without regard to case.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole text must have matched.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Why a configured origin pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern carries a scheme (`https://…`); origins are matched by host.
    #[error("{0:?} has a scheme; give the host only (example.com, *.example.com)")]
    HasScheme(String),
    /// The pattern is empty or holds characters no host has.
    #[error("{0:?} is not a host pattern (example.com, *.example.com, or *)")]
    NotAHost(String),
}

/// Checks a pattern as configured: a host, possibly with `*`, or `*` alone.
pub fn validate(pattern: &str) -> Result<(), PatternError> {
    if pattern.contains("://") {
        return Err(PatternError::HasScheme(pattern.to_string()));
    }
    if pattern.is_empty() || pattern.contains(['/', ' ', ',']) {
        return Err(PatternError::NotAHost(pattern.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reverbs_rules() {
        let any = list(&["*"]);
        assert!(allowed(&any, true, None));
        assert!(allowed(&any, false, Some("https://evil.test")));
        let site = list(&["example.com", "*.example.org"]);
        assert!(allowed(&site, false, Some("https://example.com")));
        assert!(allowed(&site, false, Some("http://EXAMPLE.com:8080")));
        assert!(!allowed(&site, false, Some("https://www.example.com")));
        assert!(allowed(&site, false, Some("https://app.example.org")));
        assert!(allowed(&site, false, Some("https://a.b.example.org/path")));
        assert!(!allowed(&site, false, Some("https://example.org")));
        assert!(!allowed(
            &site,
            false,
            Some("https://example.org.evil.test")
        ));
        assert!(!allowed(&site, false, Some("https://notexample.com")));
        // Without an Origin: the app's rule for non-browser clients.
        assert!(allowed(&site, false, None));
        assert!(!allowed(&site, true, None));
        assert!(!allowed(&site, true, Some("null")));
    }

    #[test]
    fn hosts_and_globs() {
        assert_eq!(
            host("https://user@Host.test:1/x").as_deref(),
            Some("host.test")
        );
        assert_eq!(host("http://[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host("null"), None);
        assert_eq!(host("https://"), None);
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcd"));
        assert!(glob("*", ""));
        assert!(validate("https://x.test").is_err());
        assert!(validate("*.x.test").is_ok());
    }
}
