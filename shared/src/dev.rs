//! The app `herald dev` serves when none is configured. The local tools (`herald probe`,
//! `herald-bench`) default to its credentials, so they work against `herald dev` without flags.

/// Its app id. Numeric, as Pusher and Reverb issue app ids: the Python server SDK refuses any
/// other (`\A[0-9]+\Z`).
pub const DEV_APP_ID: &str = "100001";
/// Its key.
pub const DEV_APP_KEY: &str = "herald-dev-key";
/// Its secret (for local development only).
pub const DEV_APP_SECRET: &str = "herald-dev-secret";
