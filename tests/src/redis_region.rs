//! The Redis a region's hubs share: one `redis-server` ([`RedisServer`]) or a local Redis Cluster
//! of three primaries with a replica each ([`RedisCluster`]), behind one type ([`RegionRedis`])
//! so a region test body runs over both ([`on_every_redis!`](crate::on_every_redis)).
//!
//! What a test reads through it means the same on both: [`RegionRedis::connection`] routes each
//! key to the node that owns it, and [`RegionRedis::subscribers`] counts a hub's subscription to
//! a channel's events, classic on one server, sharded on a cluster.

use crate::redis::RedisServer;
use crate::redis_cluster::RedisCluster;

/// Which Redis a region runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisKind {
    /// One redis-server.
    Standalone,
    /// A local Redis Cluster (three primaries, a replica each); hubs detect cluster mode.
    Cluster,
}

impl RedisKind {
    /// `region` or `cluster-region`: the suffix of the log directory of a region over it.
    pub fn label(self) -> &'static str {
        match self {
            RedisKind::Standalone => "region",
            RedisKind::Cluster => "cluster-region",
        }
    }

    /// `{test}-{label}`: the name a region over this kind takes for `test`, so the two variants
    /// of one test keep their logs apart.
    pub fn name(self, test: &str) -> String {
        format!("{test}-{}", self.label())
    }
}

/// The running Redis of a region.
pub enum RegionRedis {
    /// One redis-server.
    Standalone(RedisServer),
    /// A local Redis Cluster.
    Cluster(RedisCluster),
}

impl RegionRedis {
    /// Starts a Redis of `kind`; `test` names a cluster's directories and logs.
    pub async fn start(kind: RedisKind, test: &str) -> Self {
        match kind {
            RedisKind::Standalone => RegionRedis::Standalone(RedisServer::start().await),
            RedisKind::Cluster => RegionRedis::Cluster(RedisCluster::start(test).await),
        }
    }

