# The launch template edges and hubs share: IMDSv2 only, detailed monitoring, an encrypted gp3
# root volume, and the instance's role in its tags. Only the user data (rendered by
# ../user_data for the role) and the sizing differ between the two.

locals {
  instance_tags = merge(var.tags, { Name = "${var.name}-${var.role}", "herald:role" = var.role })
}

resource "aws_launch_template" "this" {
  name_prefix   = "${var.name}-${var.role}-"
  description   = "Herald ${var.role}"
  image_id      = var.ami_id
  instance_type = var.instance_type
  ebs_optimized = true
  user_data     = var.user_data

  vpc_security_group_ids = [var.security_group_id]

  iam_instance_profile {
    name = var.instance_profile_name
  }

  # IMDSv2 only; one hop: only processes on the host use the metadata (herald, the AWS CLI; on
  # edges the lifecycle watcher reads autoscaling/target-lifecycle-state from it).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = 20
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.instance_tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-${var.role}" })
  }

  tags = var.tags
}
