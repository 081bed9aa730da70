variable "role" {
  description = "Which Herald process the instances run: \"edge\" or \"hub\" (names, description and the herald:role tag)."
  type        = string

  validation {
    condition     = contains(["edge", "hub"], var.role)
    error_message = "role must be \"edge\" or \"hub\"."
  }
}

variable "name" {
  description = "Name prefix."
  type        = string
}

variable "ami_id" {
  description = "AMI (Amazon Linux 2023)."
  type        = string
}

variable "instance_type" {
  description = "Instance type."
  type        = string
}

variable "user_data" {
  description = "Base64 boot script: the rendered_base64 output of ../user_data for the same role (secrets are fetched at boot, never inlined)."
  type        = string
}

variable "security_group_id" {
  description = "Security group of the instances."
  type        = string
}

variable "instance_profile_name" {
  description = "Instance profile of the instances."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
