# rates on cloud VMs (AWS): a VPC with one public subnet per zone, a security group, and the
# instances, configured at first boot by cloud-init (install the .deb, or start compose).
locals {
  tags = merge({ "app" = "rates", "Name" = var.name }, var.tags)
  # deb + local: PostgreSQL on the VM (one-VM dev layout), the owner's password from Secrets
  # Manager; deb + cluster: no database and no credentials here, ratesd through HAProxy to
  # the rates-db members once the playbook has configured it; compose: the compose stack.
  app_vars = {
    deb_url    = var.deb_url
    app_port   = var.app_port
    write_port = var.haproxy_write_port
    read_port  = var.haproxy_read_port
  }
  deb_vars = {
    deb_url       = var.deb_url
    app_port      = var.app_port
    db_secret_arn = one(aws_secretsmanager_secret.db_password[*].arn)
    region        = data.aws_region.current.name
  }
  user_data = (var.mode == "compose"
    ? templatefile("${path.module}/templates/cloud-init-compose.yaml.tpl", { bundle_url = var.bundle_url, app_port = var.app_port })
    : var.database_layout == "cluster"
    ? templatefile("${path.module}/templates/cloud-init-app.yaml.tpl", local.app_vars)
  : templatefile("${path.module}/templates/cloud-init-deb.yaml.tpl", local.deb_vars))
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags                 = local.tags
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = local.tags
}

resource "aws_subnet" "public" {
  count                   = length(var.availability_zones)
  vpc_id                  = aws_vpc.this.id
  availability_zone       = var.availability_zones[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  map_public_ip_on_launch = true
  tags                    = merge(local.tags, { "Name" = "${var.name}-${var.availability_zones[count.index]}" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
  tags = local.tags
}

resource "aws_route_table_association" "public" {
  count          = length(aws_subnet.public)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "rates" {
  name        = "${var.name}-sg"
  description = "rates: app port from allowed CIDRs, SSH from admin CIDRs"
  vpc_id      = aws_vpc.this.id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "app" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.rates.id
  cidr_ipv4         = each.value
  from_port         = var.app_port
  to_port           = var.app_port
  ip_protocol       = "tcp"
  description       = "rates HTTP"
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.ssh_cidrs)
  security_group_id = aws_security_group.rates.id
  cidr_ipv4         = each.value
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
  description       = "SSH"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.rates.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "Debian mirror, package download"
}

resource "aws_instance" "rates" {
  count                  = var.instance_count
  ami                    = data.aws_ami.debian.id
  instance_type          = var.instance_type
  subnet_id              = aws_subnet.public[count.index % length(aws_subnet.public)].id
  vpc_security_group_ids = [aws_security_group.rates.id]
  key_name               = var.ssh_key_name
  iam_instance_profile   = aws_iam_instance_profile.rates.name
  user_data              = local.user_data
  # A changed user-data (new .deb URL) replaces the VM: immutable hosts.
  user_data_replace_on_change = true
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }
  tags = merge(local.tags, { "Name" = "${var.name}-${count.index + 1}" })
  # The owner's password (one-VM layout) must be readable before the first boot fetches it.
  depends_on = [aws_secretsmanager_secret_version.db_password, aws_iam_role_policy.read_db_password]
}
