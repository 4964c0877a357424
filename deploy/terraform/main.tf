# Root configuration: one environment per backend and var file (envs/ENV.s3.tfbackend and
# envs/ENV.tfvars); the state of each lives in its own encrypted, locked S3 object.
#   terraform init -backend-config=envs/staging.s3.tfbackend
#   terraform apply -var-file=envs/staging.tfvars
# With db_instance_count = 0 (PostgreSQL on the app VM) also TF_VAR_db_password=..., the
# owner's password; with database VMs the passwords are the playbook's (Ansible Vault).
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
  database_layout    = var.db_instance_count > 0 ? "cluster" : "local"
  deb_url            = var.deb_url
  bundle_url         = var.bundle_url
  db_password        = var.db_password
  allowed_cidrs      = var.allowed_cidrs
  ssh_cidrs          = var.ssh_cidrs
  ssh_key_name       = var.ssh_key_name
  tags               = { "environment" = var.environment }
}

# The database members (etcd + Patroni + pgBackRest), when the environment has any.
module "db" {
  source                = "./modules/rates-db"
  count                 = var.db_instance_count > 0 ? 1 : 0
  name                  = "rates-${var.environment}"
  vpc_id                = module.rates.vpc_id
  subnet_ids            = module.rates.subnet_ids
  app_security_group_id = module.rates.security_group_id
  instance_count        = var.db_instance_count
  instance_type         = var.db_instance_type
  data_volume_gb        = var.db_volume_gb
  ssh_cidrs             = var.ssh_cidrs
  ssh_key_name          = var.ssh_key_name
  tags                  = { "environment" = var.environment }
}

output "urls" {
  value = module.rates.urls
}

# The Ansible inventory of this environment (groups rates_db, rates_lb, rates; the app VMs
# run HAProxy): `terraform output -raw ansible_inventory > inventory/ENV.yml`, then
# `ansible-playbook -i inventory/ENV.yml site.yml` (deploy/ansible/README or deploy/README.md).
output "ansible_inventory" {
  value = templatefile("${path.module}/templates/inventory.yaml.tpl", {
    environment = var.environment
    app_hosts = { for i, ip in module.rates.private_ips : "rates-${var.environment}-${i + 1}" => {
      ssh = module.rates.public_ips[i], address = ip }
    }
    db_hosts = var.db_instance_count > 0 ? { for i, name in module.db[0].names : name => {
      ssh = module.db[0].public_ips[i], address = module.db[0].private_ips[i] }
    } : {}
    pgbackrest_bucket = var.db_instance_count > 0 ? module.db[0].pgbackrest_bucket : ""
    region            = var.region
  })
}
