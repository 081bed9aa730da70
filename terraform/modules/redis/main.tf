# ElastiCache Redis OSS 7 for hub-to-hub pub/sub, presence and history (R-HA-1), in one of two
# shapes (var.cluster_mode):
#
# - "disabled" (default): one primary and its replicas (`aws_elasticache_replication_group.this`).
#   One core's worth of Redis carries the region; hubs discover the primary endpoint with
#   `herald redis-endpoint`'s code (DescribeReplicationGroups) and follow it across failovers.
# - "enabled": a Redis Cluster of var.shards shards, each a primary and var.replicas_per_shard
#   replicas (`aws_elasticache_replication_group.cluster`). Hubs discover its configuration
#   endpoint the same way and spread channels over the shards with sharded pub/sub (SPUBLISH /
#   SSUBSCRIBE: a message goes to its shard only, not over the whole cluster bus as PUBLISH would).
#
# Exactly one of the two groups exists; they have different ids, so switching modes creates a new
# group beside the old one before the old one is destroyed (hub state in Redis is rebuilt by the
# hubs or short-lived). The literals below are product invariants, checked offline by
# tests/tests/black_box/terraform_invariants.rs and the checkov policies in terraform/policies.

locals {
  cluster                      = var.cluster_mode == "enabled"
  replication_group_id         = "${var.name}-redis"
  cluster_replication_group_id = "${var.name}-redis-cluster"

  # Both shapes: presence and counts must not vanish silently (with no eviction a full Redis
  # fails writes, which hubs report as 5xx and the memory alarm fires, instead of dropping
  # members), and half-open hub connections (a hub that vanished) are detected within about a
  # minute.
  parameters = {
    "maxmemory-policy" = "noeviction"
    "tcp-keepalive"    = "60"
  }
}

# The moves that keep the state of a deployment made before cluster mode existed.
moved {
  from = aws_elasticache_parameter_group.this
  to   = aws_elasticache_parameter_group.this[0]
}

moved {
  from = aws_elasticache_replication_group.this
  to   = aws_elasticache_replication_group.this[0]
}

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-redis"
  description = "Herald Redis subnets"
  subnet_ids  = var.private_subnet_ids
  tags        = var.tags
}

resource "aws_elasticache_parameter_group" "this" {
  count = local.cluster ? 0 : 1

  name        = "${var.name}-redis7"
  family      = "redis7"
  description = "Herald Redis 7 parameters"

  dynamic "parameter" {
    for_each = local.parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  count = local.cluster ? 0 : 1

  replication_group_id = local.replication_group_id
  description          = "Herald hubs: pub/sub, presence, history"

  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this[0].name
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

resource "aws_elasticache_parameter_group" "cluster" {
  count = local.cluster ? 1 : 0

  name        = "${var.name}-redis7-cluster"
  family      = "redis7"
  description = "Herald Redis 7 parameters, cluster mode"

  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }

  dynamic "parameter" {
    for_each = local.parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  tags = var.tags
}

resource "aws_elasticache_replication_group" "cluster" {
  count = local.cluster ? 1 : 0

  replication_group_id = local.cluster_replication_group_id
  description          = "Herald hubs: sharded pub/sub, presence, history"

  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.cluster[0].name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [var.security_group_id]

  # Every shard has a replica in another zone and fails over to it: a primary lost without one
  # would take its slots' channels (and the events acknowledged on them) with it.
  cluster_mode               = "enabled"
  num_node_groups            = var.shards
  replicas_per_node_group    = var.replicas_per_shard
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
  snapshot_retention_limit   = 1
  snapshot_window            = "02:00-03:00"

  tags = var.tags
}
