output "dns_name" {
  description = "DNS name of the ALB (point a CNAME/alias at it)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 zone id of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "arn_suffix" {
  description = "The ALB's CloudWatch dimension value."
  value       = aws_lb.this.arn_suffix
}

output "edge_target_group_arn" {
  description = "Target group of the edges."
  value       = aws_lb_target_group.edge.arn
}

output "edge_target_group_arn_suffix" {
  description = "The edge target group's CloudWatch dimension value."
  value       = aws_lb_target_group.edge.arn_suffix
}

output "hub_target_group_arn" {
  description = "Target group of the hubs."
  value       = aws_lb_target_group.hub.arn
}

output "hub_target_group_arn_suffix" {
  description = "The hub target group's CloudWatch dimension value."
  value       = aws_lb_target_group.hub.arn_suffix
}
