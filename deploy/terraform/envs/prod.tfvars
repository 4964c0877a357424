environment        = "prod"
vpc_cidr           = "10.42.0.0/16"
availability_zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
instance_count     = 3
instance_type      = "m6i.large"
mode               = "deb"
deb_url            = "https://artifacts.example.com/rates/rates_0.1.0_amd64.deb"
allowed_cidrs      = ["10.42.0.0/16"]
