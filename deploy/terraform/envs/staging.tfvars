environment        = "staging"
vpc_cidr           = "10.41.0.0/16"
availability_zones = ["eu-central-1a", "eu-central-1b"]
instance_count     = 2
instance_type      = "t3.medium"
mode               = "deb"
deb_url            = "https://artifacts.example.com/rates/rates_0.1.0_amd64.deb"
allowed_cidrs      = ["10.41.0.0/16", "203.0.113.0/24"]
