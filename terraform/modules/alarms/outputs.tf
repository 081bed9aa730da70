output "topic_arn" {
  description = "The SNS topic the alarms notify."
  value       = local.topic_arn
}
