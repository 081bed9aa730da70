output "alb_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "edge_id" {
  description = "Security group of the edges."
  value       = aws_security_group.edge.id
}

output "hub_id" {
  description = "Security group of the hubs."
  value       = aws_security_group.hub.id
}

output "redis_id" {
  description = "Security group of the ElastiCache replication group."
  value       = aws_security_group.redis.id
}

output "nlb_id" {
  description = "Security group of the internal NLB, or null without one."
  value       = var.enable_hub_nlb ? aws_security_group.nlb[0].id : null
}

output "metrics_scraper_id" {
  description = "Security group to attach to a Prometheus server or managed scraper that scrapes /metrics."
  value       = aws_security_group.metrics_scraper.id
}
