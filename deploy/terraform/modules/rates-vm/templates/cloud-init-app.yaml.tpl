#cloud-config
# First boot of a rates app VM in the cluster layout (database_layout = "cluster"): the rates
# .deb and no database. ratesd reaches PostgreSQL through HAProxy on this host (writes on
# 127.0.0.1:${write_port} to the Patroni leader, reads on 127.0.0.1:${read_port} to the replicas),
# which the playbook installs (deploy/ansible, group rates_lb) together with the migrations;
# until then /readyz answers 503. The password comes from AWS Secrets Manager
# (${db_secret_arn}) through the instance role into files of mode 0640 root:rates.
package_update: true
packages:
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
      RATES_DATABASE_READ_URL_FILE=/etc/rates/database_read_url
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
  - [sh, -c, "umask 077 && printf 'postgresql://rates:%s@127.0.0.1:${write_port}/rates\\n' \"$(cat /etc/rates/db_password)\" > /etc/rates/database_url"]
  - [sh, -c, "umask 077 && printf 'postgresql://rates:%s@127.0.0.1:${read_port}/rates\\n' \"$(cat /etc/rates/db_password)\" > /etc/rates/database_read_url"]
  - [sh, -c, "chgrp rates /etc/rates/db_password /etc/rates/database_url /etc/rates/database_read_url /etc/default/ratesd && chmod 0640 /etc/rates/db_password /etc/rates/database_url /etc/rates/database_read_url"]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, ratesd.socket]
final_message: "rates app VM (cluster layout): ratesd installed after $UPTIME s; run the playbook next"
