environment        = "dev"
vpc_cidr           = "10.40.0.0/16"
availability_zones = ["eu-central-1a"]
instance_count     = 1
instance_type      = "t3.small"
mode               = "deb"
deb_url            = "https://artifacts.example.com/rates/rates_0.1.0_amd64.deb"
allowed_cidrs      = ["203.0.113.0/24"]
ssh_cidrs          = ["203.0.113.0/24"]
# One database VM: Patroni of one member (no failover), the same roles as staging and prod.
db_instance_count = 1
db_instance_type  = "t3.small"
db_volume_gb      = 20
