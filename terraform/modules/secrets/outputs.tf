output "kms_key_arn" {
  description = "The deployment's KMS key."
  value       = aws_kms_key.this.arn
}

output "redis_auth_token" {
  description = "The Redis AUTH token."
  value       = aws_ssm_parameter.redis_auth_token.value
  sensitive   = true
}

output "parameter_names" {
  description = "Names of the SSM parameters, for user data."
  value = {
    cluster_key      = aws_ssm_parameter.cluster_key.name
    hub_ca_cert      = aws_ssm_parameter.hub_ca_cert.name
    hub_tls_cert     = aws_ssm_parameter.hub_tls_cert.name
    hub_tls_key      = aws_ssm_parameter.hub_tls_key.name
    redis_auth_token = aws_ssm_parameter.redis_auth_token.name
  }
}

output "app_secret_parameter_names" {
  description = "SSM parameter name of each app's secret, by app id."
  value       = { for id, parameter in aws_ssm_parameter.app_secret : id => parameter.name }
}

output "edge_parameter_arns" {
  description = "The parameters an edge reads: cluster key, app secrets, hub CA."
  value = concat(
    [aws_ssm_parameter.cluster_key.arn, aws_ssm_parameter.hub_ca_cert.arn],
    [for parameter in aws_ssm_parameter.app_secret : parameter.arn],
  )
}

output "hub_parameter_arns" {
  description = "The parameters a hub reads: cluster key, app secrets, hub certificate and key, Redis token."
  value = concat(
    [
      aws_ssm_parameter.cluster_key.arn,
      aws_ssm_parameter.hub_tls_cert.arn,
      aws_ssm_parameter.hub_tls_key.arn,
      aws_ssm_parameter.redis_auth_token.arn,
    ],
    [for parameter in aws_ssm_parameter.app_secret : parameter.arn],
  )
}
