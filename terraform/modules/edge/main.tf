# Edges: a stateless Auto Scaling group over at least two zones behind the ALB's /app/* target
# group, scaled on open WebSockets (not CPU), replaced by rolling instance refresh, and drained
# through a termination lifecycle hook.
#
# Timing, all literals checked by tests/tests/terraform_invariants.rs:
#   drain_timeout_secs (25)  <  deregistration_delay (30, modules/alb)
#   drain_timeout_secs (25)  <  systemd TimeoutStopSec (drain + 15, modules/user_data)
#   deregistration_delay + TimeoutStopSec  <  lifecycle heartbeat_timeout (120)

locals {
  lifecycle_hook_name = "herald-drain"
}

module "user_data" {
  source = "../user_data"

  role                   = "edge"
  region                 = var.region
  herald_artifact_url    = var.herald_artifact_url
  herald_artifact_sha256 = var.herald_artifact_sha256
  parameters             = var.parameters
  apps                   = var.apps
  hubs                   = var.hubs
  hub_server_name        = "herald-hub"
  drain_timeout_secs     = 25
  edge_asg_name          = var.asg_name
  lifecycle_hook_name    = local.lifecycle_hook_name
  metrics_namespace      = var.metrics_namespace
}

module "launch_template" {
  source = "../launch_template"

  role                  = "edge"
  name                  = var.name
  ami_id                = var.ami_id
  instance_type         = var.instance_type
  user_data             = module.user_data.rendered_base64
  security_group_id     = var.security_group_id
  instance_profile_name = var.instance_profile_name
  tags                  = var.tags
}

# The launch template used to be defined here; keep the existing one (and the instances that
# launched from it) instead of replacing it.
moved {
  from = aws_launch_template.edge
  to   = module.launch_template.aws_launch_template.this
}

resource "aws_autoscaling_group" "edge" {
  name                = var.asg_name
  vpc_zone_identifier = var.private_subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  target_group_arns   = [var.edge_target_group_arn]

  # An edge without a hub link answers /up with 503: let the ALB's view decide replacement.
  health_check_type         = "ELB"
  health_check_grace_period = 120
  default_instance_warmup   = 120
  termination_policies      = ["OldestLaunchTemplate", "OldestInstance"]
  enabled_metrics           = ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupTerminatingInstances"]

  launch_template {
    id      = module.launch_template.id
    version = module.launch_template.latest_version
  }

  # Created with the group, so even the first instances drain: Terminating:Wait until the
  # instance's watcher has stopped herald (drain <= 25 s) and completed the hook.
  initial_lifecycle_hook {
    name                 = local.lifecycle_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = 120
  }

  # A new launch template version rolls through the group a few instances at a time; each
  # replaced edge drains, and its clients reconnect to the others.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 90
      max_healthy_percentage = 110
      instance_warmup        = 120
      skip_matching          = true
    }
  }

  # The same tags the launch template gives the instances.
  dynamic "tag" {
    for_each = module.launch_template.instance_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # Scaling policies own the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

# Scale out on open connections per edge (CPU says little about idle WebSockets). Scale-in is
# disabled here and done by the slow policy below.
resource "aws_autoscaling_policy" "connections" {
  name                      = "herald-edge-connections"
  autoscaling_group_name    = aws_autoscaling_group.edge.name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = 120

  target_tracking_configuration {
    target_value     = var.target_connections_per_instance
    disable_scale_in = true

    customized_metric_specification {
      namespace   = var.metrics_namespace
      metric_name = "EdgeConnections"
      statistic   = "Average"
      unit        = "Count"

      metric_dimension {
        name  = "AutoScalingGroupName"
        value = var.asg_name
      }
    }
  }
}

# Slow scale-in: one edge at a time, at most every 10 minutes, after 15 quiet minutes. Every
# removed edge sends its clients a reconnect, so scale-in is kept gentle.
resource "aws_autoscaling_policy" "scale_in" {
  name                   = "herald-edge-scale-in"
  autoscaling_group_name = aws_autoscaling_group.edge.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -1
  cooldown               = 600
}

resource "aws_cloudwatch_metric_alarm" "scale_in" {
  alarm_name          = "${var.name}-edge-scale-in"
  alarm_description   = "Edges are below 40% of their connection target: remove one"
  namespace           = var.metrics_namespace
  metric_name         = "EdgeConnections"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 15
  datapoints_to_alarm = 15
  comparison_operator = "LessThanThreshold"
  threshold           = floor(var.target_connections_per_instance * 0.4)
  treat_missing_data  = "missing"
  alarm_actions       = [aws_autoscaling_policy.scale_in.arn]

  dimensions = {
    AutoScalingGroupName = var.asg_name
  }

  tags = var.tags
}
