#!/bin/sh
# deploy/k8s/overlays/dev/make-secrets.sh: the dev overlay's Secrets as files in secrets/ beside
# this script (git-ignored; the overlay's secretGenerator reads them, so nothing secret is in
# git). Run it once before `kubectl apply -k deploy/k8s/overlays/dev` (or kustomize): without the
# files the overlay does not build.
#   postgres-password    the owner rates (POSTGRES_PASSWORD_FILE of the PostgreSQL StatefulSet)
#   rates-app-password   rates_app, created with it by the StatefulSet's init script
#   owner-uri            the owner's URL: the migrate init container only
#   app-uri              rates_app's URL: ratesd (the least-privilege role, migration 0005)
#   ingest-tokens        NAME:TOKEN for POST /batches
# The directory is 0700 and every file 0600. Passwords are random hex (URL-safe); a password
# file that exists is kept, since the PostgreSQL volume keeps the passwords it was initialised
# with (to start over: delete the PVC data-rates-postgres-0 and this directory); the URL files
# are rewritten from the passwords each run.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/secrets
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
rand() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
# keep NAME VALUE: writes the file only when it does not exist yet.
keep() {
    [ -s "$dir/$1" ] || printf '%s\n' "$2" >"$dir/$1"
}
# put NAME VALUE: (re)writes the file (printf is a builtin: the value is on no command line).
put() {
    printf '%s\n' "$2" >"$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
}
keep postgres-password "$(rand)"
keep rates-app-password "$(rand)"
keep ingest-tokens "dev:$(rand)"
# The Service rates-postgres of postgres.yaml, its POSTGRES_USER and POSTGRES_DB.
put owner-uri "postgresql://rates:$(cat "$dir/postgres-password")@rates-postgres:5432/rates"
put app-uri "postgresql://rates_app:$(cat "$dir/rates-app-password")@rates-postgres:5432/rates"
chmod 0600 "$dir"/*
echo "make-secrets.sh: $dir: postgres-password rates-app-password owner-uri app-uri ingest-tokens (0600)"
