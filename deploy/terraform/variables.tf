variable "environment" {
  description = "dev, staging or prod."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "vpc_cidr" {
  description = "VPC CIDR."
  type        = string
}

variable "availability_zones" {
  description = "Zones."
  type        = list(string)
}

variable "instance_count" {
  description = "Number of VMs."
  type        = number
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
}

variable "mode" {
  description = "deb or compose."
  type        = string
  default     = "deb"
}

variable "deb_url" {
  description = "URL of the .deb."
  type        = string
  default     = ""
}

variable "bundle_url" {
  description = "URL of the compose bundle."
  type        = string
  default     = ""
}

variable "db_password" {
  description = "Password of the owner role rates, needed only when db_instance_count = 0 (PostgreSQL on the app VM); pass with -var or TF_VAR_db_password, never in a file."
  type        = string
  default     = ""
  sensitive   = true
}

variable "allowed_cidrs" {
  description = "Who may reach the app port."
  type        = list(string)
}

variable "ssh_cidrs" {
  description = "Who may SSH in."
  type        = list(string)
  default     = []
}

variable "ssh_key_name" {
  description = "EC2 key pair name."
  type        = string
  default     = null
}

variable "db_instance_count" {
  description = "Database VMs (module rates-db): 3 for an HA environment, 1 for dev, 0 for PostgreSQL on the app VM (one-VM layout)."
  type        = number
  default     = 3
}

variable "db_instance_type" {
  description = "EC2 instance type of the database VMs."
  type        = string
  default     = "t3.medium"
}

variable "db_volume_gb" {
  description = "Data volume of each database VM, GB."
  type        = number
  default     = 50
}
