# The pgBackRest repository: one S3 bucket per environment (repo1-type=s3 in the Ansible
# pgbackrest role), versioned, encrypted at rest by S3 and, inside, by pgBackRest itself
# (repo1-cipher-type=aes-256-cbc, its passphrase in Ansible Vault), never public. Only the
# database members' instance role may read and write it.
resource "aws_s3_bucket" "pgbackrest" {
  bucket_prefix = "${var.name}-pgbackrest-"
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "pgbackrest" {
  bucket = aws_s3_bucket.pgbackrest.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "pgbackrest" {
  bucket = aws_s3_bucket.pgbackrest.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "pgbackrest" {
  bucket                  = aws_s3_bucket.pgbackrest.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "pgbackrest" {
  bucket = aws_s3_bucket.pgbackrest.id
  rule {
    id     = "noncurrent"
    status = "Enabled"
    filter {}
    # pgBackRest expires its own backups (repo1-retention-full); this only bounds the
    # versions S3 keeps of what it deleted or overwrote.
    noncurrent_version_expiration {
      noncurrent_days = var.backup_retention_days
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

data "aws_iam_policy_document" "pgbackrest" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.pgbackrest.arn]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.pgbackrest.arn}/*"]
  }
}

resource "aws_iam_role" "db" {
  name_prefix        = "${var.name}-db-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "pgbackrest" {
  name   = "pgbackrest-repository"
  role   = aws_iam_role.db.id
  policy = data.aws_iam_policy_document.pgbackrest.json
}

resource "aws_iam_instance_profile" "db" {
  name_prefix = "${var.name}-db-"
  role        = aws_iam_role.db.name
}
