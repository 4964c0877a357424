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
      hosts:
%{ for name, h in app_hosts ~}
        ${name}:
          ansible_host: ${h.ssh}
          rates_node_address: ${h.address}
%{ endfor ~}
