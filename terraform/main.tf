# Herald on AWS: one region, an ALB in front of the edges (/app/*: an Auto Scaling group, or an
# ECS service on Fargate with edge_platform = "fargate") and hubs (/apps/*, EC2), hubs sharing
# an ElastiCache Redis 7 replication group. Local modules only.

locals {
  metrics_namespace = "Herald"
  # Named here because both the group (modules/edge) and the policy that lets edges complete
  # its lifecycle hook (modules/iam) need it.
  edge_asg_name   = "${var.name}-edge"
  hub_server_name = "herald-hub"
}

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

module "security_groups" {
  source = "./modules/security_groups"

  name           = var.name
  vpc_id         = var.vpc_id
  client_cidrs   = var.client_cidrs
  laravel_cidrs  = var.laravel_cidrs
  enable_hub_nlb = var.enable_hub_nlb
  tags           = var.tags
}

module "secrets" {
  source = "./modules/secrets"

  name             = var.name
  apps             = var.apps
  redis_auth_token = var.redis_auth_token
  hub_server_name  = local.hub_server_name
  tags             = var.tags
}

module "alb" {
  source = "./modules/alb"

  name                = var.name
  vpc_id              = var.vpc_id
  public_subnet_ids   = var.public_subnet_ids
  edge_platform       = var.edge_platform
  security_group_id   = module.security_groups.alb_id
  certificate_arn     = var.certificate_arn
  access_logs_bucket  = var.alb_access_logs_bucket
  deletion_protection = var.alb_deletion_protection
  tags                = var.tags
}

module "redis" {
  source = "./modules/redis"

  name               = var.name
  private_subnet_ids = var.private_subnet_ids
  security_group_id  = module.security_groups.redis_id
  node_type          = var.redis_node_type
  cluster_mode       = var.redis_cluster_mode
  num_cache_clusters = var.redis_num_cache_clusters
  shards             = var.redis_shards
  replicas_per_shard = var.redis_replicas_per_shard
  engine_version     = var.redis_engine_version
  auth_token         = module.secrets.redis_auth_token
  kms_key_arn        = module.secrets.kms_key_arn
  tags               = var.tags
}

module "iam" {
  source = "./modules/iam"

  name                        = var.name
  region                      = var.region
  herald_artifact_url         = var.herald_artifact_url
  kms_key_arn                 = module.secrets.kms_key_arn
  edge_parameter_arns         = module.secrets.edge_parameter_arns
  hub_parameter_arns          = module.secrets.hub_parameter_arns
  edge_asg_name               = local.edge_asg_name
  redis_replication_group_arn = module.redis.arn
  metrics_namespace           = local.metrics_namespace
  enable_ssm_session_manager  = var.enable_ssm_session_manager
  tags                        = var.tags
}

locals {
  apps = [
    for app in var.apps : {
      id               = app.id
      key              = app.key
      secret_parameter = module.secrets.app_secret_parameter_names[app.id]
    }
  ]
}

module "hub" {
  source = "./modules/hub"

  name                       = var.name
  region                     = var.region
  vpc_id                     = var.vpc_id
  private_subnet_ids         = var.private_subnet_ids
  ami_id                     = data.aws_ssm_parameter.ami.insecure_value
  instance_type              = var.hub_instance_type
  hub_count                  = var.hub_count
  security_group_id          = module.security_groups.hub_id
  instance_profile_name      = module.iam.hub_instance_profile_name
  hub_target_group_arn       = module.alb.hub_target_group_arn
  internal_zone_name         = var.internal_zone_name
  enable_nlb                 = var.enable_hub_nlb
  nlb_security_group_id      = module.security_groups.nlb_id
  herald_artifact_url        = var.herald_artifact_url
  herald_artifact_sha256     = var.herald_artifact_sha256
  apps                       = local.apps
  redis_replication_group_id = module.redis.replication_group_id
  tags                       = var.tags

  parameters = {
    cluster_key      = module.secrets.parameter_names.cluster_key
    hub_tls_cert     = module.secrets.parameter_names.hub_tls_cert
    hub_tls_key      = module.secrets.parameter_names.hub_tls_key
    redis_auth_token = module.secrets.parameter_names.redis_auth_token
  }
}

# Where Fargate edges pull the image from (created on both platforms, so the image can be
# pushed before switching).
module "ecr" {
  source = "./modules/ecr"

  name        = var.name
  kms_key_arn = module.secrets.kms_key_arn
  tags        = var.tags
}

module "edge" {
  source = "./modules/edge"
  count  = var.edge_platform == "ec2" ? 1 : 0

  name                            = var.name
  region                          = var.region
  asg_name                        = local.edge_asg_name
  private_subnet_ids              = var.private_subnet_ids
  ami_id                          = data.aws_ssm_parameter.ami.insecure_value
  instance_type                   = var.edge_instance_type
  min_size                        = var.edge_min_size
  max_size                        = var.edge_max_size
  target_connections_per_instance = var.edge_target_connections_per_instance
  security_group_id               = module.security_groups.edge_id
  instance_profile_name           = module.iam.edge_instance_profile_name
  edge_target_group_arn           = module.alb.edge_target_group_arn
  hubs                            = module.hub.link_endpoints
  herald_artifact_url             = var.herald_artifact_url
  herald_artifact_sha256          = var.herald_artifact_sha256
  apps                            = local.apps
  metrics_namespace               = local.metrics_namespace
  tags                            = var.tags

  parameters = {
    cluster_key = module.secrets.parameter_names.cluster_key
    hub_ca_cert = module.secrets.parameter_names.hub_ca_cert
  }
}

# The edge group was module.edge before edge_platform existed.
moved {
  from = module.edge
  to   = module.edge[0]
}

module "edge_fargate" {
  source = "./modules/edge_fargate"
  count  = var.edge_platform == "fargate" ? 1 : 0

  name                        = var.name
  region                      = var.region
  private_subnet_ids          = var.private_subnet_ids
  security_group_id           = module.security_groups.edge_id
  edge_target_group_arn       = module.alb.edge_target_group_arn
  alb_arn_suffix              = module.alb.arn_suffix
  repository_url              = module.ecr.repository_url
  repository_arn              = module.ecr.repository_arn
  image_tag                   = var.edge_image_tag
  cpu                         = var.edge_fargate_cpu
  memory                      = var.edge_fargate_memory
  min_count                   = var.edge_min_size
  max_count                   = var.edge_max_size
  target_connections_per_task = var.edge_target_connections_per_instance
  hubs                        = module.hub.link_endpoints
  hub_server_name             = local.hub_server_name
  parameter_arns              = module.secrets.edge_parameter_arns
  kms_key_arn                 = module.secrets.kms_key_arn
  apps                        = local.apps
  tags                        = var.tags

  parameters = {
    cluster_key = module.secrets.parameter_names.cluster_key
    hub_ca_cert = module.secrets.parameter_names.hub_ca_cert
  }
}

module "alarms" {
  source = "./modules/alarms"

  name                                 = var.name
  alarm_topic_arn                      = var.alarm_topic_arn
  kms_key_arn                          = module.secrets.kms_key_arn
  alb_arn_suffix                       = module.alb.arn_suffix
  edge_target_group_arn_suffix         = module.alb.edge_target_group_arn_suffix
  hub_target_group_arn_suffix          = module.alb.hub_target_group_arn_suffix
  redis_member_ids                     = module.redis.member_cluster_ids
  edge_asg_name                        = one(module.edge[*].asg_name)
  metrics_namespace                    = local.metrics_namespace
  edge_target_connections_per_instance = var.edge_target_connections_per_instance
  tags                                 = var.tags
}
