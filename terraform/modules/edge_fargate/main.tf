# Edges on Fargate: no instances to patch. An ECS service of edge tasks spread over at least two
# zones in the private subnets, registered by IP in the ALB's /app/* target group (the same
# stickiness, idle timeout and /up health check as EC2 edges), rolled with the deployment
# circuit breaker, scaled on open connections per task. Hubs stay on EC2 (stable names).
#
# Timing, all literals checked by tests/tests/black_box/terraform_invariants.rs and the checkov
# policies (terraform/policies/ecs_edge*.yaml):
#   HERALD_EDGE__DRAIN_TIMEOUT_SECS (25)  <  deregistration_delay (30, modules/alb)
#   HERALD_EDGE__DRAIN_TIMEOUT_SECS (25)  <  stopTimeout (40): ECS sends SIGTERM, herald drains
#                                            (/up 503, 4200 to every client), then exits before
#                                            the SIGKILL
#   nofile 65535: one file descriptor per WebSocket (Fargate's default soft limit is 1024)

data "aws_partition" "current" {}

locals {
  partition     = data.aws_partition.current.partition
  container     = "edge"
  log_group     = "/herald/${var.name}/edge"
  ssm_service   = "ssm.${var.region}.amazonaws.com"
  ecr_service   = "ecr.${var.region}.amazonaws.com"
  image         = "${var.repository_url}:${var.image_tag}"
  service_name  = "${var.name}-edge"
  probe_app_key = var.apps[0].key
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name}-edges"

  # RunningTaskCount per service (the scaling metric's denominator) comes from Container Insights.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "edge" {
  #checkov:skip=CKV_AWS_158:edge logs carry no secrets (herald never logs keys or tokens); encrypted at rest by CloudWatch Logs
  name              = local.log_group
  retention_in_days = 365
  tags              = var.tags
}

# --- roles ------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# What ECS itself needs to start a task: pull the image, write its logs, read its secrets.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-edge-task-execution"
  description        = "ECS starting Herald edge tasks"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "AuthenticateToEcr"
    #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource-level permissions
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullHerald"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.repository_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.edge.arn}:*"]
  }

  statement {
    sid       = "ReadOwnParameters"
    actions   = ["ssm:GetParameters"]
    resources = var.parameter_arns
  }

  statement {
    sid       = "DecryptParametersAndImages"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.ssm_service, local.ecr_service]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "herald-edge-task-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The edge process needs no AWS API: its task role has no permissions.
resource "aws_iam_role" "task" {
  name               = "${var.name}-edge-task"
  description        = "Herald edge tasks (no permissions)"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# --- task definition --------------------------------------------------------------------------

resource "aws_ecs_task_definition" "edge" {
  family                   = "${var.name}-edge"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = local.container
      image                  = local.image
      essential              = true
      command                = ["edge"]
      user                   = "10001:10001"
      readonlyRootFilesystem = true

      portMappings = [
        { containerPort = 8080, protocol = "tcp", name = "websocket" },
        { containerPort = 9080, protocol = "tcp", name = "admin" },
      ]

      environment = [
        { name = "HERALD_EDGE__LISTEN", value = "0.0.0.0:8080" },
        { name = "HERALD_EDGE__ADMIN_LISTEN", value = "0.0.0.0:9080" },
        { name = "HERALD_EDGE__HUBS", value = join(",", var.hubs) },
        { name = "HERALD_EDGE__HUB_SERVER_NAME", value = var.hub_server_name },
        { name = "HERALD_EDGE__DRAIN_TIMEOUT_SECS", value = "25" },
        { name = "HERALD_LOG", value = "info" },
      ]

      # Read from SSM Parameter Store by ECS at start; never in the task definition.
      secrets = [
        { name = "HERALD_CLUSTER__KEY", valueFrom = var.parameters.cluster_key },
        { name = "HERALD_EDGE__HUB_CA", valueFrom = var.parameters.hub_ca_cert },
      ]

      # One file descriptor per WebSocket: Fargate's default soft limit (1024) would cap an
      # edge at about a thousand clients.
      ulimits = [
        { name = "nofile", softLimit = 65535, hardLimit = 65535 },
      ]

      # SIGTERM (the image's STOPSIGNAL), then this many seconds before SIGKILL: longer than
      # the drain (25 s), in which the edge answers /up with 503 and sends every client 4200.
      stopTimeout = 40

      # A real WebSocket upgrade and pusher:connection_established (no shell in the image).
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/herald", "probe", "ws://127.0.0.1:8080", "--app-key", local.probe_app_key, "--timeout", "3"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.log_group
          awslogs-region        = var.region
          awslogs-stream-prefix = "edge"
        }
      }
    }
  ])

  tags = var.tags
}

# --- service ----------------------------------------------------------------------------------

resource "aws_ecs_service" "edge" {
  name                               = local.service_name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.edge.arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = var.min_count
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  wait_for_steady_state              = false

  # Private subnets in at least two zones (validated below); ECS spreads tasks over zones.
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  # The ALB's /app/* target group, target type ip: the same one EC2 edges would use.
  load_balancer {
    target_group_arn = var.edge_target_group_arn
    container_name   = local.container
    container_port   = 8080
  }

  # A release whose tasks never turn healthy stops and rolls back by itself.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    # Autoscaling owns the count.
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

# --- scaling on connections per task ----------------------------------------------------------

resource "aws_appautoscaling_target" "edge" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.edge.name}"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

# Open WebSockets per task: the ALB's ActiveConnectionCount counts each WebSocket twice (client
# to ALB, ALB to task), divided by the service's running tasks. Scale-in is slow (each removed
# task sends its clients a reconnect): 10 minutes between steps.
resource "aws_appautoscaling_policy" "connections" {
  name               = "herald-edge-connections"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.edge.service_namespace
  scalable_dimension = aws_appautoscaling_target.edge.scalable_dimension
  resource_id        = aws_appautoscaling_target.edge.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.target_connections_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 600

    customized_metric_specification {
      metrics {
        id          = "connections"
        label       = "WebSockets per edge task"
        expression  = "alb_connections / 2 / IF(tasks > 0, tasks, 1)"
        return_data = true
      }

      metrics {
        id          = "alb_connections"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/ApplicationELB"
            metric_name = "ActiveConnectionCount"

            dimensions {
              name  = "LoadBalancer"
              value = var.alb_arn_suffix
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.edge.name
            }
          }
        }
      }
    }
  }
}
