/* mhdlog.c: reading libmicrohttpd's refusal log lines, and checking at start-up that the
 * library in use still words them so (mhdlog.h). */
#include "mhdlog.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define MHDLOG_PREFIX "Error processing request (HTTP response code is "
#define MHDLOG_CHECK_MEMORY 4096 /* the private daemon's per-connection memory limit */
#define MHDLOG_CHECK_TIMEOUT_MS 2000

int mhdlog_refusal_status(const char *msg)
{
    const char *p = msg ? strstr(msg, MHDLOG_PREFIX) : NULL;
    if (!p)
        return 0;
    p += sizeof MHDLOG_PREFIX - 1;
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (*p < '0' || *p > '9')
            return 0;
        status = status * 10 + (*p - '0');
    }
    /* exactly three digits, then the wording's " ('" */
    if (strncmp(p, " ('", 3) != 0 || status < 100 || status > 599)
        return 0;
    return status;
}

static void mhdlog_check_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int st = mhdlog_refusal_status(msg);
    if (st)
        atomic_store((atomic_int *)cls, st);
}

static enum MHD_Result mhdlog_check_handler(void *cls, struct MHD_Connection *c, const char *url,
                                            const char *method, const char *version,
                                            const char *data, size_t *size, void **ctx)
{
    (void)cls, (void)c, (void)url, (void)method, (void)version, (void)data, (void)size;
    (void)ctx;
    return MHD_NO; /* never reached: the headers are refused before any handler runs */
}

/* Reads the status of the response on fd, or 0 (closed, malformed, or the time is up). */
static int mhdlog_read_status(int fd)
{
    char buf[256];
    size_t have = 0;
    uint64_t t0 = clock_mono_ns();
    for (int rounds = 0; rounds < 64 && have < sizeof buf - 1; rounds++) {
        long left = MHDLOG_CHECK_TIMEOUT_MS - (long)((clock_mono_ns() - t0) / 1000000);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        int st = 0;
        if (strstr(buf, "\r\n") && sscanf(buf, "HTTP/1.%*1[01] %3d ", &st) == 1)
            return st;
    }
    return 0;
}

int mhdlog_selfcheck(char *err, size_t errcap)
{
    atomic_int logged = 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errcap, "socketpair: %s", strerror(errno));
        return -1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
            MHD_USE_NO_LISTEN_SOCKET,
        0, NULL, NULL, mhdlog_check_handler, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhdlog_check_log,
        &logged, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MHDLOG_CHECK_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, 2u, MHD_OPTION_END);
    if (!d) {
        close(sv[0]);
        close(sv[1]);
        snprintf(err, errcap, "cannot start a private libmicrohttpd daemon");
        return -1;
    }
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = -1;
    if (MHD_add_connection(d, sv[0], (const struct sockaddr *)&peer, sizeof peer) != MHD_YES) {
        /* MHD has closed sv[0] (it does on failure too) */
        snprintf(err, errcap, "MHD_add_connection failed");
        goto out;
    }
    char req[MHDLOG_CHECK_MEMORY * 2];
    int head = snprintf(req, sizeof req, "GET /selfcheck HTTP/1.1\r\nHost: selfcheck\r\nX-Pad: ");
    memset(req + head, 'a', sizeof req - (size_t)head);
    size_t off = 0;
    while (off < sizeof req) { /* a socket pair buffers more than this; stop if it does not */
        ssize_t n = send(sv[1], req + off, sizeof req - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    int sent = mhdlog_read_status(sv[1]);
    int got = atomic_load(&logged);
    if (sent == 0)
        snprintf(err, errcap,
                 "libmicrohttpd %s sent no refusal for a header block over its "
                 "memory limit",
                 MHD_get_version());
    else if (got != sent)
        snprintf(err, errcap, "libmicrohttpd %s refused with %d but its log line %s",
                 MHD_get_version(), sent,
                 got ? "names another status" : "no longer reads \"" MHDLOG_PREFIX "NNN ('\"");
    else
        rc = 0;
out:
    MHD_stop_daemon(d);
    close(sv[1]);
    return rc;
}
