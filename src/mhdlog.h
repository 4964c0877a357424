/* mhdlog.h: the requests libmicrohttpd refuses itself (request line or headers over the
 * memory limit: 414, 431; malformed framing: 400) never reach a route, and 0.9.75 has no API
 * that reports them: its only trace is the error log line
 *     Error processing request (HTTP response code is %u ('%s')). Closing connection.
 * so rates_http_requests_total{route="other",status=...} reads the status from that text.
 * The parse is pinned three ways: tests/unit/test_mhdlog.c holds 0.9.75's wording,
 * tests/integration/httpd/test_abuse.py counts real refusals, and mhdlog_selfcheck() makes the
 * library in use refuse one request at start-up and compares what it logged with what it sent,
 * so a library whose wording changed is reported (an error line and a gauge), not silently
 * uncounted. */
#ifndef RATES_MHDLOG_H
#define RATES_MHDLOG_H

#include <stddef.h>

/* The HTTP status (100..599) a libmicrohttpd log line says it refused a request with, or 0
 * when the line says no such thing. msg: NUL-terminated, not retained. */
int mhdlog_refusal_status(const char *msg);

/* Runs a private daemon with no listening socket, hands it one end of a socket pair, sends a
 * request whose headers exceed the daemon's memory limit, and checks that the status in the
 * response equals the status mhdlog_refusal_status() read from the daemon's log line.
 * Bounded: at most ~2 s. Returns 0 when they agree; -1 with the reason in err otherwise. */
int mhdlog_selfcheck(char *err, size_t errcap);

#endif
