variable "name" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_id" {
  description = "The VPC (for the private DNS zone and the optional NLB)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets; hub i goes to subnet i modulo their number."
  type        = list(string)
}

variable "ami_id" {
  description = "AMI (Amazon Linux 2023) for the hubs."
  type        = string
}

variable "instance_type" {
  description = "Instance type of the hubs."
  type        = string
}

variable "hub_count" {
  description = "Number of hubs (at least 2, one per zone ideally)."
  type        = number

  validation {
    condition     = var.hub_count >= 2 && var.hub_count <= 16
    error_message = "hub_count must be 2-16: edges need a second hub to fail over to."
  }
}

variable "security_group_id" {
  description = "Security group of the hubs."
  type        = string
}

variable "instance_profile_name" {
  description = "Instance profile of the hubs."
  type        = string
}

variable "hub_target_group_arn" {
  description = "The ALB target group for the Pusher HTTP API."
  type        = string
}

variable "internal_zone_name" {
  description = "Private Route 53 zone for the hubs' names (hub-1.<zone>, …)."
  type        = string
}

variable "enable_nlb" {
  description = "Put an internal NLB (UDP 4433) in front of the hubs and give edges its name instead of the hubs'."
  type        = bool
}

variable "nlb_security_group_id" {
  description = "Security group of the internal NLB (when enable_nlb)."
  type        = string
  default     = null
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
  description = "SSM parameter names (cluster_key, hub_tls_cert, hub_tls_key, redis_auth_token)."
  type = object({
    cluster_key      = string
    hub_tls_cert     = string
    hub_tls_key      = string
    redis_auth_token = string
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

variable "redis_replication_group_id" {
  description = "The ElastiCache replication group hubs discover."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
