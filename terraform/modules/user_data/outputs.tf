output "rendered" {
  description = "The boot script (bash), as EC2 user data before base64."
  value       = local.rendered

  precondition {
    condition     = length(local.role_errors) == 0
    error_message = "user_data for ${var.role}: ${join("; ", local.role_errors)}."
  }

  precondition {
    # EC2 limits user data to 16 KB before base64 encoding.
    condition     = length(local.rendered) < 16384
    error_message = "the rendered user data is ${length(local.rendered)} bytes; EC2 allows 16384."
  }
}

output "rendered_base64" {
  description = "The boot script, base64-encoded for aws_launch_template.user_data."
  value       = base64encode(local.rendered)

  precondition {
    condition     = length(local.role_errors) == 0
    error_message = "user_data for ${var.role}: ${join("; ", local.role_errors)}."
  }
}

output "unit" {
  description = "The systemd unit installed as /etc/systemd/system/herald.service."
  value       = local.unit
}

output "timeout_stop_secs" {
  description = "systemd's TimeoutStopSec for the herald unit: the drain timeout plus a margin."
  value       = local.timeout_stop_secs
}
