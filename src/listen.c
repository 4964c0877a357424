/* listen.c: listening sockets, bound or inherited. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

int listen_open(const char *addr, char *err, size_t errcap)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        snprintf(err, errcap, "listen address '%s' is not HOST:PORT", addr);
        return -1;
    }
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= sizeof host) {
        snprintf(err, errcap, "listen address '%s' is too long", addr);
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    char *h = host;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h[hlen - 1] = '\0';
        h++;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, errcap, "cannot resolve listen address '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
            break;
        snprintf(err, errcap, "cannot listen on '%s': %s", addr, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    return fd;
}

int listen_inherited(int *fds, int max)
{
    const char *pid = getenv("LISTEN_PID");
    const char *n = getenv("LISTEN_FDS");
    if (!pid || !n || atol(pid) != (long)getpid())
        return 0;
    int count = atoi(n);
    if (count < 0)
        count = 0;
    if (count > max)
        count = max;
    for (int i = 0; i < count; i++) {
        fds[i] = 3 + i;
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        int fl = fcntl(fds[i], F_GETFL);
        fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return count;
}

int listen_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}
