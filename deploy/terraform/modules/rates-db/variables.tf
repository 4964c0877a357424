variable "name" {
  description = "Name prefix of every resource (e.g. rates-staging)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the app VMs (module rates-vm)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets to spread the database VMs over, one zone each (member i in subnet i mod n)."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Security group of the app VMs, which run HAProxy in front of ratesd (Ansible group rates_lb)."
  type        = string
}

variable "instance_count" {
  description = "Database VMs: 3 for an HA environment (etcd quorum, a synchronous standby and a spare), 1 for dev."
  type        = number
  default     = 3
  validation {
    condition     = var.instance_count == 1 || var.instance_count >= 3
    error_message = "1 (dev, no failover) or at least 3 (etcd needs a majority of an odd number)."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the database VMs."
  type        = string
  default     = "t3.medium"
}

variable "data_volume_gb" {
  description = "Size of each member's PostgreSQL data volume (gp3, encrypted), mounted at /var/lib/postgresql."
  type        = number
  default     = 50
}

variable "data_volume_iops" {
  description = "Provisioned IOPS of the data volume (gp3: 3000 to 16000)."
  type        = number
  default     = 3000
}

variable "backup_retention_days" {
  description = "Days the pgBackRest repository bucket keeps noncurrent object versions."
  type        = number
  default     = 30
}

variable "ssh_cidrs" {
  description = "CIDRs allowed to SSH in (Ansible); empty: no SSH."
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
