#cloud-config
# First boot of a rates database member: only what Ansible cannot do before the host is up.
# The data volume (the one disk besides the root disk, attached by Terraform a moment after
# boot) is formatted once, if blank, and mounted at ${data_mount} by UUID; the
# PostgreSQL, Patroni, etcd and pgBackRest packages and their configuration come from the
# playbook (deploy/ansible, group rates_db). Rendered by Terraform templatefile().
package_update: true
packages:
  - python3
  - python3-apt
write_files:
  - path: /usr/local/sbin/rates-data-volume
    permissions: "0755"
    content: |
      #!/bin/sh
      # Waits (bounded: 5 minutes) for the data disk, formats it only when it has no
      # filesystem, and mounts it by UUID (nofail: a missing volume never blocks boot).
      set -eu
      root=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
      i=0
      while :; do
          disk=$(lsblk -dno NAME,TYPE | awk -v r="$root" '$2 == "disk" && $1 != r {print $1; exit}')
          [ -n "$disk" ] && break
          i=$((i + 1))
          [ "$i" -lt 300 ] || { echo "rates: no data volume after 300 s" >&2; exit 1; }
          sleep 1
      done
      dev=/dev/$disk
      blkid "$dev" >/dev/null 2>&1 || mkfs.ext4 -q -L rates-data "$dev"
      uuid=$(blkid -s UUID -o value "$dev")
      mkdir -p ${data_mount}
      grep -q "UUID=$uuid" /etc/fstab || echo "UUID=$uuid ${data_mount} ext4 defaults,noatime,nofail 0 2" >>/etc/fstab
      mountpoint -q ${data_mount} || mount ${data_mount}
runcmd:
  - [/usr/local/sbin/rates-data-volume]
final_message: "rates db member: data volume mounted after $UPTIME s"
