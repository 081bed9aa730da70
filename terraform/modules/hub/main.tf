# Hubs: a fixed set of instances with stable private names (hub-N.<internal zone>) that edges
# list in their config, registered in the ALB's /apps/* target group. Edges reach them over
# QUIC (UDP 4433) directly, or through an optional internal NLB.
#
# Hubs are not in an Auto Scaling group: edges address them by name and prefer the hub in their
# own zone, so each hub keeps its identity. A changed launch template replaces a hub (create
# before destroy); replace them one at a time, e.g. `terraform apply -target=module.hub.aws_instance.hub[0]`,
# and edges move to the other hubs meanwhile (R-HA-2).

module "user_data" {
  source = "../user_data"

  role                       = "hub"
  region                     = var.region
  herald_artifact_url        = var.herald_artifact_url
  herald_artifact_sha256     = var.herald_artifact_sha256
  parameters                 = var.parameters
  apps                       = var.apps
  redis_replication_group_id = var.redis_replication_group_id
}

module "launch_template" {
  source = "../launch_template"

  role                  = "hub"
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
  from = aws_launch_template.hub
  to   = module.launch_template.aws_launch_template.this
}

resource "aws_instance" "hub" {
  count = var.hub_count

  subnet_id            = var.private_subnet_ids[count.index % length(var.private_subnet_ids)]
  iam_instance_profile = var.instance_profile_name
  ebs_optimized        = true
  monitoring           = true

  launch_template {
    id      = module.launch_template.id
    version = module.launch_template.latest_version
  }

  # Repeated from the launch template so that the instance itself states it (and scanners see it).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
    encrypted   = true
  }

  tags = merge(module.launch_template.instance_tags, { Name = "${var.name}-hub-${count.index + 1}" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_target_group_attachment" "api" {
  count = var.hub_count

  target_group_arn = var.hub_target_group_arn
  target_id        = aws_instance.hub[count.index].id
  port             = 8081
}

# --- names edges use -------------------------------------------------------------------------

resource "aws_route53_zone" "internal" {
  name    = var.internal_zone_name
  comment = "Herald ${var.name}: hub names for edges"

  vpc {
    vpc_id = var.vpc_id
  }

  tags = var.tags
}

resource "aws_route53_record" "hub" {
  count = var.hub_count

  zone_id = aws_route53_zone.internal.zone_id
  name    = "hub-${count.index + 1}.${var.internal_zone_name}"
  type    = "A"
  ttl     = 30
  records = [aws_instance.hub[count.index].private_ip]
}

# --- optional internal NLB for QUIC ------------------------------------------------------------
# UDP flows idle for 120 s are forgotten by the NLB (fixed), after which packets may reach
# another hub: Herald's QUIC keep-alive must stay well under that (it uses 15-30 s). Cross-zone
# stays off, so an edge's flow goes to a hub in its own zone while that zone has a healthy one.

resource "aws_lb" "quic" {
  #checkov:skip=CKV_AWS_152:cross-zone stays off on purpose: an edge's QUIC flow goes to a hub in its own zone
  #checkov:skip=CKV_AWS_91:NLB access logs exist only for TLS listeners; this NLB forwards UDP
  count = var.enable_nlb ? 1 : 0

  name               = "${var.name}-hub-quic"
  load_balancer_type = "network"
  internal           = true
  subnets            = var.private_subnet_ids
  security_groups    = [var.nlb_security_group_id]

  enable_cross_zone_load_balancing = false
  enable_deletion_protection       = true

  tags = var.tags
}

resource "aws_lb_target_group" "quic" {
  count = var.enable_nlb ? 1 : 0

  name        = "${var.name}-hub-quic"
  vpc_id      = var.vpc_id
  target_type = "instance"
  port        = 4433
  protocol    = "UDP"

  deregistration_delay   = 30
  connection_termination = true

  # UDP cannot be health-checked; the hub's /up (503 when its Redis subscription is down) can.
  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "8081"
    path                = "/up"
    matcher             = "200-399"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "quic" {
  count = var.enable_nlb ? 1 : 0

  load_balancer_arn = aws_lb.quic[0].arn
  port              = 4433
  protocol          = "UDP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.quic[0].arn
  }

  tags = var.tags
}

resource "aws_lb_target_group_attachment" "quic" {
  count = var.enable_nlb ? var.hub_count : 0

  target_group_arn = aws_lb_target_group.quic[0].arn
  target_id        = aws_instance.hub[count.index].id
  port             = 4433
}
