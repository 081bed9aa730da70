//! Certificates: the hub link's ([`link`]), the ones the WebSocket and HTTP listeners serve,
//! reloaded when their files change or on SIGHUP ([`files`]), and the CA and certificates
//! `herald cert` issues ([`issue`]).

pub mod files;
pub mod issue;
pub mod link;

pub use link::{fingerprint, from_pem, self_signed};
