# The owner's password (role rates) in the one-VM layout (mode deb, database_layout local),
# the only layout whose first boot needs one: the cluster layout's app VMs get no database
# credentials from Terraform (the playbook writes rates_app's URLs), and compose makes its
# passwords on the VM. It never goes into user_data (readable by anyone who can describe the
# instance, and by every process on it through the metadata service): it is kept in AWS
# Secrets Manager, readable only by the instance role, and cloud-init fetches it into
# root-only files (templates/cloud-init-deb.yaml.tpl, which also keeps ratesd away from the
# metadata service and so from the role). Other layouts get no secret and no policy: their
# instance role reads nothing.
# It is still in the Terraform state: the state lives in the encrypted S3 backend (envs/).
locals {
  owner_secret = var.mode == "deb" && var.database_layout == "local"
}

resource "aws_secretsmanager_secret" "db_password" {
  count                   = local.owner_secret ? 1 : 0
  name_prefix             = "${var.name}-db-password-"
  description             = "rates: PostgreSQL password of the owner role rates (one-VM layout)"
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "db_password" {
  count         = local.owner_secret ? 1 : 0
  secret_id     = aws_secretsmanager_secret.db_password[0].id
  secret_string = var.db_password
  lifecycle {
    precondition {
      condition     = var.db_password != ""
      error_message = "db_password (the owner's password) is required in the one-VM layout (mode deb, database_layout local)."
    }
  }
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "read_db_password" {
  count = local.owner_secret ? 1 : 0
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.db_password[0].arn]
  }
}

resource "aws_iam_role" "rates" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "read_db_password" {
  count  = local.owner_secret ? 1 : 0
  name   = "read-db-password"
  role   = aws_iam_role.rates.id
  policy = data.aws_iam_policy_document.read_db_password[0].json
}

# These were single resources before: a one-VM environment keeps its secret and policy; any
# other layout's are destroyed (nothing reads them any more).
moved {
  from = aws_secretsmanager_secret.db_password
  to   = aws_secretsmanager_secret.db_password[0]
}

moved {
  from = aws_secretsmanager_secret_version.db_password
  to   = aws_secretsmanager_secret_version.db_password[0]
}

moved {
  from = aws_iam_role_policy.read_db_password
  to   = aws_iam_role_policy.read_db_password[0]
}

resource "aws_iam_instance_profile" "rates" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.rates.name
}

data "aws_region" "current" {}
