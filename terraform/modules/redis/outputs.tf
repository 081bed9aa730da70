output "replication_group_id" {
  description = "The replication group id (what hubs resolve)."
  value       = aws_elasticache_replication_group.this.id
}

output "arn" {
  description = "ARN of the replication group."
  value       = aws_elasticache_replication_group.this.arn
}

output "primary_endpoint_address" {
  description = "Primary endpoint (follows failovers)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint_address" {
  description = "Reader endpoint."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "member_cluster_ids" {
  description = "Node ids (<group>-001…), computed so alarms can be planned before the group exists."
  value       = [for index in range(var.num_cache_clusters) : format("%s-%03d", local.replication_group_id, index + 1)]
}
