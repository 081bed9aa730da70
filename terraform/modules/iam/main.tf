# Instance roles, least privilege: each role reads only its own SSM parameters (decrypting them
# only through SSM), downloads only the herald artifact, and edges may only publish their metric
# and complete their own Auto Scaling group's lifecycle hook; hubs may only describe their
# replication group.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  partition       = data.aws_partition.current.partition
  account_id      = data.aws_caller_identity.current.account_id
  artifact_arn    = "arn:${local.partition}:s3:::${trimprefix(var.herald_artifact_url, "s3://")}"
  edge_asg_arn    = "arn:${local.partition}:autoscaling:${var.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.edge_asg_name}"
  ssm_service     = "ssm.${var.region}.amazonaws.com"
  roles           = toset(["edge", "hub"])
  session_manager = var.enable_ssm_session_manager ? local.roles : toset([])
  session_policy  = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
  parameter_arns  = { edge = var.edge_parameter_arns, hub = var.hub_parameter_arns }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name               = "${var.name}-${each.key}"
  description        = "Herald ${each.key} instances"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_instance_profile" "this" {
  for_each = local.roles

  name = "${var.name}-${each.key}"
  role = aws_iam_role.this[each.key].name
  tags = var.tags
}

data "aws_iam_policy_document" "common" {
  for_each = local.roles

  statement {
    sid       = "ReadOwnParameters"
    actions   = ["ssm:GetParameter"]
    resources = local.parameter_arns[each.key]
  }

  statement {
    sid       = "DecryptParametersThroughSsm"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.ssm_service]
    }
  }

  statement {
    sid       = "DownloadHerald"
    actions   = ["s3:GetObject"]
    resources = [local.artifact_arn]
  }
}

data "aws_iam_policy_document" "edge" {
  source_policy_documents = [data.aws_iam_policy_document.common["edge"].json]

  statement {
    sid = "PublishConnectionCount"
    #checkov:skip=CKV_AWS_356:PutMetricData has no resource-level permissions; the namespace condition scopes it
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  statement {
    sid       = "CompleteOwnLifecycleHook"
    actions   = ["autoscaling:CompleteLifecycleAction"]
    resources = [local.edge_asg_arn]
  }
}

data "aws_iam_policy_document" "hub" {
  source_policy_documents = [data.aws_iam_policy_document.common["hub"].json]

  statement {
    sid       = "DescribeOwnReplicationGroup"
    actions   = ["elasticache:DescribeReplicationGroups"]
    resources = [var.redis_replication_group_arn]
  }
}

resource "aws_iam_role_policy" "edge" {
  name   = "herald-edge"
  role   = aws_iam_role.this["edge"].id
  policy = data.aws_iam_policy_document.edge.json
}

resource "aws_iam_role_policy" "hub" {
  name   = "herald-hub"
  role   = aws_iam_role.this["hub"].id
  policy = data.aws_iam_policy_document.hub.json
}

resource "aws_iam_role_policy_attachment" "session_manager" {
  for_each = local.session_manager

  role       = aws_iam_role.this[each.key].name
  policy_arn = local.session_policy
}
