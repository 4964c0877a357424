# The database password never goes into user_data (readable by anyone who can describe the
# instance, and by every process on it through the metadata service): it is kept in AWS
# Secrets Manager, readable only by the rates VMs' instance role, and cloud-init fetches it at
# first boot into files of mode 0640 root:rates (templates/cloud-init-deb.yaml.tpl).
# It is still in the Terraform state: the state lives in the encrypted S3 backend (envs/).
resource "aws_secretsmanager_secret" "db_password" {
  name_prefix             = "${var.name}-db-password-"
  description             = "rates: PostgreSQL password of the rates role"
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "db_password" {
  secret_id     = aws_secretsmanager_secret.db_password.id
  secret_string = var.db_password
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
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.db_password.arn]
  }
}

resource "aws_iam_role" "rates" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "read_db_password" {
  name   = "read-db-password"
  role   = aws_iam_role.rates.id
  policy = data.aws_iam_policy_document.read_db_password.json
}

resource "aws_iam_instance_profile" "rates" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.rates.name
}

data "aws_region" "current" {}
