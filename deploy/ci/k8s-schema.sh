#!/bin/sh
# k8s-schema.sh RENDERED.yaml...: validates every rendered object offline against the
# Kubernetes OpenAPI schemas shipped in the npm package kubernetes-models (and
# @kubernetes-models/prometheus-operator for ServiceMonitor/PrometheusRule). The packages are
# installed once into /var/cache/rates-ci/k8s-models. Kinds without a model (CloudNativePG's
# Cluster) are reported and checked by check_k8s.py instead. Exit 77: npm install impossible.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cache=/var/cache/rates-ci/k8s-models
if [ ! -d "$cache/node_modules/kubernetes-models" ] || [ ! -d "$cache/node_modules/@kubernetes-models/prometheus-operator" ]; then
    mkdir -p "$cache"
    (cd "$cache" && timeout 300 npm install --no-audit --no-fund --prefix . \
        kubernetes-models@4 @kubernetes-models/prometheus-operator@6) || exit 77
fi
cp "$here/k8s-validate.mjs" "$cache/k8s-validate.mjs" || exit 1
fail=0
for f in "$@"; do
    echo "== $f"
    /usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))' "$f" >"$f.json" || exit 1
    node "$cache/k8s-validate.mjs" "$f.json" || fail=1
done
exit $fail
