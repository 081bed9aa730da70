variable "name" {
  description = "Name prefix of the load balancer and its target groups (at most 20 characters)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the ALB, in at least two zones."
  type        = list(string)
}

variable "edge_platform" {
  description = "Where edges run: \"ec2\" (instances, target type instance) or \"fargate\" (tasks, target type ip)."
  type        = string

  validation {
    condition     = contains(["ec2", "fargate"], var.edge_platform)
    error_message = "edge_platform must be \"ec2\" or \"fargate\"."
  }
}

variable "security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs, or null for none."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Whether the ALB is protected from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
