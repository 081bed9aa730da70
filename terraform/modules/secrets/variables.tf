variable "name" {
  description = "Name of the deployment: SSM parameters live under /<name>/."
  type        = string
}

variable "apps" {
  description = "The Pusher apps (id and key); a secret is generated for each."
  type = list(object({
    id  = string
    key = string
  }))
}

variable "redis_auth_token" {
  description = "Redis AUTH token to use instead of a generated one (16-128 of A-Z a-z 0-9 ! & # $ ^ < > -)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.redis_auth_token == null || can(regex("^[A-Za-z0-9!&#$^<>-]{16,128}$", var.redis_auth_token))
    error_message = "redis_auth_token must be 16-128 characters of A-Z a-z 0-9 ! & # $ ^ < > - (ElastiCache's rule)."
  }
}

variable "hub_server_name" {
  description = "The DNS name in the hub certificate, which edges verify."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
