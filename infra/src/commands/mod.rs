//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod dev;
pub mod edge;
pub mod hub;
pub mod local_region;
pub mod probe;
pub mod redis_endpoint;
pub mod sign;
