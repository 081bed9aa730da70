variable "name" {
  description = "Name prefix; the replication group is <name>-redis."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the cache nodes, in at least two zones."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the replication group."
  type        = string
}

variable "node_type" {
  description = "Cache node type."
  type        = string
}

variable "num_cache_clusters" {
  description = "Nodes in the group: one primary plus replicas, spread over zones (2-6)."
  type        = number

  validation {
    condition     = var.num_cache_clusters >= 2 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be 2-6: multi-AZ with automatic failover needs a replica."
  }
}

variable "engine_version" {
  description = "Redis OSS engine version, major.minor (7.x)."
  type        = string

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be a Redis 7 major.minor such as 7.1."
  }
}

variable "auth_token" {
  description = "AUTH token (16-128 of A-Z a-z 0-9 ! & # $ ^ < > -)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9!&#$^<>-]{16,128}$", var.auth_token))
    error_message = "auth_token must be 16-128 characters of A-Z a-z 0-9 ! & # $ ^ < > -."
  }
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}

variable "cluster_mode" {
  description = "\"disabled\": one primary and replicas (num_cache_clusters); \"enabled\": a Redis Cluster of `shards` shards with `replicas_per_shard` replicas each."
  type        = string
  default     = "disabled"

  validation {
    condition     = contains(["disabled", "enabled"], var.cluster_mode)
    error_message = "cluster_mode must be \"disabled\" or \"enabled\"."
  }
}

variable "shards" {
  description = "Shards (node groups) with cluster mode enabled (1-500)."
  type        = number
  default     = 3

  validation {
    condition     = var.shards >= 1 && var.shards <= 500 && floor(var.shards) == var.shards
    error_message = "shards must be a whole number 1-500."
  }
}

variable "replicas_per_shard" {
  description = "Replicas of each shard's primary with cluster mode enabled (1-5)."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas_per_shard >= 1 && var.replicas_per_shard <= 5 && floor(var.replicas_per_shard) == var.replicas_per_shard
    error_message = "replicas_per_shard must be 1-5: multi-AZ with automatic failover needs a replica in every shard."
  }
}
