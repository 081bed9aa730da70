# Provider-free: everything here is evaluated by `terraform validate` and `terraform test` even
# where no provider can be downloaded. Callers pass `rendered_base64` to a launch template.

terraform {
  required_version = ">= 1.9.0"
}

locals {
  # Templates cannot print null: missing role-specific inputs render as "" and the output
  # preconditions below report them by name.
  parameters                 = { for key, name in var.parameters : key => name == null ? "" : name }
  redis_replication_group_id = var.redis_replication_group_id == null ? "" : var.redis_replication_group_id
  edge_asg_name              = var.edge_asg_name == null ? "" : var.edge_asg_name
  lifecycle_hook_name        = var.lifecycle_hook_name == null ? "" : var.lifecycle_hook_name

  # systemd's stop timeout must outlast the drain, or SIGKILL cuts it short.
  timeout_stop_secs = var.drain_timeout_secs + 15

  config = templatefile("${path.module}/templates/herald.toml.tftpl", {
    role                       = var.role
    hubs                       = var.hubs
    hub_server_name            = var.hub_server_name
    drain_timeout_secs         = var.drain_timeout_secs
    redis_replication_group_id = local.redis_replication_group_id
  })

  unit = templatefile("${path.module}/templates/herald.service.tftpl", {
    role              = var.role
    timeout_stop_secs = local.timeout_stop_secs
  })

  rendered = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
    role                = var.role
    region              = var.region
    artifact_url        = var.herald_artifact_url
    artifact_sha256     = var.herald_artifact_sha256
    parameters          = local.parameters
    apps                = var.apps
    config              = trimspace(local.config)
    unit                = trimspace(local.unit)
    edge_asg_name       = local.edge_asg_name
    lifecycle_hook_name = local.lifecycle_hook_name
    metrics_namespace   = var.metrics_namespace
  })

  role_errors = concat(
    var.role == "edge" && length(var.hubs) == 0 ? ["an edge needs at least one hub in hubs"] : [],
    var.role == "edge" && var.parameters.hub_ca_cert == null ? ["an edge needs parameters.hub_ca_cert"] : [],
    var.role == "edge" && (var.edge_asg_name == null || var.lifecycle_hook_name == null) ? ["an edge needs edge_asg_name and lifecycle_hook_name"] : [],
    var.role == "hub" && var.redis_replication_group_id == null ? ["a hub needs redis_replication_group_id"] : [],
    var.role == "hub" && (var.parameters.hub_tls_cert == null || var.parameters.hub_tls_key == null || var.parameters.redis_auth_token == null) ? ["a hub needs parameters.hub_tls_cert, hub_tls_key and redis_auth_token"] : [],
  )
}
