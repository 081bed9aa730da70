# ElastiCache Redis OSS 7 for hub-to-hub pub/sub, presence and history (R-HA-1).
#
# Cluster mode is disabled on purpose: in cluster mode every PUBLISH is broadcast to all shards
# over the cluster bus, and Herald's fan-out is interest-based. Hubs discover the primary endpoint
# with `herald redis-endpoint`'s code (DescribeReplicationGroups) and follow it across failovers.
#
# The literals below are product invariants, checked offline by tests/tests/terraform_invariants.rs
# and the checkov policies in terraform/policies.

locals {
  replication_group_id = "${var.name}-redis"
}

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-redis"
  description = "Herald Redis subnets"
  subnet_ids  = var.private_subnet_ids
  tags        = var.tags
}

resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-redis7"
  family      = "redis7"
  description = "Herald Redis 7 parameters"

  # Presence and counts must not vanish silently: with no eviction a full Redis fails writes,
  # which hubs report as 5xx (and the memory alarm fires), instead of dropping members.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  # Detects half-open hub connections (a hub that vanished) within about a minute.
  parameter {
    name  = "tcp-keepalive"
    value = "60"
  }

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = local.replication_group_id
  description          = "Herald hubs: pub/sub, presence, history"

  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [var.security_group_id]

  cluster_mode               = "disabled"
  num_cache_clusters         = var.num_cache_clusters
  multi_az_enabled           = true
  automatic_failover_enabled = true

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  auth_token                 = var.auth_token
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  apply_immediately          = false
  maintenance_window         = "sun:04:00-sun:05:00"
  # Hub state in Redis is rebuilt by the hubs (interest, presence) or short-lived (history).
  snapshot_retention_limit = 1
  snapshot_window          = "02:00-03:00"

  tags = var.tags
}
