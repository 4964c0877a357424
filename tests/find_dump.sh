# tests/find_dump.sh (sourced by scripts/test.sh and scripts/check.sh): sets and exports
# RATES_DUMP to the dump when it is not set already: db/rates.sql, else ../shared/db/rates.sql
# (CI's copy beside the clone). Empty when there is none; the tests that need it then skip.
if [ -z "${RATES_DUMP:-}" ]; then
    for _d in db/rates.sql ../shared/db/rates.sql; do
        if [ -f "$_d" ]; then RATES_DUMP=$(cd "$(dirname "$_d")" && pwd)/$(basename "$_d"); break; fi
    done
fi
export RATES_DUMP="${RATES_DUMP:-}"
[ -n "$RATES_DUMP" ] || echo "rates: no dump found (RATES_DUMP): tests that need its data are skipped"
