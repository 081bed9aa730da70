output "alb_dns_name" {
  description = "DNS name of the ALB: point your WebSocket host (CNAME or Route 53 alias) at it."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone id of the ALB, for an alias record."
  value       = module.alb.zone_id
}

output "websocket_urls" {
  description = "WebSocket URL of each app through the ALB (use your own host name if the certificate names one)."
  value       = { for app in var.apps : app.id => "wss://${module.alb.dns_name}/app/${app.key}?protocol=7" }
}

output "api_base_url" {
  description = "Base URL of the Pusher HTTP API (Laravel's broadcaster): POST /apps/{id}/events."
  value       = "https://${module.alb.dns_name}"
}

output "app_secret_parameters" {
  description = "SSM parameter holding each app's secret: aws ssm get-parameter --with-decryption --name …"
  value       = module.secrets.app_secret_parameter_names
}

output "laravel_env" {
  description = "Lines for the Laravel app's .env (first app; fill the secret from app_secret_parameters)."
  value = join("\n", [
    "BROADCAST_CONNECTION=reverb",
    "REVERB_APP_ID=${var.apps[0].id}",
    "REVERB_APP_KEY=${var.apps[0].key}",
    "REVERB_APP_SECRET=<aws ssm get-parameter --with-decryption --name ${module.secrets.app_secret_parameter_names[var.apps[0].id]}>",
    "REVERB_HOST=${module.alb.dns_name}",
    "REVERB_PORT=443",
    "REVERB_SCHEME=https",
    "VITE_REVERB_APP_KEY=\"$${REVERB_APP_KEY}\"",
    "VITE_REVERB_HOST=\"$${REVERB_HOST}\"",
    "VITE_REVERB_PORT=\"$${REVERB_PORT}\"",
    "VITE_REVERB_SCHEME=\"$${REVERB_SCHEME}\"",
  ])
}

output "redis_replication_group_id" {
  description = "The ElastiCache replication group (`herald redis-endpoint --replication-group …`)."
  value       = module.redis.replication_group_id
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of Redis (TLS, AUTH); null with redis_cluster_mode = \"enabled\"."
  value       = module.redis.primary_endpoint_address
}

output "redis_reader_endpoint" {
  description = "Reader endpoint of Redis; null with redis_cluster_mode = \"enabled\"."
  value       = module.redis.reader_endpoint_address
}

output "redis_configuration_endpoint" {
  description = "Configuration endpoint of the Redis Cluster (TLS, AUTH); null with redis_cluster_mode = \"disabled\"."
  value       = module.redis.configuration_endpoint_address
}

output "hub_link_endpoints" {
  description = "What edges connect to over QUIC."
  value       = module.hub.link_endpoints
}

output "edge_asg_name" {
  description = "The edge Auto Scaling group (start an instance refresh here after a new release); null on Fargate."
  value       = one(module.edge[*].asg_name)
}

output "ecr_repository_url" {
  description = "Where to push the Herald image (scripts/build-image.sh) for Fargate edges."
  value       = module.ecr.repository_url
}

output "edge_ecs_cluster_name" {
  description = "The ECS cluster of the edge tasks; null on EC2."
  value       = one(module.edge_fargate[*].cluster_name)
}

output "edge_ecs_service_name" {
  description = "The ECS service of the edge tasks (a new edge_image_tag rolls it); null on EC2."
  value       = one(module.edge_fargate[*].service_name)
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify: subscribe your on-call to it."
  value       = module.alarms.topic_arn
}

output "metrics_scraper_security_group_id" {
  description = "Attach to the Prometheus server or Amazon Managed Prometheus scraper that scrapes /metrics (edges :9080, hubs :8081)."
  value       = module.security_groups.metrics_scraper_id
}
