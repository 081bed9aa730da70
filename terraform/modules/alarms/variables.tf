variable "name" {
  description = "Name prefix of the alarms."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic for alarm notifications; null creates one (subscribe to it)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key for the created topic."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The ALB's CloudWatch dimension."
  type        = string
}

variable "edge_target_group_arn_suffix" {
  description = "The edge target group's CloudWatch dimension."
  type        = string
}

variable "hub_target_group_arn_suffix" {
  description = "The hub target group's CloudWatch dimension."
  type        = string
}

variable "redis_member_ids" {
  description = "Cache node ids of the replication group."
  type        = list(string)
}

variable "edge_asg_name" {
  description = "The edge Auto Scaling group (dimension of EdgeConnections); null when edges run on Fargate."
  type        = string
  default     = null
}

variable "metrics_namespace" {
  description = "Namespace of EdgeConnections."
  type        = string
}

variable "edge_target_connections_per_instance" {
  description = "The connections-per-edge target the scaling policy tracks."
  type        = number
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
