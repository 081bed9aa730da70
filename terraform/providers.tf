provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "herald:deployment" = var.name })
  }
}
