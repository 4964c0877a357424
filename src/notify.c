/* notify.c: the sd_notify datagram protocol, written here (a few lines) rather than linking
 * libsystemd, and the readiness pipe of a self-upgrade. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int upgrade_fd = -1; /* write end of the self-upgrade parent's pipe, or -1 */

void notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path && strlen(path) < sizeof socket_path)
        str_copy(socket_path, sizeof socket_path, path);
    const char *s = getenv("RATES_UPGRADE_READY_FD");
    if (s) {
        char *end;
        long fd = strtol(s, &end, 10);
        if (*end == '\0' && fd >= 3 && fd <= 65535 && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0)
            upgrade_fd = (int)fd;
        unsetenv("RATES_UPGRADE_READY_FD");
    }
}

int notify_send(const char *state)
{
    const char *path = socket_path;
    if (!*path)
        return 0;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: the name is not terminated */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(state) ? 1 : -1;
}

/* The self-upgrade parent passes the write end of a pipe; one byte means "serving". */
static int notify_upgrade_parent(void)
{
    if (upgrade_fd < 0)
        return 0;
    ssize_t n;
    do
        n = write(upgrade_fd, "R", 1);
    while (n < 0 && errno == EINTR);
    close(upgrade_fd);
    upgrade_fd = -1;
    return n == 1;
}

void notify_ready(void)
{
    int upgraded = notify_upgrade_parent();
    char msg[64];
    /* A replacement tells the service manager that it is now the main process. */
    if (upgraded)
        snprintf(msg, sizeof msg, "MAINPID=%ld\nREADY=1", (long)getpid());
    else
        snprintf(msg, sizeof msg, "READY=1");
    if (notify_send(msg) < 0)
        LOG_WARN("sd_notify READY failed: %s", strerror(errno));
}
