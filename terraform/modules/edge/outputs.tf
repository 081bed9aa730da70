output "asg_name" {
  description = "The edge Auto Scaling group."
  value       = aws_autoscaling_group.edge.name
}

output "launch_template_id" {
  description = "The edge launch template."
  value       = module.launch_template.id
}

output "lifecycle_hook_name" {
  description = "The termination lifecycle hook edges complete after draining."
  value       = local.lifecycle_hook_name
}
