output "private_ips" {
  description = "The members' addresses inside the VPC (rates_ha_address in the Ansible inventory)."
  value       = aws_instance.db[*].private_ip
}

output "public_ips" {
  description = "The members' public addresses (Ansible over SSH from ssh_cidrs; the security group admits nothing else from outside)."
  value       = aws_instance.db[*].public_ip
}

output "names" {
  description = "The members' names (Ansible inventory hostnames, Patroni member names)."
  value       = [for i in range(var.instance_count) : "${var.name}-db-${i + 1}"]
}

output "security_group_id" {
  description = "The database members' security group."
  value       = aws_security_group.db.id
}

output "pgbackrest_bucket" {
  description = "The pgBackRest repository bucket (repo1-s3-bucket)."
  value       = aws_s3_bucket.pgbackrest.bucket
}
