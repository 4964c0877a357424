#cloud-config
# First boot of a rates VM (mode deb): PostgreSQL from Debian, the rates .deb, its config,
# the socket-activated service. Rendered by Terraform templatefile(). The database password
# is not in this file: it is read from AWS Secrets Manager (${db_secret_arn}) with the
# instance role and written only to files of mode 0640 root:rates under /etc/rates.
package_update: true
packages:
  - postgresql
  - curl
  - ca-certificates
  - awscli
write_files:
  - path: /etc/default/ratesd
    permissions: "0640"
    owner: root:root
    content: |
      RATES_CONFIG=/etc/rates/ratesd.conf
      RATES_DATABASE_URL_FILE=/etc/rates/database_url
  - path: /etc/systemd/system/ratesd.socket.d/listen.conf
    permissions: "0644"
    content: |
      [Socket]
      ListenStream=
      ListenStream=0.0.0.0:${app_port}
runcmd:
  - [sh, -c, "curl -fsSL --retry 5 -o /tmp/rates.deb '${deb_url}'"]
  - [sh, -c, "DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold /tmp/rates.deb"]
  - [sh, -c, "umask 077 && aws --region '${region}' secretsmanager get-secret-value --secret-id '${db_secret_arn}' --query SecretString --output text > /etc/rates/db_password"]
  - [sh, -c, "umask 077 && printf 'postgresql://rates:%s@127.0.0.1:5432/rates\\n' \"$(cat /etc/rates/db_password)\" > /etc/rates/database_url"]
  - [sh, -c, "chgrp rates /etc/rates/db_password /etc/rates/database_url /etc/default/ratesd && chmod 0640 /etc/rates/db_password /etc/rates/database_url"]
  - [sh, -c, "printf '%s\\n' \"CREATE ROLE rates LOGIN PASSWORD :'pw'\" | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -v pw=\"$(cat /etc/rates/db_password)\" || true"]
  - [sh, -c, "runuser -u postgres -- createdb -O rates rates || true"]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, ratesd.socket]
  - [systemctl, restart, ratesd.service]
final_message: "rates: cloud-init done after $UPTIME s"
