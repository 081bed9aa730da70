//! The region's shared state, wherever it lives: in this hub alone (in memory, the registry
//! is the truth) or in Redis shared with the region's other hubs. The HTTP API, the link
//! sessions and the watchlist publish and query through this one type.

use herald_shared::channel::{ChannelKey, ChannelName};
use herald_shared::ids::AppId;

use crate::cluster::{Cluster, ClusterError};
use crate::registry::{ChannelCounts, Publication, Registry, RegistryStopped};

/// Why the region could not be read or written. Both are answered 503 (retry later).
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    /// The hub is shutting down.
    #[error(transparent)]
    Stopped(#[from] RegistryStopped),
    /// Redis is unreachable or failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Where publications go and queries are answered.
#[derive(Debug, Clone)]
pub enum Region {
    /// A hub alone: its registry.
    Alone(Registry),
    /// Hubs linked through Redis.
    Redis(Cluster),
}

impl Region {
    /// Whether the hub can serve: alone always; in a region only while it hears Redis.
    pub fn ready(&self) -> bool {
        match self {
            Self::Alone(_) => true,
            Self::Redis(cluster) => cluster.hears(),
        }
    }

    /// Publishes an event; returns once it is handed to the fan-out path (the local edges'
    /// queues alone, Redis in a region).
    pub async fn publish(&self, publication: Publication) -> Result<(), RegionError> {
        match self {
            Self::Alone(registry) => {
                registry.publish(publication).await?;
            }
            Self::Redis(cluster) => {
                cluster.publish(&publication).await?;
            }
        }
        Ok(())
    }

    /// A channel's counts.
    pub async fn counts(&self, key: ChannelKey) -> Result<ChannelCounts, RegionError> {
        Ok(match self {
            Self::Alone(registry) => registry.channel(key).await?,
            Self::Redis(cluster) => cluster.counts(&key).await?,
        })
    }

    /// The occupied channels of an app starting with `prefix`, sorted by name.
    pub async fn list(
        &self,
        app: AppId,
        prefix: String,
    ) -> Result<Vec<(ChannelName, ChannelCounts)>, RegionError> {
        Ok(match self {
            Self::Alone(registry) => registry.list(app, prefix).await?,
            Self::Redis(cluster) => cluster.list(&app, &prefix).await?,
        })
    }

    /// A presence channel's user ids, sorted.
    pub async fn users(&self, key: ChannelKey) -> Result<Vec<String>, RegionError> {
        Ok(match self {
            Self::Alone(registry) => registry.users(key).await?,
            Self::Redis(cluster) => cluster.users(&key).await?,
        })
    }
}
