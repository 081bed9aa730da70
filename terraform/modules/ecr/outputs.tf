output "repository_url" {
  description = "<account>.dkr.ecr.<region>.amazonaws.com/<name>: where to push the image."
  value       = aws_ecr_repository.herald.repository_url
}

output "repository_arn" {
  description = "The repository, for the task execution role's pull permission."
  value       = aws_ecr_repository.herald.arn
}
