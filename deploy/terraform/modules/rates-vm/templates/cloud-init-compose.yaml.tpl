#cloud-config
# First boot of a rates VM (mode compose): Docker from Debian and the compose stack from a
# bundle (compose.yaml, deploy/, .env without secrets). Rendered by Terraform. The roles are
# compose.yaml's: the one-shot init migrates as the owner, the api serves as rates_app.
# Every password is made on the VM by deploy/compose/secrets.sh into 0600 files (none comes
# from Terraform); the instance role reads no secret.
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
