#!/bin/sh
# deploy/compose/ha/patroni/post_bootstrap.sh URL: Patroni runs it once, on the node that
# bootstraps the cluster, with a superuser connection URL (the compose ha profile's nodes and
# the Ansible patroni role, which installs this file and sets the variables below). Creates the owner role (the one
# rates-init migrates as: LOGIN CREATEROLE, not a superuser; its password from
# $RATES_HA_OWNER_PASSWORD_FILE) and its database, and gives it what docs/security.md ("When
# the migrating role is not a superuser") says a non-superuser migrator lacks: schema public
# of that database (so 0007 can revoke PUBLIC's CREATE on 13) and membership in rates_owner,
# the NOLOGIN owner of the SECURITY DEFINER functions (so 0007 can give them to it).
set -eu
url=$1
user=${POSTGRES_USER:-rates}
db=${POSTGRES_DB:-rates}
# psql reads the password itself (the backquoted command's argv holds only the file's name):
# on psql's command line it would show in `ps`.
[ -r "${RATES_HA_OWNER_PASSWORD_FILE:?}" ] || { echo "ha-post-bootstrap: cannot read $RATES_HA_OWNER_PASSWORD_FILE" >&2; exit 1; }
export RATES_HA_OWNER_PASSWORD_FILE
psql -X -q -v ON_ERROR_STOP=1 -v u="$user" -v db="$db" -d "$url" <<'SQL'
\set pw `head -n1 "$RATES_HA_OWNER_PASSWORD_FILE"`
SELECT format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', :'u', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'u')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT 'CREATE ROLE rates_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rates_owner') \gexec
SELECT format('GRANT rates_owner TO %I', :'u') \gexec
\c :db
SELECT format('ALTER SCHEMA public OWNER TO %I', :'u') \gexec
SQL
echo "ha-post-bootstrap: role $user (member of rates_owner, owner of schema public) and database $db created"
