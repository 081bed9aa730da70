variable "role" {
  description = "Which Herald process the instance runs: \"edge\" or \"hub\"."
  type        = string

  validation {
    condition     = contains(["edge", "hub"], var.role)
    error_message = "role must be \"edge\" or \"hub\"."
  }
}

variable "region" {
  description = "AWS region of the deployment (SSM, S3, CloudWatch and Auto Scaling calls at boot)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "herald_artifact_url" {
  description = "s3:// URL of the herald binary (linux, the instances' architecture), fetched with the instance role."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*'()/+-]+$", var.herald_artifact_url))
    error_message = "herald_artifact_url must be an s3://bucket/key URL without spaces or shell metacharacters."
  }
}

variable "herald_artifact_sha256" {
  description = "Lower-case hex SHA-256 of the binary at herald_artifact_url; boot fails if it does not match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.herald_artifact_sha256))
    error_message = "herald_artifact_sha256 must be 64 lower-case hex digits."
  }
}

variable "parameters" {
  description = "Names of the SSM parameters (SecureString) the instance reads at boot. hub_ca_cert is needed by edges; hub_tls_cert, hub_tls_key and redis_auth_token by hubs."
  type = object({
    cluster_key      = string
    hub_ca_cert      = optional(string)
    hub_tls_cert     = optional(string)
    hub_tls_key      = optional(string)
    redis_auth_token = optional(string)
  })

  validation {
    condition = alltrue([
      for name in values(var.parameters) : name == null || can(regex("^/[A-Za-z0-9_./-]+$", name))
    ])
    error_message = "SSM parameter names must be absolute paths of [A-Za-z0-9_./-]."
  }
}

variable "apps" {
  description = "The Pusher apps: id and key in clear, the secret read at boot from the named SSM parameter."
  type = list(object({
    id               = string
    key              = string
    secret_parameter = string
  }))

  validation {
    condition     = length(var.apps) > 0
    error_message = "at least one app is needed."
  }

  validation {
    condition = alltrue([
      for app in var.apps : can(regex("^[A-Za-z0-9_-]{1,64}$", app.id)) && can(regex("^[A-Za-z0-9_-]{1,64}$", app.key)) && can(regex("^/[A-Za-z0-9_./-]+$", app.secret_parameter))
    ])
    error_message = "app ids and keys must be 1-64 characters of [A-Za-z0-9_-]; secret parameters absolute SSM names."
  }
}

variable "hubs" {
  description = "Edge only: host:port of every hub's QUIC listener (or of the internal NLB)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for hub in var.hubs : can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", hub))])
    error_message = "each hub must be host:port."
  }
}

variable "hub_server_name" {
  description = "The name in the hub certificates that edges verify."
  type        = string
  default     = "herald-hub"

  validation {
    condition     = can(regex("^[a-z0-9.-]+$", var.hub_server_name))
    error_message = "hub_server_name must be a DNS name."
  }
}

variable "drain_timeout_secs" {
  description = "Edge only: how long a draining edge spreads its 4200 reconnects before exiting. The target group's deregistration delay must be at least this."
  type        = number
  default     = 25

  validation {
    condition     = var.drain_timeout_secs >= 1 && var.drain_timeout_secs <= 300 && floor(var.drain_timeout_secs) == var.drain_timeout_secs
    error_message = "drain_timeout_secs must be a whole number of seconds from 1 to 300."
  }
}

variable "redis_replication_group_id" {
  description = "Hub only: the ElastiCache replication group the hub discovers its Redis from."
  type        = string
  default     = null

  validation {
    condition     = var.redis_replication_group_id == null || can(regex("^[a-z][a-z0-9-]{0,39}$", var.redis_replication_group_id))
    error_message = "redis_replication_group_id must be an ElastiCache replication group id."
  }
}

variable "edge_asg_name" {
  description = "Edge only: the Auto Scaling group, for the connection metric and the termination lifecycle hook."
  type        = string
  default     = null

  validation {
    condition     = var.edge_asg_name == null || can(regex("^[A-Za-z0-9_.-]{1,255}$", var.edge_asg_name))
    error_message = "edge_asg_name must be 1-255 characters of [A-Za-z0-9_.-]."
  }
}

variable "lifecycle_hook_name" {
  description = "Edge only: the termination lifecycle hook the instance completes after draining."
  type        = string
  default     = null

  validation {
    condition     = var.lifecycle_hook_name == null || can(regex("^[A-Za-z0-9_.-]{1,255}$", var.lifecycle_hook_name))
    error_message = "lifecycle_hook_name must be 1-255 characters of [A-Za-z0-9_.-]."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the EdgeConnections metric edges publish every minute."
  type        = string
  default     = "Herald"

  validation {
    condition     = can(regex("^[A-Za-z0-9_./-]{1,255}$", var.metrics_namespace))
    error_message = "metrics_namespace must be 1-255 characters of [A-Za-z0-9_./-]."
  }
}
