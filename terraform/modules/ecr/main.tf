# The ECR repository Fargate edges pull the Herald image from (scripts/build-image.sh builds it;
# terraform/README.md shows the push). Tags are immutable: a release is a new tag, and the task
# definition names it (edge_image_tag), so a deployment always says which image it runs.

resource "aws_ecr_repository" "herald" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

# Keep the last 20 images; older ones can no longer be rolled back to.
resource "aws_ecr_lifecycle_policy" "herald" {
  repository = aws_ecr_repository.herald.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the 20 newest images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 20
      }
      action = { type = "expire" }
    }]
  })
}
