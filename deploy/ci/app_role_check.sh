# shellcheck shell=sh
# deploy/ci/app_role_check.sh: sourced by ansible_podman.sh and ha_deploy_check.sh.
# app_role_check PORT PSQL...: least privilege as deployed. PSQL... is a psql command line
# (without -c) on the rates database as any role that can read pg_stat_activity. Passes when
# every ratesd session is rates_app's (never the owner's) and every SECURITY DEFINER function
# belongs to rates_owner. The pools connect on first use, so one /rates through 127.0.0.1:PORT
# first (the health monitor and the cache listener are always connected).
app_role_check() {
    _port=$1
    shift
    curl -s -o /dev/null "http://127.0.0.1:$_port/rates?date_from=2021-01-01&date_to=2021-01-02&orig_code=CNGGZ&dest_code=EETLL"
    _roles=$("$@" -X -At -c \
        "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE application_name LIKE 'ratesd%'
         UNION ALL SELECT count(*)::text FROM pg_proc WHERE prosecdef AND proowner <> 'rates_owner'::regrole")
    echo "ratesd connects as: $(echo "$_roles" | head -1); definer functions not owned by rates_owner: $(echo "$_roles" | tail -1)"
    [ "$_roles" = "$(printf 'rates_app\n0')" ] || { echo "ratesd must serve as rates_app"; return 1; }
}
