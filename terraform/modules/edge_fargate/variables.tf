variable "name" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "edge tasks need subnets in at least two zones."
  }
}

variable "security_group_id" {
  description = "Security group of the edge tasks (the edges' group: ALB in on 8080/9080, QUIC out to hubs)."
  type        = string
}

variable "edge_target_group_arn" {
  description = "The ALB target group for /app/* (target type ip)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The ALB's CloudWatch dimension value (ActiveConnectionCount)."
  type        = string
}

variable "repository_url" {
  description = "ECR repository of the Herald image."
  type        = string
}

variable "repository_arn" {
  description = "ARN of that repository."
  type        = string
}

variable "image_tag" {
  description = "Tag of the Herald image to run (pushed to the repository beforehand)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a Docker tag (letters, digits, _ . -; at most 128)."
  }
}

variable "cpu" {
  description = "Task CPU units (1024 = one vCPU)."
  type        = number

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Task memory, MiB (must fit the cpu size's Fargate range)."
  type        = number
}

variable "min_count" {
  description = "Fewest edge tasks (at least 2: one per zone)."
  type        = number

  validation {
    condition     = var.min_count >= 2
    error_message = "min_count must be at least 2 so that edge tasks span two zones."
  }
}

variable "max_count" {
  description = "Most edge tasks."
  type        = number
}

variable "target_connections_per_task" {
  description = "Average open WebSockets per task that scaling aims for (nofile is 65535)."
  type        = number

  validation {
    condition     = var.target_connections_per_task >= 100 && var.target_connections_per_task <= 60000
    error_message = "target_connections_per_task must be 100-60000 (one file descriptor per socket, 65535 per task)."
  }
}

variable "hubs" {
  description = "host:port of the hubs' QUIC listeners (or of the internal NLB)."
  type        = list(string)
}

variable "hub_server_name" {
  description = "The name in the hubs' certificate."
  type        = string
}

variable "parameters" {
  description = "Names of the SSM parameters (same region) the task gets as secrets: cluster_key, hub_ca_cert."
  type = object({
    cluster_key = string
    hub_ca_cert = string
  })
}

variable "parameter_arns" {
  description = "Every SSM parameter the task execution role may read."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key of the parameters and images."
  type        = string
}

variable "apps" {
  description = "Apps: id, key and the SSM parameter of the secret (the health check probes the first app's key)."
  type = list(object({
    id               = string
    key              = string
    secret_parameter = string
  }))
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
