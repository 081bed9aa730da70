output "edge_instance_profile_name" {
  description = "Instance profile of the edges."
  value       = aws_iam_instance_profile.this["edge"].name
  # Instances boot with this profile and read SSM at once: its permissions must exist first.
  depends_on = [aws_iam_role_policy.edge]
}

output "hub_instance_profile_name" {
  description = "Instance profile of the hubs."
  value       = aws_iam_instance_profile.this["hub"].name
  # Instances boot with this profile and read SSM at once: its permissions must exist first.
  depends_on = [aws_iam_role_policy.hub]
}

output "edge_role_arn" {
  description = "Role of the edges."
  value       = aws_iam_role.this["edge"].arn
}

output "hub_role_arn" {
  description = "Role of the hubs."
  value       = aws_iam_role.this["hub"].arn
}
