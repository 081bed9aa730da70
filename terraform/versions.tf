terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = ">= 4.0"
    }
  }

  # Configure a remote, encrypted backend (the state holds the generated secrets), e.g.:
  # backend "s3" { bucket = "…", key = "herald/terraform.tfstate", region = "…", encrypt = true, use_lockfile = true }
}
