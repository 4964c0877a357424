/* acceptor.c: one accept(2) thread per listener, handing connections to MHD (acceptor.h). */
#include "acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

#define ACCEPTOR_BURST 64    /* accepts per wake-up before the stop signal is looked at */
#define ACCEPTOR_PAUSE_MS 50 /* after a resource error (EMFILE, ENOBUFS, ...) */
#define ACCEPTOR_LOG_EVERY_NS (1000ull * 1000000ull)

struct acceptor {
    int listen_fd;          /* borrowed */
    int stop_fd;            /* owned: an eventfd, readable once acceptor_stop has begun */
    struct MHD_Daemon *mhd; /* borrowed */
    pthread_t thread;
    uint64_t last_log_ns; /* the thread's own: rate limit of the error log */
};

/* Errors of accept(2) that concern one connection only (Linux passes pending network errors
 * of the new socket through accept): take the next one. */
static bool acceptor_transient(int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall refused it */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

/* Waits up to ms (-1: for ever) for the listener (unless only_stop) or the stop signal.
 * Returns true when the acceptor must stop. */
static bool acceptor_wait(struct acceptor *a, int ms, bool only_stop)
{
    struct pollfd p[2] = { { .fd = a->stop_fd, .events = POLLIN },
                           { .fd = a->listen_fd, .events = POLLIN } };
    int n = poll(p, only_stop ? 1 : 2, ms);
    return n > 0 && (p[0].revents & POLLIN);
}

/* A resource or listener error: logged at most once a second, then a pause so that the
 * loop does not spin while the backlog keeps the listener readable. */
static bool acceptor_pause(struct acceptor *a, int e)
{
    uint64_t now = clock_mono_ns();
    if (now - a->last_log_ns >= ACCEPTOR_LOG_EVERY_NS) {
        a->last_log_ns = now;
        LOG_WARN("accept on listener %d: %s; pausing %d ms", a->listen_fd, strerror(e),
                 ACCEPTOR_PAUSE_MS);
    }
    return acceptor_wait(a, ACCEPTOR_PAUSE_MS, true);
}

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    for (;;) {
        if (acceptor_wait(a, -1, false))
            return NULL;
        for (int i = 0; i < ACCEPTOR_BURST; i++) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            int fd =
                accept4(a->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                if (e == EAGAIN || e == EWOULDBLOCK)
                    break; /* drained (or another process took it: an upgrade's child) */
                if (acceptor_transient(e))
                    continue;
                if (acceptor_pause(a, e))
                    return NULL;
                break;
            }
            /* MHD owns fd now; on refusal (limits, accept policy) it has closed it. */
            (void)MHD_add_connection(a->mhd, fd, (const struct sockaddr *)&ss, len);
        }
    }
}

struct acceptor *acceptor_start(int listen_fd, struct MHD_Daemon *d, char *err, size_t errcap)
{
    struct acceptor *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    a->listen_fd = listen_fd;
    a->mhd = d;
    a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->stop_fd < 0) {
        snprintf(err, errcap, "acceptor: eventfd: %s", strerror(errno));
        free(a);
        return NULL;
    }
    /* A blocking listener would leave the thread stuck in accept when another process
     * (an upgrade's child) takes the connection between poll and accept. */
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        snprintf(err, errcap, "acceptor: listener %d: %s", listen_fd, strerror(errno));
        close(a->stop_fd);
        free(a);
        return NULL;
    }
    int rc = pthread_create(&a->thread, NULL, acceptor_main, a);
    if (rc != 0) {
        snprintf(err, errcap, "acceptor: thread: %s", strerror(rc));
        close(a->stop_fd);
        free(a);
        return NULL;
    }
    return a;
}

void acceptor_stop(struct acceptor *a)
{
    if (!a)
        return;
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(a->stop_fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    pthread_join(a->thread, NULL);
    close(a->stop_fd);
    free(a);
}
