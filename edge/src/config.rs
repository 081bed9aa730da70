//! The edge's typed configuration. `herald` (infra) builds it from files, env and flags.

use std::num::NonZeroUsize;
use std::time::Duration;

use herald_shared::admin::AdminAccess;
use herald_shared::ids::EdgeId;

use crate::link::LinkConfig;
use crate::socket::{ConnectionRateLimit, SocketLimits};

/// Everything an edge needs to run.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// This edge's id; random per process, the high half of its socket ids.
    pub edge_id: EdgeId,
    /// How to reach the hubs.
    pub link: LinkConfig,
    /// Per-socket limits and timings.
    pub sockets: SocketLimits,
    /// Shards of the local channel index.
    pub index_shards: NonZeroUsize,
    /// On SIGTERM, how long the edge waits for its sockets to go before it exits anyway.
    pub drain_timeout: Duration,
    /// Who may read `/stats` and `/metrics` on the admin port.
    pub admin: AdminAccess,
    /// Most client connections this edge holds; over it new ones get 4100 and `/up` says the
    /// edge is full. `None`: no cap.
    pub max_connections: Option<u64>,
    /// New connections per client address per second; `None`: unlimited.
    pub connection_rate: Option<ConnectionRateLimit>,
}
