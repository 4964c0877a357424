# Root configuration: one environment per backend and var file (envs/ENV.s3.tfbackend and
# envs/ENV.tfvars); the state of each lives in its own encrypted, locked S3 object.
#   terraform init -backend-config=envs/staging.s3.tfbackend
#   TF_VAR_db_password=... terraform apply -var-file=envs/staging.tfvars
terraform {
  required_version = ">= 1.5"
  # Partial configuration: bucket, key, region and lock table come from envs/ENV.s3.tfbackend.
  backend "s3" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

module "rates" {
  source             = "./modules/rates-vm"
  name               = "rates-${var.environment}"
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  instance_count     = var.instance_count
  instance_type      = var.instance_type
  mode               = var.mode
  deb_url            = var.deb_url
  bundle_url         = var.bundle_url
  db_password        = var.db_password
  allowed_cidrs      = var.allowed_cidrs
  ssh_cidrs          = var.ssh_cidrs
  ssh_key_name       = var.ssh_key_name
  tags               = { "environment" = var.environment }
}

output "urls" {
  value = module.rates.urls
}
