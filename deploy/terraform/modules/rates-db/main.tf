# The database VMs of one environment: instance_count members, each running etcd, Patroni
# (PostgreSQL) and pgBackRest, configured by Ansible (deploy/ansible, group rates_db) once
# Terraform has made them. Terraform owns what outlives a host: the data volumes (a replaced
# VM gets its volume back), the pgBackRest repository bucket, and who may talk to whom.
locals {
  tags = merge({ "app" = "rates", "role" = "db", "Name" = "${var.name}-db" }, var.tags)
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

data "aws_subnet" "member" {
  count = var.instance_count
  id    = var.subnet_ids[count.index % length(var.subnet_ids)]
}

resource "aws_instance" "db" {
  count                  = var.instance_count
  ami                    = data.aws_ami.debian.id
  instance_type          = var.instance_type
  subnet_id              = data.aws_subnet.member[count.index].id
  vpc_security_group_ids = [aws_security_group.db.id]
  key_name               = var.ssh_key_name
  iam_instance_profile   = aws_iam_instance_profile.db.name
  user_data              = templatefile("${path.module}/templates/cloud-init-db.yaml.tpl", { data_mount = "/var/lib/postgresql" })
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  root_block_device {
    volume_size = 20
    volume_type = "gp3"
    encrypted   = true
  }
  tags = merge(local.tags, { "Name" = "${var.name}-db-${count.index + 1}" })
  lifecycle {
    # Ansible configures the host; a new AMI must not replace a database member by itself.
    ignore_changes = [ami]
  }
}

# The data volume of member i, in member i's zone; it survives the instance (replace a VM
# and the new one mounts the same data, or Patroni re-clones it if the volume is new).
resource "aws_ebs_volume" "data" {
  count             = var.instance_count
  availability_zone = data.aws_subnet.member[count.index].availability_zone
  size              = var.data_volume_gb
  type              = "gp3"
  iops              = var.data_volume_iops
  encrypted         = true
  tags              = merge(local.tags, { "Name" = "${var.name}-db-${count.index + 1}-data" })
}

resource "aws_volume_attachment" "data" {
  count       = var.instance_count
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.db[count.index].id
}
