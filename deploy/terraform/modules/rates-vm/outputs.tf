output "instance_ids" {
  description = "IDs of the VMs."
  value       = aws_instance.rates[*].id
}

output "public_ips" {
  description = "Public addresses of the VMs."
  value       = aws_instance.rates[*].public_ip
}

output "urls" {
  description = "rates base URL on each VM."
  value       = [for ip in aws_instance.rates[*].public_ip : "http://${ip}:${var.app_port}"]
}

output "security_group_id" {
  description = "The security group of the VMs."
  value       = aws_security_group.rates.id
}

output "private_ips" {
  description = "Addresses of the VMs inside the VPC (Ansible inventory, group rates)."
  value       = aws_instance.rates[*].private_ip
}

output "vpc_id" {
  description = "The VPC (the rates-db module puts its members in it)."
  value       = aws_vpc.this.id
}

output "subnet_ids" {
  description = "The subnets, one per zone."
  value       = aws_subnet.public[*].id
}
