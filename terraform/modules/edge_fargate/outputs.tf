output "cluster_name" {
  description = "The ECS cluster of the edge tasks."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "The ECS service of the edge tasks."
  value       = aws_ecs_service.edge.name
}

output "task_definition_arn" {
  description = "The task definition the service runs."
  value       = aws_ecs_task_definition.edge.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the edge tasks."
  value       = aws_cloudwatch_log_group.edge.name
}
