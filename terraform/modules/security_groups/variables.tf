variable "name" {
  description = "Name prefix of every security group."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "client_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB on 443 (and 80, which only redirects)."
  type        = list(string)
}

variable "laravel_cidrs" {
  description = "IPv4 CIDRs of the Laravel servers allowed to call the hubs' HTTP API directly on 8081."
  type        = list(string)
}

variable "enable_hub_nlb" {
  description = "Whether edges reach the hubs through an internal NLB (which then gets its own group)."
  type        = bool
}

variable "tags" {
  description = "Tags for every group."
  type        = map(string)
}
