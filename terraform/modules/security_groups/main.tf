# Every security group of the deployment and every rule between them, in one module: the groups
# reference each other (ALB -> edge -> hub -> Redis), which across modules would be a cycle.
#
# Ports (fixed by the herald binary): edge WebSocket 8080/tcp, edge admin (/up, /metrics)
# 9080/tcp, hub HTTP API and /up 8081/tcp, edge->hub link (QUIC) 4433/udp, Redis 6379/tcp.
# Egress to 443/tcp anywhere is for AWS APIs (SSM, S3, CloudWatch, Auto Scaling, ElastiCache)
# and the OS package mirrors; the VPC DNS resolver and instance metadata are not filtered by
# security groups.

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:false positive: attached in other modules (ALB, launch templates, ElastiCache, NLB)
  name_prefix = "${var.name}-alb-"
  description = "Herald ALB: HTTPS from clients, to edges and hubs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "edge" {
  #checkov:skip=CKV2_AWS_5:false positive: attached in other modules (ALB, launch templates, ElastiCache, NLB)
  name_prefix = "${var.name}-edge-"
  description = "Herald edges: WebSocket and admin from the ALB, QUIC to hubs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-edge" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "hub" {
  #checkov:skip=CKV2_AWS_5:false positive: attached in other modules (ALB, launch templates, ElastiCache, NLB)
  name_prefix = "${var.name}-hub-"
  description = "Herald hubs: QUIC from edges, HTTP API from the ALB and Laravel"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-hub" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "redis" {
  #checkov:skip=CKV2_AWS_5:false positive: attached in other modules (ALB, launch templates, ElastiCache, NLB)
  name_prefix = "${var.name}-redis-"
  description = "Herald Redis: 6379 from hubs only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "nlb" {
  #checkov:skip=CKV2_AWS_5:false positive: attached in other modules (ALB, launch templates, ElastiCache, NLB)
  count = var.enable_hub_nlb ? 1 : 0

  name_prefix = "${var.name}-hub-nlb-"
  description = "Herald internal NLB: QUIC from edges to hubs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-hub-nlb" })

  lifecycle {
    create_before_destroy = true
  }
}

# --- ALB ---------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.client_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS and WSS from clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  #checkov:skip=CKV_AWS_260:port 80 only answers with a 301 redirect to HTTPS (modules/alb)
  for_each = toset(var.client_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from clients, answered with a redirect to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_edge_websocket" {
  security_group_id            = aws_security_group.alb.id
  description                  = "WebSocket traffic to edges"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_edge_admin" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Health checks (/up) to edges"
  ip_protocol                  = "tcp"
  from_port                    = 9080
  to_port                      = 9080
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_hub_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Pusher HTTP API and health checks to hubs"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.hub.id
}

# --- edges -------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "edge_websocket_from_alb" {
  security_group_id            = aws_security_group.edge.id
  description                  = "WebSocket traffic from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "edge_admin_from_alb" {
  security_group_id            = aws_security_group.edge.id
  description                  = "Health checks (/up) from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = 9080
  to_port                      = 9080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "edge_to_hub_quic" {
  security_group_id            = aws_security_group.edge.id
  description                  = "QUIC link to hubs"
  ip_protocol                  = "udp"
  from_port                    = 4433
  to_port                      = 4433
  referenced_security_group_id = var.enable_hub_nlb ? aws_security_group.nlb[0].id : aws_security_group.hub.id
}

