output "id" {
  description = "The launch template."
  value       = aws_launch_template.this.id
}

output "latest_version" {
  description = "Its latest version: what the Auto Scaling group or the instances launch from."
  value       = aws_launch_template.this.latest_version
}

output "instance_tags" {
  description = "The tags instances get (Name and herald:role over the common tags), for callers that tag instances themselves."
  value       = local.instance_tags
}