    /// [`RegionRedis::start`], listening on `also` as well as on loopback (a cluster's nodes
    /// also announce it), for a hub in another network namespace (see [`crate::netns`]); such a
    /// hub is given [`url_at`](Self::url_at)`(also)`.
    pub async fn start_on(kind: RedisKind, test: &str, also: std::net::IpAddr) -> Self {
        match kind {
            RedisKind::Standalone => RegionRedis::Standalone(RedisServer::start_on(&[also]).await),
            RedisKind::Cluster => RegionRedis::Cluster(RedisCluster::start_on(test, also).await),
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> RedisKind {
        match self {
            RegionRedis::Standalone(_) => RedisKind::Standalone,
            RegionRedis::Cluster(_) => RedisKind::Cluster,
        }
    }

    /// The URL hubs are given (`HERALD_REDIS__URL`): database 0 of the server, or a node of the
    /// cluster (any node leads to the others).
    pub fn url(&self) -> String {
        match self {
            RegionRedis::Standalone(server) => server.url(0),
            RegionRedis::Cluster(cluster) => cluster.url(),
        }
    }

    /// The URL for a hub that reaches this Redis at `host` (one it was started on,
    /// [`start_on`](Self::start_on)).
    pub fn url_at(&self, host: std::net::IpAddr) -> String {
        match self {
            RegionRedis::Standalone(server) => server.url_at(host, 0),
            RegionRedis::Cluster(cluster) => {
                assert_eq!(cluster.host(), host, "the cluster's nodes announce {host}");
                cluster.url()
            }
        }
    }

    /// A command connection for looking inside: on a cluster, each command goes to the node
    /// owning its key's slot.
    pub fn connection(&self) -> RegionConnection {
        match self {
            RegionRedis::Standalone(server) => RegionConnection::Standalone(server.connection()),
            RegionRedis::Cluster(cluster) => RegionConnection::Cluster(Box::new(
                redis::cluster::ClusterClient::new(cluster.urls())
                    .and_then(|client| client.get_connection())
                    .expect("the Redis Cluster accepts a connection"),
            )),
        }
    }

    /// How many subscribers the pub/sub channel `channel` has: `PUBSUB NUMSUB` on one server;
    /// on a cluster, where hubs subscribe to events with `SSUBSCRIBE` at the channel's primary,
    /// `PUBSUB SHARDNUMSUB` there.
    pub fn subscribers(&self, channel: &str) -> u64 {
        match self {
            RegionRedis::Standalone(server) => server.subscribers(channel),
            RegionRedis::Cluster(cluster) => {
                let primary = cluster.primary_of(channel);
                let (_, count): (String, u64) = redis::cmd("PUBSUB")
                    .arg("SHARDNUMSUB")
                    .arg(channel)
                    .query(&mut cluster.connection(primary))
                    .expect("PUBSUB SHARDNUMSUB answers");
                count
            }
        }
    }

    /// The one redis-server, for a test that only makes sense on one (killing it); panics on a
    /// cluster.
    pub fn server_mut(&mut self) -> &mut RedisServer {
        match self {
            RegionRedis::Standalone(server) => server,
            RegionRedis::Cluster(_) => panic!("this test needs a standalone redis-server"),
        }
    }

    /// The Redis Cluster, for a test that looks at its nodes; panics on one server.
    pub fn cluster(&self) -> &RedisCluster {
        match self {
            RegionRedis::Cluster(cluster) => cluster,
            RegionRedis::Standalone(_) => panic!("this test needs a Redis Cluster"),
        }
    }

    /// The Redis Cluster, for a test that kills or promotes its nodes; panics on one server.
    pub fn cluster_mut(&mut self) -> &mut RedisCluster {
        match self {
            RegionRedis::Cluster(cluster) => cluster,
            RegionRedis::Standalone(_) => panic!("this test needs a Redis Cluster"),
        }
    }
}

/// A command connection to a [`RegionRedis`]: plain, or routed by slot on a cluster.
pub enum RegionConnection {
    /// To the one redis-server.
    Standalone(redis::Connection),
    /// To the cluster, following `MOVED`/`ASK` (boxed: it is five times the size of a plain
    /// connection).
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl RegionConnection {
    fn inner(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            RegionConnection::Standalone(connection) => connection,
            RegionConnection::Cluster(connection) => connection.as_mut(),
        }
    }

    fn inner_ref(&self) -> &dyn redis::ConnectionLike {
        match self {
            RegionConnection::Standalone(connection) => connection,
            RegionConnection::Cluster(connection) => connection.as_ref(),
        }
    }
}

impl redis::ConnectionLike for RegionConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        self.inner().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        self.inner().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        self.inner().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        self.inner_ref().get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.inner_ref().supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.inner().check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner_ref().is_open()
    }
}

/// Runs the async test body `async fn NAME(redis: RedisKind)` (defined beside it) as two tests:
/// `NAME::redis`, a region over one redis-server, and `NAME::redis_cluster`, over a local Redis
/// Cluster. Arguments after the name go to `#[tokio::test(...)]` of both.
///
/// ```ignore
/// on_every_redis!(a_killed_edge_loses_its_members, flavor = "multi_thread");
/// async fn a_killed_edge_loses_its_members(redis: RedisKind) {
///     let region = Region::start_over(redis, "a_killed_edge_loses_its_members", 2, 3, &[], &[]).await;
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! on_every_redis {
    ($name:ident $(, $($test:tt)*)?) => {
        mod $name {
            #[tokio::test($($($test)*)?)]
            async fn redis() {
                super::$name($crate::redis_region::RedisKind::Standalone).await;
            }

            #[tokio::test($($($test)*)?)]
            async fn redis_cluster() {
                super::$name($crate::redis_region::RedisKind::Cluster).await;
            }
        }
    };
}