resource "aws_vpc_security_group_egress_rule" "edge_https" {
  security_group_id = aws_security_group.edge.id
  description       = "AWS APIs (SSM, S3, CloudWatch, Auto Scaling) and package mirrors"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- hubs --------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "hub_api_from_alb" {
  security_group_id            = aws_security_group.hub.id
  description                  = "Pusher HTTP API and health checks from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "hub_api_from_laravel" {
  for_each = toset(var.laravel_cidrs)

  security_group_id = aws_security_group.hub.id
  description       = "Pusher HTTP API from the Laravel servers"
  ip_protocol       = "tcp"
  from_port         = 8081
  to_port           = 8081
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "hub_quic_from_edge" {
  security_group_id            = aws_security_group.hub.id
  description                  = "QUIC link from edges"
  ip_protocol                  = "udp"
  from_port                    = 4433
  to_port                      = 4433
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_egress_rule" "hub_to_redis" {
  security_group_id            = aws_security_group.hub.id
  description                  = "Redis (TLS) to ElastiCache"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_vpc_security_group_egress_rule" "hub_https" {
  security_group_id = aws_security_group.hub.id
  description       = "AWS APIs (SSM, S3, ElastiCache) and package mirrors"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- internal NLB (optional) -------------------------------------------------------------------
# The NLB gets its group at creation (it cannot be added later); hubs admit QUIC and health checks
# from that group. UDP through an NLB always preserves the client (edge) address.

resource "aws_vpc_security_group_ingress_rule" "nlb_quic_from_edge" {
  count = var.enable_hub_nlb ? 1 : 0

  security_group_id            = aws_security_group.nlb[0].id
  description                  = "QUIC link from edges"
  ip_protocol                  = "udp"
  from_port                    = 4433
  to_port                      = 4433
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_hub_quic" {
  count = var.enable_hub_nlb ? 1 : 0

  security_group_id            = aws_security_group.nlb[0].id
  description                  = "QUIC link to hubs"
  ip_protocol                  = "udp"
  from_port                    = 4433
  to_port                      = 4433
  referenced_security_group_id = aws_security_group.hub.id
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_hub_health" {
  count = var.enable_hub_nlb ? 1 : 0

  security_group_id            = aws_security_group.nlb[0].id
  description                  = "Health checks (/up) to hubs"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.hub.id
}

resource "aws_vpc_security_group_ingress_rule" "hub_quic_from_nlb" {
  count = var.enable_hub_nlb ? 1 : 0

  security_group_id            = aws_security_group.hub.id
  description                  = "QUIC link from edges through the internal NLB"
  ip_protocol                  = "udp"
  from_port                    = 4433
  to_port                      = 4433
  referenced_security_group_id = aws_security_group.nlb[0].id
}

resource "aws_vpc_security_group_ingress_rule" "hub_health_from_nlb" {
  count = var.enable_hub_nlb ? 1 : 0

  security_group_id            = aws_security_group.hub.id
  description                  = "Health checks (/up) from the internal NLB"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.nlb[0].id
}

# --- Redis -------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "redis_from_hub" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from hubs"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.hub.id
}

# --- metrics scrapers ----------------------------------------------------------------------------
# Attach this group to a Prometheus server in the VPC, or give it to an Amazon Managed Service for
# Prometheus scraper (its securityGroupIds), to scrape /metrics: edges on the admin port 9080,
# hubs on 8081 (docs/deploy.md has the scrape configuration).

resource "aws_security_group" "metrics_scraper" {
  #checkov:skip=CKV2_AWS_5:attached by the operator to their Prometheus or managed scraper
  name_prefix = "${var.name}-metrics-scraper-"
  description = "Prometheus scrapers of Herald: /metrics on edges and hubs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-metrics-scraper" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "metrics_scraper_to_edge_admin" {
  security_group_id            = aws_security_group.metrics_scraper.id
  description                  = "Scrape /metrics on the edges' admin port"
  ip_protocol                  = "tcp"
  from_port                    = 9080
  to_port                      = 9080
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_egress_rule" "metrics_scraper_to_hub_api" {
  security_group_id            = aws_security_group.metrics_scraper.id
  description                  = "Scrape /metrics on the hubs' HTTP port"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.hub.id
}

resource "aws_vpc_security_group_ingress_rule" "edge_admin_from_metrics_scraper" {
  security_group_id            = aws_security_group.edge.id
  description                  = "/metrics from Prometheus scrapers"
  ip_protocol                  = "tcp"
  from_port                    = 9080
  to_port                      = 9080
  referenced_security_group_id = aws_security_group.metrics_scraper.id
}

resource "aws_vpc_security_group_ingress_rule" "hub_api_from_metrics_scraper" {
  security_group_id            = aws_security_group.hub.id
  description                  = "/metrics from Prometheus scrapers"
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
  referenced_security_group_id = aws_security_group.metrics_scraper.id
}
