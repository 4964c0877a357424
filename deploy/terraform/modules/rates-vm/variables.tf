variable "name" {
  description = "Name prefix of every resource (e.g. rates-staging)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC this module creates."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zones to spread the instances and subnets over."
  type        = list(string)
}

variable "instance_count" {
  description = "Number of VMs."
  type        = number
  default     = 1
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "t3.small"
}

variable "root_volume_gb" {
  description = "Root volume size in GB."
  type        = number
  default     = 20
}

variable "mode" {
  description = "deb: install the rates .deb (database per database_layout); compose: start the compose stack."
  type        = string
  default     = "deb"
  validation {
    condition     = contains(["deb", "compose"], var.mode)
    error_message = "mode must be deb or compose."
  }
}

variable "database_layout" {
  description = "mode deb: local (PostgreSQL on each VM: the one-VM dev layout only) or cluster (no database on the app VMs; ratesd through HAProxy on the VM to the rates-db members)."
  type        = string
  default     = "cluster"
  validation {
    condition     = contains(["local", "cluster"], var.database_layout)
    error_message = "database_layout must be local or cluster."
  }
}

variable "haproxy_write_port" {
  description = "Local HAProxy port to the Patroni leader (cluster layout)."
  type        = number
  default     = 5000
}

variable "haproxy_read_port" {
  description = "Local HAProxy port to the replicas (cluster layout)."
  type        = number
  default     = 5001
}

variable "deb_url" {
  description = "HTTPS URL of the rates .deb (mode deb), e.g. a presigned S3 URL of `make deb` output."
  type        = string
  default     = ""
}

variable "bundle_url" {
  description = "HTTPS URL of a tarball with compose.yaml, deploy/ and .env (mode compose)."
  type        = string
  default     = ""
}

variable "db_password" {
  description = "Password of the owner role rates of the local PostgreSQL (mode deb, database_layout local; required there, unused otherwise: the cluster's owner password is the playbook's vault_rates_db_password)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "app_port" {
  description = "Port ratesd listens on (socket-activated)."
  type        = number
  default     = 3000
}

variable "allowed_cidrs" {
  description = "CIDRs allowed to reach the app port (put a load balancer's here in production)."
  type        = list(string)
}

variable "ssh_cidrs" {
  description = "CIDRs allowed to SSH in (empty: no SSH)."
  type        = list(string)
  default     = []
}

variable "ssh_key_name" {
  description = "Existing EC2 key pair for SSH (null: none)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
