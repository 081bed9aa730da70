//! The open-files limit: raised to the hard limit at start, and logged.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the effective soft limit.
pub fn raise_open_files() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(message = "Open-files limit.", limit);
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(message = "Cannot raise the open-files limit.", %error);
            None
        }
    }
}
