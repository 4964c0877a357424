# shellcheck shell=sh disable=SC2154 # $root comes from the script that sources this file
# deploy/ci/podman_env.sh: sourced (not run) by the podman checks (deploy/ci/ansible_podman.sh,
# deploy/ci/ha_deploy_check.sh, deploy/debian/install_purge.sh): one private podman under a
# check's directory, and its teardown. Needs $root (the repository's top directory).
#   podman_env_use DIR     exports CONTAINERS_CONF / CONTAINERS_STORAGE_CONF of DIR
#   podman_env_setup DIR   writes them: runtime runc on cgroupfs (crun fails on this kernel's
#                          hybrid cgroups), default_ulimits at the hard limits (runc cannot
#                          raise them here), storage, runroot and network config in DIR; saves
#                          the host's network state for the teardown
#   podman_env_teardown DIR  prunes everything (the caller removes its own containers,
#                          networks and volumes first), unmounts what is left under DIR,
#                          restores the network state, removes DIR
podman_env_use() {
    export CONTAINERS_CONF="$1/containers.conf" CONTAINERS_STORAGE_CONF="$1/storage.conf"
}
podman_env_setup() {
    _pe_dir=$1
    mkdir -p "$_pe_dir/storage" "$_pe_dir/run" "$_pe_dir/net" "$_pe_dir/tmp"
    # The hard limits (POSIX sh has no ulimit -H: ask Python).
    _pe_nofile=$(/usr/bin/python3 -c 'import resource as r; h=r.getrlimit(r.RLIMIT_NOFILE)[1]; print("unlimited" if h==r.RLIM_INFINITY else h)')
    _pe_nproc=$(/usr/bin/python3 -c 'import resource as r; h=r.getrlimit(r.RLIMIT_NPROC)[1]; print("unlimited" if h==r.RLIM_INFINITY else h)')
    [ "$_pe_nofile" = unlimited ] && _pe_nofile=1048576
    # nproc: podman sets one when none is given (above what runc may set here); measured on
    # this kernel, anything above 32768 fails with "error setting rlimit type 6": cap it there.
    if [ "$_pe_nproc" = unlimited ] || [ "$_pe_nproc" -gt 32768 ]; then _pe_nproc=32768; fi
    cat >"$_pe_dir/containers.conf" <<EOC
[containers]
default_ulimits = ["nofile=$_pe_nofile:$_pe_nofile", "nproc=$_pe_nproc:$_pe_nproc"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$_pe_dir/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$_pe_dir/net"
EOC
    cat >"$_pe_dir/storage.conf" <<EOC
[storage]
driver = "overlay"
graphroot = "$_pe_dir/storage"
runroot = "$_pe_dir/run"
EOC
    podman_env_use "$_pe_dir"
    /usr/bin/python3 "$root/deploy/ci/netstate.py" save "$_pe_dir/netstate.json"
}
podman_env_teardown() {
    _pe_dir=$1
    podman system prune -a -f >/dev/null 2>&1
    grep " $_pe_dir/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    [ -f "$_pe_dir/netstate.json" ] && /usr/bin/python3 "$root/deploy/ci/netstate.py" restore "$_pe_dir/netstate.json"
    rm -rf "$_pe_dir"
}
