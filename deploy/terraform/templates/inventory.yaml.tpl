# Ansible inventory of rates-${environment}, written by Terraform (output ansible_inventory).
# Secrets are not here: only references to Ansible Vault variables (deploy/README.md).
all:
  vars:
    rates_ha_superuser_password: "{{ vault_ha_superuser_password }}"
    rates_ha_replication_password: "{{ vault_ha_replication_password }}"
    rates_ha_rest_password: "{{ vault_ha_rest_password }}"
    rates_ha_owner_password: "{{ vault_rates_db_password }}"
    rates_pgbackrest_cipher_pass: "{{ vault_pgbackrest_cipher_pass }}"
    rates_ha_scope: rates-${environment}
    rates_pgbackrest_repo_type: "${pgbackrest_bucket == "" ? "posix" : "s3"}"
    rates_pgbackrest_s3_bucket: "${pgbackrest_bucket}"
    rates_pgbackrest_s3_region: "${region}"
    rates_pgbackrest_repo_path: "${pgbackrest_bucket == "" ? "/var/lib/pgbackrest" : "/pgbackrest"}"
  children:
    rates_db:
      hosts:
%{ for name, h in db_hosts ~}
        ${name}:
          ansible_host: ${h.ssh}
          rates_ha_address: ${h.address}
%{ endfor ~}
    rates_lb:
      children:
        rates:
    rates:
      vars:
%{ if length(db_hosts) > 0 ~}
        # Through HAProxy on each app host (rates_lb): writes to the leader, reads to replicas.
        # The owner migrates; ratesd serves as rates_app, which owns nothing. HAProxy passes
        # TCP through, so TLS runs from here to the member: verify-full against the cluster's
        # CA (the pki role's, copied to /etc/rates/db-ca.crt by the rates role); every member's
        # certificate names IP:127.0.0.1, the address these URLs connect to.
        rates_owner_database_url: "postgresql://rates:{{ vault_rates_db_password | urlencode }}@127.0.0.1:5000/rates?sslmode=verify-full&sslrootcert=/etc/rates/db-ca.crt"
        rates_database_url: "postgresql://rates_app:{{ vault_rates_app_db_password | urlencode }}@127.0.0.1:5000/rates?sslmode=verify-full&sslrootcert=/etc/rates/db-ca.crt"
        rates_database_read_url: "postgresql://rates_app:{{ vault_rates_app_db_password | urlencode }}@127.0.0.1:5001/rates?sslmode=verify-full&sslrootcert=/etc/rates/db-ca.crt"
%{ else ~}
        # No database VM: the one-VM layout, PostgreSQL on the app VM.
        rates_install_postgresql: true
        rates_db_password: "{{ vault_rates_db_password }}"
%{ endif ~}
        rates_app_db_password: "{{ vault_rates_app_db_password }}"
      hosts:
%{ for name, h in app_hosts ~}
        ${name}:
          ansible_host: ${h.ssh}
          rates_ha_address: ${h.address}
%{ endfor ~}
