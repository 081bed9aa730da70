//! Discovery of the external services Herald depends on, from the cloud APIs that own them.
//!
//! # Layout
//! - [`elasticache`]: the primary and reader endpoints of an ElastiCache (Redis OSS) replication
//!   group, resolved through `DescribeReplicationGroups`.
//!
//! # Invariants
//! - Discovery never panics on what an API returns or fails to return: every outcome is a value
//!   or a typed error that says what to do about it.
//! - Every AWS call is bounded in time (connect, attempt and operation timeouts), so a hub that
//!   resolving its Redis at start never hangs on an unreachable API.

pub mod elasticache;
