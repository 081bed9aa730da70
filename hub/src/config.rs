//! The hub's typed configuration. `herald` (infra) builds it from files, env and flags.

use crate::apps::Apps;
use herald_shared::admin::AdminAccess;
use herald_shared::ids::HubId;
use herald_shared::secret::Secret;

use crate::api::ApiSettings;
use crate::cluster::ClusterSettings;
use crate::http::HttpSettings;
use crate::link::{HubTls, LinkSettings};
use crate::registry::RegistrySettings;
use crate::webhooks::WebhookSettings;

/// Everything a hub needs to run.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// This hub's id; random per process.
    pub hub_id: HubId,
    /// The apps it serves (and hands to edges).
    pub apps: Apps,
    /// The key edges' link tokens are signed with.
    pub cluster_key: Secret,
    /// The link's TLS certificate.
    pub tls: HubTls,
    /// Link settings.
    pub link: LinkSettings,
    /// HTTP API limits.
    pub api: ApiSettings,
    /// The HTTP listener's connection limits.
    pub http: HttpSettings,
    /// Who may read `/stats` and `/metrics`.
    pub admin: AdminAccess,
    /// Registry sharding, history and cache lifetimes, timers.
    pub registry: RegistrySettings,
    /// Redis, for a hub in a region of hubs; `None` runs alone, in memory.
    pub cluster: Option<ClusterSettings>,
    /// Webhook endpoints and how they are delivered to.
    pub webhooks: WebhookSettings,
    /// A token that signs in to the debug console for any app (besides apps' key and secret).
    pub console_token: Option<Secret>,
}
