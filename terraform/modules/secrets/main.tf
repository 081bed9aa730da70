# The deployment's secrets, generated here and stored in SSM Parameter Store (SecureString,
# encrypted with the deployment's KMS key). Instances read them at boot with their role; the
# launch templates never contain them. They are also in the Terraform state: keep the state in
# an encrypted backend with restricted access.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  prefix     = "/${var.name}"
  apps       = { for app in var.apps : app.id => app }
}

# --- KMS key for SSM parameters, Redis at rest and the alarm topic ----------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_356:in a key policy, Resource "*" means this key
  #checkov:skip=CKV_AWS_109:AWS's default key policy: the account root statement delegates key use to IAM policies
  #checkov:skip=CKV_AWS_111:AWS's default key policy: the account root statement delegates key use to IAM policies
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Herald ${var.name}: SSM parameters, ElastiCache at rest, alarm topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- generated secrets ------------------------------------------------------------------------

resource "random_password" "cluster_key" {
  length  = 48
  special = false
}

resource "random_password" "app_secret" {
  for_each = local.apps

  length  = 40
  special = false
}

resource "random_password" "redis_auth_token" {
  count = var.redis_auth_token == null ? 1 : 0

  length  = 64
  special = true
  # The only specials ElastiCache accepts in an AUTH token.
  override_special = "!&#$^<>-"
  min_special      = 2
}

# --- hub TLS: a private CA that only edges trust, and one certificate all hubs share ---------

resource "tls_private_key" "hub_ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "hub_ca" {
  private_key_pem       = tls_private_key.hub_ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600
  allowed_uses          = ["cert_signing", "crl_signing"]

  subject {
    common_name  = "${var.name} hub CA"
    organization = "Herald"
  }
}

resource "tls_private_key" "hub" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "hub" {
  private_key_pem = tls_private_key.hub.private_key_pem
  dns_names       = [var.hub_server_name]

  subject {
    common_name  = var.hub_server_name
    organization = "Herald"
  }
}

resource "tls_locally_signed_cert" "hub" {
  cert_request_pem      = tls_cert_request.hub.cert_request_pem
  ca_private_key_pem    = tls_private_key.hub_ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.hub_ca.cert_pem
  validity_period_hours = 26280
  # Re-issued by the first apply in the last 90 days; hubs pick it up when replaced.
  early_renewal_hours = 2160
  allowed_uses        = ["digital_signature", "key_encipherment", "server_auth"]
}

# --- SSM parameters ---------------------------------------------------------------------------

resource "aws_ssm_parameter" "cluster_key" {
  name        = "${local.prefix}/cluster/key"
  description = "Herald cluster key: signs and verifies edge-hub link JWTs"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = random_password.cluster_key.result
  tags        = var.tags
}

resource "aws_ssm_parameter" "app_secret" {
  for_each = local.apps

  name        = "${local.prefix}/apps/${each.key}/secret"
  description = "Pusher secret of app ${each.key} (key ${each.value.key})"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = random_password.app_secret[each.key].result
  tags        = var.tags
}

resource "aws_ssm_parameter" "redis_auth_token" {
  name        = "${local.prefix}/redis/auth_token"
  description = "ElastiCache AUTH token, read by hubs"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = var.redis_auth_token == null ? random_password.redis_auth_token[0].result : var.redis_auth_token
  tags        = var.tags
}

resource "aws_ssm_parameter" "hub_ca_cert" {
  name        = "${local.prefix}/hub/ca_cert"
  description = "CA certificate (PEM) edges use to verify hubs"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = tls_self_signed_cert.hub_ca.cert_pem
  tags        = var.tags
}

resource "aws_ssm_parameter" "hub_tls_cert" {
  name        = "${local.prefix}/hub/tls_cert"
  description = "Hub certificate (PEM) for the QUIC link"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = tls_locally_signed_cert.hub.cert_pem
  tags        = var.tags
}

resource "aws_ssm_parameter" "hub_tls_key" {
  name        = "${local.prefix}/hub/tls_key"
  description = "Hub private key (PEM) for the QUIC link"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = tls_private_key.hub.private_key_pem_pkcs8
  tags        = var.tags
}
