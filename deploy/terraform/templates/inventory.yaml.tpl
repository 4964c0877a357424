# Ansible inventory of rates-${environment}, written by Terraform (output ansible_inventory).
# Secrets are not here: the playbook reads them from Ansible Vault or rates_secrets_dir.
all:
  vars:
    rates_cluster_scope: rates-${environment}
    rates_pgbackrest_repo_type: "${pgbackrest_bucket == "" ? "posix" : "s3"}"
    rates_pgbackrest_s3_bucket: "${pgbackrest_bucket}"
    rates_pgbackrest_s3_region: "${region}"
  children:
    rates_db:
      hosts:
%{ for name, h in db_hosts ~}
        ${name}:
          ansible_host: ${h.ssh}
          rates_node_address: ${h.address}
%{ endfor ~}
    rates_lb:
      children:
        rates:
    rates:
      vars:
%{ if length(db_hosts) > 0 ~}
        # Through HAProxy on each app host (rates_lb): writes to the leader, reads to replicas.
        rates_database_url: "postgresql://rates:{{ vault_rates_db_password | urlencode }}@127.0.0.1:5000/rates"
        rates_database_read_url: "postgresql://rates:{{ vault_rates_db_password | urlencode }}@127.0.0.1:5001/rates"
%{ else ~}
        # No database VM: the one-VM layout, PostgreSQL on the app VM.
        rates_install_postgresql: true
        rates_db_password: "{{ vault_rates_db_password }}"
%{ endif ~}
      hosts:
%{ for name, h in app_hosts ~}
        ${name}:
          ansible_host: ${h.ssh}
          rates_node_address: ${h.address}
%{ endfor ~}
