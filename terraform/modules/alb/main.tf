# The public entry point: one ALB terminating TLS for both clients (wss://…/app/{key}) and the
# Laravel broadcaster (https://…/apps/{id}/…), routing by path to edges and hubs.
#
# The literals below are product invariants, checked offline by tests/tests/terraform_invariants.rs
# and the checkov policies in terraform/policies; change them only together with those checks.

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:a WAF web ACL is the operator's choice (attach one to this ALB); it does not inspect WebSocket frames after the upgrade
  name               = "${var.name}-alb"
  load_balancer_type = "application"
  internal           = false
  subnets            = var.public_subnet_ids
  security_groups    = [var.security_group_id]

  # WebSockets stay open for hours; the ALB closes a connection idle this long (default 60 s).
  # Herald's own heartbeat (activity_timeout 120 s) keeps live sockets well inside it.
  idle_timeout = 3600
  # Cap on one client connection's total life (seconds, max 7 days): set high so it never cuts
  # a WebSocket before the client's own reconnect logic would.
  client_keep_alive          = 604800
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  enable_deletion_protection = var.deletion_protection
  enable_http2               = true

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]

    content {
      bucket  = access_logs.value
      prefix  = var.name
      enabled = true
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = "Not found"
      status_code  = "404"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}

# Edges: WebSocket port 8080, health on the admin port 9080 (`/up`: 200 when serving, 503 when
# draining or without a hub link). The WebSocket port never answers health checks: ALB health
# checks cannot speak WebSocket. One group for both edge platforms, so EC2 instances and Fargate
# tasks get the same stickiness, draining and health check; only how targets are registered
# differs (Fargate tasks in awsvpc mode register by IP). Switching platforms replaces the group
# (a new name, created before the old one goes).
resource "aws_lb_target_group" "edge" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; ALB to edge is plain HTTP inside private subnets, restricted by security groups
  name        = var.edge_platform == "fargate" ? "${var.name}-edge-ip" : "${var.name}-edge"
  vpc_id      = var.vpc_id
  target_type = var.edge_platform == "fargate" ? "ip" : "instance"
  port        = 8080
  protocol    = "HTTP"

  # At least the edge drain timeout (25 s, modules/edge): a draining edge sheds its sockets with
  # 4200 within that window, and the ALB keeps the target until they are gone.
  deregistration_delay = 30

  # Pins the HTTP requests of a client (reconnect handshakes carrying AWSALB) to one edge; an
  # upgraded WebSocket is sticky by nature. Requires cross-zone load balancing, which is left on.
  stickiness {
    enabled         = true
    type            = "lb_cookie"
    cookie_duration = 86400
  }

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "9080"
    path                = "/up"
    matcher             = "200,204"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  lifecycle {
    create_before_destroy = true
  }

  tags = var.tags
}

# Hubs: Pusher HTTP API and `/up` on 8081.
resource "aws_lb_target_group" "hub" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; ALB to hub is plain HTTP inside private subnets, restricted by security groups
  name        = "${var.name}-hub"
  vpc_id      = var.vpc_id
  target_type = "instance"
  port        = 8081
  protocol    = "HTTP"

  deregistration_delay = 30

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = "/up"
    matcher             = "200,204"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

# /app/{key} (WebSocket) -> edges. "/app/*" does not match "/apps/…".
resource "aws_lb_listener_rule" "edge_websocket" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }

  condition {
    path_pattern {
      values = ["/app/*"]
    }
  }

  tags = var.tags
}

# /apps/{id}/… (Pusher HTTP API, called by Laravel) -> hubs.
resource "aws_lb_listener_rule" "hub_api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.hub.arn
  }

  condition {
    path_pattern {
      values = ["/apps/*"]
    }
  }

  tags = var.tags
}
