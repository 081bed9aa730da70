role                   = "edge"
region                 = "eu-west-1"
herald_artifact_url    = "s3://herald-artifacts-example/releases/0.1.0/herald-x86_64-linux"
herald_artifact_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
parameters = {
  cluster_key = "/herald/cluster/key"
  hub_ca_cert = "/herald/hub/ca_cert"
}
apps = [
  { id = "app-1", key = "app-key-1", secret_parameter = "/herald/apps/app-1/secret" },
  { id = "app-2", key = "app-key-2", secret_parameter = "/herald/apps/app-2/secret" },
]
hubs                = ["hub-1.herald.internal:4433", "hub-2.herald.internal:4433"]
drain_timeout_secs  = 25
edge_asg_name       = "herald-edge"
lifecycle_hook_name = "herald-drain"
