variable "name" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "asg_name" {
  description = "Name of the edge Auto Scaling group (also in the IAM policy and the metric dimension)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "edges need subnets in at least two zones."
  }
}

variable "ami_id" {
  description = "AMI (Amazon Linux 2023) for the edges."
  type        = string
}

variable "instance_type" {
  description = "Instance type of the edges."
  type        = string
}

variable "min_size" {
  description = "Fewest edges (at least 2: one per zone)."
  type        = number

  validation {
    condition     = var.min_size >= 2
    error_message = "min_size must be at least 2 so that edges span two zones."
  }
}

variable "max_size" {
  description = "Most edges."
  type        = number
}

variable "target_connections_per_instance" {
  description = "Average open WebSockets per edge that scaling aims for (LimitNOFILE is 65535)."
  type        = number

  validation {
    condition     = var.target_connections_per_instance >= 100 && var.target_connections_per_instance <= 60000
    error_message = "target_connections_per_instance must be 100-60000 (one file descriptor per socket, 65535 per process)."
  }
}

variable "security_group_id" {
  description = "Security group of the edges."
  type        = string
}

variable "instance_profile_name" {
  description = "Instance profile of the edges."
  type        = string
}

variable "edge_target_group_arn" {
  description = "The ALB target group for /app/*."
  type        = string
}

variable "hubs" {
  description = "host:port of the hubs' QUIC listeners (or of the internal NLB)."
  type        = list(string)
}

variable "herald_artifact_url" {
  description = "s3:// URL of the herald binary."
  type        = string
}

variable "herald_artifact_sha256" {
  description = "SHA-256 of the herald binary."
  type        = string
}

variable "parameters" {
  description = "SSM parameter names (cluster_key, hub_ca_cert)."
  type = object({
    cluster_key = string
    hub_ca_cert = string
  })
}

variable "apps" {
  description = "Apps: id, key and the SSM parameter of the secret."
  type = list(object({
    id               = string
    key              = string
    secret_parameter = string
  }))
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of EdgeConnections."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
