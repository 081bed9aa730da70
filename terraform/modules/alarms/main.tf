# CloudWatch alarms: unhealthy targets, 5xx, Redis CPU/memory/replication lag, and edge
# connections nearing capacity. Everything notifies one SNS topic.

locals {
  create_topic = var.alarm_topic_arn == null
  topic_arn    = local.create_topic ? aws_sns_topic.alarms[0].arn : var.alarm_topic_arn
  actions      = [local.topic_arn]
  redis_nodes  = toset(var.redis_member_ids)
  target_groups = {
    edge = var.edge_target_group_arn_suffix
    hub  = var.hub_target_group_arn_suffix
  }
}

resource "aws_sns_topic" "alarms" {
  count = local.create_topic ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  for_each = local.target_groups

  alarm_name          = "${var.name}-${each.key}-unhealthy-hosts"
  alarm_description   = "A Herald ${each.key} fails its /up health check (draining, no hub link, or Redis down)"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = each.value
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name}-alb-5xx"
  alarm_description   = "The ALB itself answers 5xx (no healthy target, timeouts)"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "target_5xx" {
  for_each = local.target_groups

  alarm_name          = "${var.name}-${each.key}-5xx"
  alarm_description   = "Herald ${each.key}s answer 5xx (for the HTTP API: triggers Laravel retries)"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = each.value
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "redis_cpu" {
  for_each = local.redis_nodes

  alarm_name          = "${var.name}-redis-cpu-${each.key}"
  alarm_description   = "Redis engine CPU (single-threaded) is high on ${each.key}"
  namespace           = "AWS/ElastiCache"
  metric_name         = "EngineCPUUtilization"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 70
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    CacheClusterId = each.key
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  for_each = local.redis_nodes

  alarm_name          = "${var.name}-redis-memory-${each.key}"
  alarm_description   = "Redis memory is filling on ${each.key} (noeviction: writes fail when full)"
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    CacheClusterId = each.key
  }

  tags = var.tags
}

# Only replicas report ReplicationLag; the primary's missing data is not a breach.
resource "aws_cloudwatch_metric_alarm" "redis_replication_lag" {
  for_each = local.redis_nodes

  alarm_name          = "${var.name}-redis-replication-lag-${each.key}"
  alarm_description   = "Replica ${each.key} lags the primary: a failover now would lose writes"
  namespace           = "AWS/ElastiCache"
  metric_name         = "ReplicationLag"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    CacheClusterId = each.key
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "edge_connections" {
  # EdgeConnections is published by EC2 edges (per Auto Scaling group); Fargate edges scale on
  # the ALB's connection count instead (modules/edge_fargate).
  count = var.edge_asg_name == null ? 0 : 1

  alarm_name          = "${var.name}-edge-connections-over-target"
  alarm_description   = "Edges hold 25% more connections than their target for 10 minutes: scaling cannot keep up (max_size reached?)"
  namespace           = var.metrics_namespace
  metric_name         = "EdgeConnections"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  comparison_operator = "GreaterThanThreshold"
  threshold           = floor(var.edge_target_connections_per_instance * 1.25)
  treat_missing_data  = "missing"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    AutoScalingGroupName = var.edge_asg_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "edge_connections_missing" {
  # EdgeConnections is published by EC2 edges (per Auto Scaling group); Fargate edges scale on
  # the ALB's connection count instead (modules/edge_fargate).
  count = var.edge_asg_name == null ? 0 : 1

  alarm_name          = "${var.name}-edge-connections-missing"
  alarm_description   = "No edge has published EdgeConnections for 10 minutes: scaling is blind"
  namespace           = var.metrics_namespace
  metric_name         = "EdgeConnections"
  statistic           = "SampleCount"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions

  dimensions = {
    AutoScalingGroupName = var.edge_asg_name
  }

  tags = var.tags
}

# These alarms existed before Fargate edges made them conditional.
moved {
  from = aws_cloudwatch_metric_alarm.edge_connections
  to   = aws_cloudwatch_metric_alarm.edge_connections[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.edge_connections_missing
  to   = aws_cloudwatch_metric_alarm.edge_connections_missing[0]
}
