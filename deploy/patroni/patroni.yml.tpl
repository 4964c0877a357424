# deploy/patroni/patroni.yml.tpl: one Patroni node of the rates cluster (tests/support/ha/stack.py fills
# the dollar-brace fields; docs/high-availability.md explains the timings).
scope: rates
name: ${name}

log:
  level: INFO
  format: '%(asctime)s %(levelname)s: %(message)s'

restapi:
  listen: ${host}:${rest_port}
  connect_address: ${host}:${rest_port}
  # Unsafe endpoints (POST /switchover, /failover, /restart, /reinitialize, PATCH /config)
  # need these credentials; GET /primary, /replica, /health stay open for the balancer.
  authentication:
    username: patroni
    password: '${rest_password}'

ctl:
  authentication:
    username: patroni
    password: '${rest_password}'

# The etcd v2 API (etcd 3.4 --enable-v2), not etcd3: Patroni 3.0.2's etcd3 update_leader puts
# the leader key unconditionally when its watch cache is stale, so a Patroni resumed after a
# freeze takes the key back from the node promoted meanwhile (whose acknowledged writes are then
# rewound away). The v2 update is a compare-and-swap on the key's value (prevValue=our name):
# the resumed node is refused and demotes. docs/high-availability.md, "Fencing".
etcd:
  hosts: ${etcd_hosts}
  protocol: http
  username: patroni
  password: '${etcd_password}'

bootstrap:
  dcs:
    # Write RTO after a hard crash ~ ttl (the leader lease runs out) + loop_wait (a replica
    # notices) + promotion + the balancer's check. Patroni needs loop_wait + 2 * retry_timeout
    # <= ttl; 5 = 1 + 2 * 2 keeps that with no slack to spare, and etcd on tmpfs plus one
    # leader update a second keeps the lease alive on two busy cores.
    ttl: ${ttl}
    loop_wait: ${loop_wait}
    retry_timeout: ${retry_timeout}
    # A primary whose postmaster crashed (Patroni alive) gets this long to restart in place
    # before a replica is promoted; synchronous mode makes that promotion lossless.
    primary_start_timeout: 5
    # A replica more than 1 MB of WAL behind never becomes the leader (with synchronous mode
    # the synchronous standby has every acknowledged commit anyway; this guards the async one).
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_connections: 200
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        archive_mode: 'on'
        archive_timeout: 60
        shared_buffers: 64MB
        log_line_prefix: '%m [%p] '
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8

postgresql:
  listen: ${host}:${pg_port}
  connect_address: ${host}:${pg_port}
  use_unix_socket: true
  data_dir: ${data_dir}
  bin_dir: ${bin_dir}
  pgpass: ${node_dir}/pgpass
  authentication:
    superuser:
      username: postgres
      password: '${pg_password}'
    replication:
      username: replicator
      password: '${repl_password}'
    rewind:
      username: postgres
      password: '${pg_password}'
  parameters:
    unix_socket_directories: '${node_dir}'
    # pgBackRest is the WAL archive; each node names its own data directory.
    archive_command: 'pgbackrest --config=${backrest_conf} --stanza=rates --pg1-path=${data_dir} archive-push "%p"'
  # No restore_command on the replicas: a replica that fetched the dead leader's last archived
  # segment (padded by a WAL switch the new leader never had) diverges and needs a pg_rewind,
  # a restart that cuts its readers. Replicas stream only (slots keep what they need).
  # A new replica clones the leader at once (a spread checkpoint would take minutes).
  basebackup:
    - checkpoint: fast
  pg_hba:
    - local all all trust
    - host replication replicator ${hba_net} scram-sha-256
    - host all all ${hba_net} scram-sha-256

watchdog:
  mode: ${watchdog_mode}
  device: /dev/watchdog
  safety_margin: -1

tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
