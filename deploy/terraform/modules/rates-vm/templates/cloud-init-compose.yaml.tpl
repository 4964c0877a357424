#cloud-config
# First boot of a rates VM (mode compose): Docker from Debian and the compose stack from a
# bundle (compose.yaml, deploy/, .env without secrets; the secret files are made on the VM). Rendered by Terraform.
package_update: true
packages:
  - docker.io
  - docker-compose
  - curl
runcmd:
  - [mkdir, -p, /opt/rates]
  - [sh, -c, "curl -fsSL --retry 5 '${bundle_url}' | tar -xz -C /opt/rates"]
  - [systemctl, enable, --now, docker]
  # The compose secrets (0600 files in /opt/rates/.secrets, each owned by the uid that reads it).
  - [sh, -c, "cd /opt/rates && sh deploy/compose/secrets.sh"]
  - [sh, -c, "cd /opt/rates && RATES_BIND=0.0.0.0 RATES_PORT=${app_port} docker-compose up -d --build"]
final_message: "rates: compose stack started after $UPTIME s"
