locals {
  # The one group of the two that exists.
  group = one(concat(aws_elasticache_replication_group.this, aws_elasticache_replication_group.cluster))
}

output "replication_group_id" {
  description = "The replication group id (what hubs resolve: the primary endpoint with cluster mode disabled, the configuration endpoint with it enabled)."
  value       = local.group.id
}

output "arn" {
  description = "ARN of the replication group."
  value       = local.group.arn
}

output "cluster_mode" {
  description = "\"disabled\" or \"enabled\"."
  value       = var.cluster_mode
}

output "primary_endpoint_address" {
  description = "Primary endpoint (follows failovers); null with cluster mode enabled."
  value       = local.cluster ? null : local.group.primary_endpoint_address
}

output "reader_endpoint_address" {
  description = "Reader endpoint; null with cluster mode enabled."
  value       = local.cluster ? null : local.group.reader_endpoint_address
}

output "configuration_endpoint_address" {
  description = "Configuration endpoint (any node, which describes the cluster); null with cluster mode disabled."
  value       = local.cluster ? local.group.configuration_endpoint_address : null
}

output "member_cluster_ids" {
  description = "Node ids, computed so alarms can be planned before the group exists: <group>-001… with cluster mode disabled, <group>-0001-001… (shard, node) with it enabled."
  value = local.cluster ? flatten([
    for shard in range(var.shards) : [
      for node in range(var.replicas_per_shard + 1) : format("%s-%04d-%03d", local.cluster_replication_group_id, shard + 1, node + 1)
    ]
  ]) : [for index in range(var.num_cache_clusters) : format("%s-%03d", local.replication_group_id, index + 1)]
}
