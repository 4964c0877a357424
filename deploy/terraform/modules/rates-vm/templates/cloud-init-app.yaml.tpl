#cloud-config
# First boot of a rates app VM in the cluster layout (database_layout = "cluster"): the rates
# .deb and nothing else: no database and no database credentials (the instance role reads no
# secret). ratesd will reach PostgreSQL through HAProxy on this host (writes on
# 127.0.0.1:${write_port} to the Patroni leader, reads on 127.0.0.1:${read_port} to the
# replicas, TLS verify-full to the members), which the playbook installs (deploy/ansible,
# group rates_lb); the playbook then migrates as the owner, writes /etc/default/ratesd with
# rates_app's URLs and the socket's address (rates_listen_port: keep it at ${app_port}, the
# port the security group opens), and starts ratesd. The package's postinst starts ratesd
# with no database; it is stopped and disabled here, so until the playbook has run nothing
# listens: a VM the playbook has not reached refuses connections instead of answering 503.
package_update: true
packages:
  - curl
  - ca-certificates
runcmd:
  - [sh, -c, "curl -fsSL --retry 5 -o /tmp/rates.deb '${deb_url}'"]
  - [sh, -c, "DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold /tmp/rates.deb"]
  - [systemctl, disable, --now, ratesd.socket, ratesd.service]
final_message: "rates app VM (cluster layout): ratesd installed, off, after $UPTIME s; run the playbook next"
