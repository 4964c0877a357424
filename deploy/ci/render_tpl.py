#!/usr/bin/env python3
"""render_tpl.py TEMPLATE: renders a Terraform cloud-init template with sample values the way
templatefile() would for these simple templates (${name} interpolation, $${ escapes), so that
`cloud-init schema` can check the result. Fails on any directive it does not handle."""
import re
import sys

SAMPLES = {"deb_url": "https://artifacts.example.com/rates/rates_0.1.0_amd64.deb",
           "bundle_url": "https://artifacts.example.com/rates/bundle.tar.gz",
           "db_password": "sample-password", "app_port": "3000",
           "db_secret_arn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rates-db-AbCdEf",
           "region": "eu-central-1", "data_mount": "/var/lib/postgresql",
           "write_port": "5000", "read_port": "5001"}
text = open(sys.argv[1]).read()
if "%{" in text.replace("%%{", ""):
    sys.exit("template directives (%{...}) are not supported by this renderer")
out = re.sub(r"(?<!\$)\$\{([a-z_]+)\}", lambda m: SAMPLES[m.group(1)], text)
leftover = re.findall(r"(?<!\$)\$\{[^}]*\}", out)
if leftover:
    sys.exit(f"unrendered expressions: {leftover}")
sys.stdout.write(out.replace("$${", "${"))
