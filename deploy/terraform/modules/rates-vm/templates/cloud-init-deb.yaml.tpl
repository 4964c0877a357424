#cloud-config
# First boot of a rates VM (mode deb): PostgreSQL from Debian, the rates .deb, its config,
# the socket-activated service. Rendered by Terraform templatefile().
package_update: true
packages:
  - postgresql
  - curl
  - ca-certificates
write_files:
  - path: /etc/default/ratesd
    permissions: "0640"
    owner: root:root
    content: |
      RATES_CONFIG=/etc/rates/ratesd.conf
      RATES_DATABASE_URL=postgresql://rates:${db_password}@127.0.0.1:5432/rates
  - path: /etc/systemd/system/ratesd.socket.d/listen.conf
    permissions: "0644"
    content: |
      [Socket]
      ListenStream=
      ListenStream=0.0.0.0:${app_port}
runcmd:
  - [sh, -c, "curl -fsSL --retry 5 -o /tmp/rates.deb '${deb_url}'"]
  - [sh, -c, "DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold /tmp/rates.deb"]
  - [sh, -c, "runuser -u postgres -- psql -v ON_ERROR_STOP=1 -c \"CREATE ROLE rates LOGIN PASSWORD '${db_password}'\" || true"]
  - [sh, -c, "runuser -u postgres -- createdb -O rates rates || true"]
  - [chgrp, rates, /etc/default/ratesd]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, ratesd.socket]
  - [systemctl, enable, --now, ratesd.service]
final_message: "rates: cloud-init done after $UPTIME s"
