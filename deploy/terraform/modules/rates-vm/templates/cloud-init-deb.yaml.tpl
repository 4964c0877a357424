#cloud-config
# First boot of a rates VM in the one-VM layout (mode deb, database_layout = "local"):
# PostgreSQL from Debian, the rates .deb, its config, the socket-activated service. Rendered
# by Terraform templatefile(). Two roles, as the playbook's one-host layout makes them
# (deploy/ansible/roles/rates/tasks/postgresql.yml): the owner rates (LOGIN CREATEROLE, not a
# superuser, member of rates_owner, owner of the database and of its schema public) migrates;
# rates_app serves. The owner's password is not in this file: the instance role reads it
# from AWS Secrets Manager (${db_secret_arn}) into files only root reads, and the service
# never names them. rates_app's password is made on the VM. No password is ever an argument
# of a command (ps shows those): they go through files, pipes and psql's environment.
# ratesd starts only once the owner has migrated, so the unit's own `ratesd migrate`
# (ExecStartPre, as rates_app) finds nothing to do.
package_update: true
packages:
  - postgresql
  - curl
  - ca-certificates
  - awscli
write_files:
  - path: /etc/systemd/system/ratesd.socket.d/listen.conf
    permissions: "0644"
    content: |
      [Socket]
      ListenStream=
      ListenStream=0.0.0.0:${app_port}
  # The instance role may read the owner's password: keep ratesd (and its ExecStartPre)
  # away from the metadata service, which hands out the role's keys to any local process.
  - path: /etc/systemd/system/ratesd.service.d/no-metadata.conf
    permissions: "0644"
    content: |
      [Service]
      IPAddressDeny=169.254.169.254 fd00:ec2::254
  - path: /usr/local/sbin/rates-first-boot
    permissions: "0700"
    content: |
      #!/bin/sh
      # Runs once, as root, from runcmd. Stops at the first failure with ratesd off.
      set -eu
      umask 077
      # ratesd runs as the system user rates, whom peer authentication on the local socket
      # would let in as the role rates, the owner: refuse that line first. The owner logs in
      # over TCP with its password; postgres keeps its peer line.
      for hba in /etc/postgresql/*/main/pg_hba.conf; do
          [ -f "$hba" ] || { echo "rates: no PostgreSQL cluster" >&2; exit 1; }
          grep -Eq '^local[[:space:]]+all[[:space:]]+rates[[:space:]]+reject' "$hba" ||
              sed -i '1i local all rates reject' "$hba"
      done
      systemctl reload-or-restart postgresql
      i=0
      until runuser -u postgres -- pg_isready -q; do
          i=$((i + 1))
          [ "$i" -lt 60 ] || { echo "rates: PostgreSQL not ready after 60 s" >&2; exit 1; }
          sleep 1
      done

      curl -fsSL --retry 5 -o /tmp/rates.deb '${deb_url}'
      DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold /tmp/rates.deb
      # The postinst has started ratesd with no database configured: off until migrated.
      systemctl disable --now ratesd.socket ratesd.service

      aws --region '${region}' secretsmanager get-secret-value --secret-id '${db_secret_arn}' \
          --query SecretString --output text >/etc/rates/owner_password
      # Hex: nothing to escape in a URL. Kept when the script runs again.
      [ -s /etc/rates/app_password ] ||
          od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >/etc/rates/app_password
      owner_pw=$(cat /etc/rates/owner_password)
      app_pw=$(cat /etc/rates/app_password)

      # As the superuser. psql takes the passwords from its environment (readable by root
      # and postgres only) and quotes them itself (:'var'): a quote cannot end the literal.
      RATES_OWNER_PW=$owner_pw RATES_APP_PW=$app_pw \
          runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
      \set owner_pw `printf %s "$RATES_OWNER_PW"`
      \set app_pw `printf %s "$RATES_APP_PW"`
      SELECT 'CREATE ROLE rates_owner' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates_owner') \gexec
      SELECT 'CREATE ROLE rates' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates') \gexec
      SELECT 'CREATE ROLE rates_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates_app') \gexec
      ALTER ROLE rates_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
      ALTER ROLE rates LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD :'owner_pw';
      ALTER ROLE rates_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_pw';
      GRANT rates_owner TO rates;
      SELECT 'CREATE DATABASE rates OWNER rates ENCODING ''UTF8'' TEMPLATE template0' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'rates') \gexec
      \connect rates
      ALTER SCHEMA public OWNER TO rates;
      SQL

      # The owner's URL, root-only, read by migrations alone (this one; a newer package's, run
      # by hand). Every byte of the password percent-encoded: any character survives the URL.
      enc=$(printf %s "$owner_pw" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g')
      printf 'postgresql://rates:%s@127.0.0.1:5432/rates\n' "$enc" >/etc/rates/owner_database_url
      RATES_DATABASE_URL_FILE=/etc/rates/owner_database_url /usr/bin/ratesd migrate

      # What the service reads names rates_app only.
      printf 'postgresql://rates_app:%s@127.0.0.1:5432/rates\n' "$app_pw" >/etc/rates/database_url
      printf '%s\n' RATES_CONFIG=/etc/rates/ratesd.conf RATES_DATABASE_URL_FILE=/etc/rates/database_url >/etc/default/ratesd
      chgrp rates /etc/rates/database_url /etc/default/ratesd
      chmod 0640 /etc/rates/database_url /etc/default/ratesd
      systemctl daemon-reload
      systemctl enable --now ratesd.socket ratesd.service
runcmd:
  - [/usr/local/sbin/rates-first-boot]
final_message: "rates: cloud-init done after $UPTIME s"
