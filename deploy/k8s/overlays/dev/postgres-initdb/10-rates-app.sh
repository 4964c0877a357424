#!/bin/sh
# Run once by the postgres image's entrypoint (/docker-entrypoint-initdb.d), when it initialises
# an empty data directory, like the owner's password: creates rates_app, the least-privilege role
# ratesd connects as, with the password of the Secret rates-postgres (key rates-app-password),
# before the first `ratesd migrate`; migration 0005 then finds the role and grants its rights.
# psql reads the password itself (the backquotes run cat with the path only) and quotes it with
# format(%L): it is on no command line.
set -eu
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-password <<'EOF'
\set pw `cat /run/secrets/postgres/rates-app-password`
SELECT pg_catalog.format('CREATE ROLE rates_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
    ' NOREPLICATION NOBYPASSRLS PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_app') \gexec
EOF
echo "10-rates-app.sh: role rates_app created"
