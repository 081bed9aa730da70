variable "name" {
  description = "Name prefix of the roles."
  type        = string
}

variable "region" {
  description = "AWS region (for the Auto Scaling group ARN)."
  type        = string
}

variable "herald_artifact_url" {
  description = "s3:// URL of the herald binary instances download at boot."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key the SSM parameters are encrypted with."
  type        = string
}

variable "edge_parameter_arns" {
  description = "SSM parameters edges read."
  type        = list(string)
}

variable "hub_parameter_arns" {
  description = "SSM parameters hubs read."
  type        = list(string)
}

variable "edge_asg_name" {
  description = "Name of the edge Auto Scaling group (edges complete its lifecycle hook)."
  type        = string
}

variable "redis_replication_group_arn" {
  description = "The replication group hubs describe to find the primary."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace edges publish EdgeConnections to."
  type        = string
}

variable "enable_ssm_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore so operators can open shells without SSH."
  type        = bool
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
