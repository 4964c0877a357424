#!/bin/sh
# dev-watch: the dev profile's loop. Builds the mounted source (/src) into /tmp/build, runs
# ratesd, and on any change under src/, db/migrations/ or the Makefile rebuilds and restarts
# it (SIGTERM: it drains). A failed build keeps the last good binary running.
set -u
cd /src || exit 1
build=${DEV_BUILD_DIR:-/tmp/build}
pid=""
start() {
    if make -s -j"$(nproc)" BUILD="$build" all; then
        if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
        "$build/ratesd" migrate || true
        "$build/ratesd" serve &
        pid=$!
        echo "dev-watch: ratesd running (pid $pid)"
    else
        echo "dev-watch: build failed; keeping the previous ratesd" >&2
    fi
}
stop() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; exit 0; }
trap stop TERM INT
start
while :; do
    # Bounded wait so a missed event is caught by the next poll (bind mounts may not notify).
    inotifywait -q -r -t 5 -e close_write,create,delete,move src db/migrations Makefile >/dev/null 2>&1
    rc=$?
    if [ "$rc" = 0 ] || [ -n "$(find src db/migrations Makefile -newer "$build/ratesd" 2>/dev/null | head -1)" ]; then
        sleep 0.3
        start
    fi
done
