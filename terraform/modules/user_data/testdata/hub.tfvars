role                   = "hub"
region                 = "eu-west-1"
herald_artifact_url    = "s3://herald-artifacts-example/releases/0.1.0/herald-x86_64-linux"
herald_artifact_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
parameters = {
  cluster_key      = "/herald/cluster/key"
  hub_tls_cert     = "/herald/hub/tls_cert"
  hub_tls_key      = "/herald/hub/tls_key"
  redis_auth_token = "/herald/redis/auth_token"
}
apps = [
  { id = "app-1", key = "app-key-1", secret_parameter = "/herald/apps/app-1/secret" },
]
redis_replication_group_id = "herald-redis"
