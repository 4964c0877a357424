#!/bin/sh
# tools/api/lint.sh: lints api/openapi.json with the pinned @redocly/cli (rules: redocly.yaml).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/setup.sh"
cd "$here"
exec ./node_modules/.bin/redocly lint --config redocly.yaml --format=stylish ../../api/openapi.json
