variable "name" {
  description = "Name of the deployment; prefixes every resource (lower case, at most 16 characters)."
  type        = string
  default     = "herald"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name must be 2-16 characters of a-z 0-9 -, starting with a letter (ALB and target group names are capped at 32)."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_id" {
  description = "The VPC to deploy into."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the ALB, in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "the ALB needs public subnets in at least two zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints for SSM, S3, CloudWatch, Auto Scaling, ElastiCache) for edges, hubs and Redis, in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "edges, hubs and Redis need private subnets in at least two zones."
  }
}

variable "certificate_arn" {
  description = "ACM certificate (in this region) for the ALB's HTTPS listener, covering the host clients use."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "client_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB (browsers and the Laravel app)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "laravel_cidrs" {
  description = "IPv4 CIDRs of Laravel servers inside the VPC that may call the hubs' HTTP API directly on port 8081 (optional; the ALB's /apps/* works too)."
  type        = list(string)
  default     = []
}

variable "herald_artifact_url" {
  description = "s3:// URL of the herald binary for the instances' architecture (see README)."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*'()/+-]+$", var.herald_artifact_url))
    error_message = "herald_artifact_url must be an s3://bucket/key URL."
  }
}

variable "herald_artifact_sha256" {
  description = "SHA-256 (lower-case hex) of the binary at herald_artifact_url: `sha256sum herald`."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.herald_artifact_sha256))
    error_message = "herald_artifact_sha256 must be 64 lower-case hex digits."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter naming the Amazon Linux 2023 AMI (use the arm64 one for Graviton instance types)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "apps" {
  description = "Pusher apps served: id and key (public). Secrets are generated and stored in SSM."
  type = list(object({
    id  = string
    key = string
  }))

  validation {
    condition     = length(var.apps) > 0 && alltrue([for app in var.apps : can(regex("^[A-Za-z0-9_-]{1,64}$", app.id)) && can(regex("^[A-Za-z0-9_-]{1,64}$", app.key))])
    error_message = "give at least one app; ids and keys are 1-64 characters of A-Z a-z 0-9 _ -."
  }
}

variable "edge_platform" {
  description = "Where edges run: \"ec2\" (an Auto Scaling group of instances) or \"fargate\" (an ECS service of tasks, no instances). Hubs are EC2 either way."
  type        = string
  default     = "ec2"

  validation {
    condition     = contains(["ec2", "fargate"], var.edge_platform)
    error_message = "edge_platform must be \"ec2\" or \"fargate\"."
  }
}

variable "edge_image_tag" {
  description = "With edge_platform = \"fargate\": the tag of the Herald image in the ECR repository (output ecr_repository_url) that edge tasks run."
  type        = string
  default     = "0.1.0"
}

variable "edge_fargate_cpu" {
  description = "With edge_platform = \"fargate\": CPU units per edge task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "edge_fargate_memory" {
  description = "With edge_platform = \"fargate\": memory per edge task, MiB."
  type        = number
  default     = 2048
}

variable "edge_instance_type" {
  description = "Instance type of the edges."
  type        = string
  default     = "c7i.large"
}

variable "edge_min_size" {
  description = "Fewest edges, instances or tasks (at least 2)."
  type        = number
  default     = 2
}

variable "edge_max_size" {
  description = "Most edges."
  type        = number
  default     = 12
}

variable "edge_target_connections_per_instance" {
  description = "Open WebSockets per edge (instance or task) that scaling aims for."
  type        = number
  default     = 20000
}

variable "hub_instance_type" {
  description = "Instance type of the hubs."
  type        = string
  default     = "c7i.large"
}

variable "hub_count" {
  description = "Number of hubs (at least 2)."
  type        = number
  default     = 2
}

variable "enable_hub_nlb" {
  description = "Reach hubs through an internal NLB (UDP 4433) instead of by name."
  type        = bool
  default     = false
}

variable "internal_zone_name" {
  description = "Private Route 53 zone created for the hubs' names."
  type        = string
  default     = "herald.internal"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes: a primary plus replicas in other zones (2-6)."
  type        = number
  default     = 2
}

variable "redis_cluster_mode" {
  description = "\"disabled\": one Redis primary and replicas (redis_num_cache_clusters), for regions one primary carries; \"enabled\": a Redis Cluster of redis_shards shards (sharded pub/sub), for regions past one primary."
  type        = string
  default     = "disabled"

  validation {
    condition     = contains(["disabled", "enabled"], var.redis_cluster_mode)
    error_message = "redis_cluster_mode must be \"disabled\" or \"enabled\"."
  }
}

variable "redis_shards" {
  description = "Shards with redis_cluster_mode = \"enabled\" (1-500)."
  type        = number
  default     = 3
}

variable "redis_replicas_per_shard" {
  description = "Replicas of each shard's primary with redis_cluster_mode = \"enabled\" (1-5)."
  type        = number
  default     = 1
}

variable "redis_engine_version" {
  description = "Redis OSS version, 7.x as major.minor."
  type        = string
  default     = "7.1"
}

variable "redis_auth_token" {
  description = "Redis AUTH token; null generates one (stored in SSM)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.redis_auth_token == null || can(regex("^[A-Za-z0-9!&#$^<>-]{16,128}$", var.redis_auth_token))
    error_message = "redis_auth_token must be 16-128 characters of A-Z a-z 0-9 ! & # $ ^ < > -."
  }
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for ALB access logs (WebSocket entries are written when the socket closes); null for none."
  type        = string
  default     = null
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (set false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "alarm_topic_arn" {
  description = "SNS topic for alarms; null creates <name>-alarms."
  type        = string
  default     = null
}

variable "enable_ssm_session_manager" {
  description = "Allow shell access through SSM Session Manager (no SSH port is opened)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
