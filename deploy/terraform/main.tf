# Root configuration: one environment per workspace/var file.
#   terraform init
#   terraform apply -var-file=envs/staging.tfvars -var db_password=...
terraform {
  required_version = ">= 1.5"
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
