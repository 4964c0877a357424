# Who may talk to the database members. etcd (client 2379, peer 2380) only between members;
# Patroni's REST API (8008) and PostgreSQL (5432) between members (replication, pg_rewind,
# Patroni's own calls) and from the HAProxy hosts (the app VMs: health checks on GET /primary
# and GET /replica, then the proxied connections). Nothing else reaches them but SSH from
# ssh_cidrs, for Ansible.
resource "aws_security_group" "db" {
  name        = "${var.name}-db-sg"
  description = "rates db: etcd between members; Patroni REST and PostgreSQL from members and HAProxy hosts"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "etcd" {
  for_each                     = { client = 2379, peer = 2380 }
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.db.id
  from_port                    = each.value
  to_port                      = each.value
  ip_protocol                  = "tcp"
  description                  = "etcd ${each.key}, members only"
}

locals {
  # (port, source group) pairs: members and HAProxy hosts reach Patroni REST and PostgreSQL.
  db_ports = { patroni = 8008, postgresql = 5432 }
  db_rules = merge(
    { for k, p in local.db_ports : "${k}-members" => { port = p, from = aws_security_group.db.id } },
    { for k, p in local.db_ports : "${k}-haproxy" => { port = p, from = var.app_security_group_id } },
  )
}

resource "aws_vpc_security_group_ingress_rule" "db" {
  for_each                     = local.db_rules
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = each.value.from
  from_port                    = each.value.port
  to_port                      = each.value.port
  ip_protocol                  = "tcp"
  description                  = each.key
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.ssh_cidrs)
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = each.value
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
  description       = "SSH (Ansible)"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "Debian mirror, S3 (pgBackRest repository)"
}
