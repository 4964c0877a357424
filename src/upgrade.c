/* upgrade.c: the self-upgrade (SIGUSR2): fork+exec our own path with the listening sockets
 * inherited, and wait for the new process to say it serves. */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define UPGRADE_PATH_MAX 4096
#define UPGRADE_ENV_MAX 4096 /* environment entries passed on */
#define UPGRADE_FD_LOW 10    /* sources are moved above the target fds before dup2 */

extern char **environ;

static char exe_path[UPGRADE_PATH_MAX];
static char **saved_argv;

void upgrade_init(int argc, char **argv)
{
    (void)argc;
    saved_argv = argv;
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
}

/* Async-signal-safe decimal formatting (used between fork and exec). */
static void upgrade_fmt_pid(char *out, size_t cap, long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < sizeof tmp);
    size_t i = 0;
    while (n > 0 && i + 1 < cap)
        out[i++] = tmp[--n];
    out[i] = '\0';
}

static bool upgrade_env_skipped(const char *e)
{
    static const char *const drop[] = { "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
                                        "RATES_UPGRADE_READY_FD=" };
    for (size_t i = 0; i < ARRAY_LEN(drop); i++)
        if (strncmp(e, drop[i], strlen(drop[i])) == 0)
            return true;
    return false;
}

/* The child's environment: ours minus stale LISTEN_* plus the new ones. pidvar is filled in
 * the child. Returns a malloc'd array (entries point into environ or the given buffers). */
static char **upgrade_env(char *fds, char *names, char *ready, char *pidvar)
{
    size_t n = 0;
    while (environ[n] && n < UPGRADE_ENV_MAX)
        n++;
    char **env = calloc(n + 5, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!upgrade_env_skipped(environ[i]))
            env[k++] = environ[i];
    env[k++] = fds;
    env[k++] = names;
    env[k++] = ready;
    env[k++] = pidvar;
    env[k] = NULL;
    return env;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void upgrade_child(int pub_fd, int admin_fd, int ready_w, int ready_target, char **env,
                          char *pidvar, size_t pidcap)
{
    int p = fcntl(pub_fd, F_DUPFD, UPGRADE_FD_LOW);
    int a = admin_fd >= 0 ? fcntl(admin_fd, F_DUPFD, UPGRADE_FD_LOW) : -1;
    int r = fcntl(ready_w, F_DUPFD, UPGRADE_FD_LOW);
    if (p < 0 || (admin_fd >= 0 && a < 0) || r < 0)
        _exit(126);
    if (dup2(p, 3) < 0 || (a >= 0 && dup2(a, 4) < 0) || dup2(r, ready_target) < 0)
        _exit(126);
    close(p);
    if (a >= 0)
        close(a);
    close(r);
    size_t plen = strlen("LISTEN_PID=");
    upgrade_fmt_pid(pidvar + plen, pidcap - plen, (long)getpid());
    /* The signal mask stays: a stop signal that reaches the new process before it serves
     * stays pending until its main loop takes it, instead of killing it half started. */
    execve(exe_path, saved_argv, env);
    _exit(127);
}

/* Collects the child's exit into err. It gets UPGRADE_REAP_GRACE_MS to exit by itself, then
 * SIGKILL: the old process must never hang on a new one that does not stop. */
#define UPGRADE_REAP_GRACE_MS 2000
static void upgrade_reap(pid_t pid, char *err, size_t errcap, const char *what)
{
    int st = 0;
    pid_t r = 0;
    for (int i = 0; i < UPGRADE_REAP_GRACE_MS / 10 && r == 0; i++) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == 0)
            poll(NULL, 0, 10);
    }
    if (r == 0) {
        kill(pid, SIGKILL);
        r = waitpid(pid, &st, 0);
    }
    if (r != pid)
        snprintf(err, errcap, "%s (waitpid: %s)", what, strerror(errno));
    else if (WIFEXITED(st))
        snprintf(err, errcap, "%s: it exited with status %d (its log lines say why)", what,
                 WEXITSTATUS(st));
    else
        snprintf(err, errcap, "%s: it was killed by signal %d", what, WTERMSIG(st));
}

/* Waits for the ready byte. The child is reaped on every path but UPGRADE_READY. */
static int upgrade_wait(pid_t pid, int ready_r, long timeout_ms, const sigset_t *sigs, int *sig,
                        char *err, size_t errcap)
{
    uint64_t deadline = clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (clock_mono_ns() < deadline) {
        struct pollfd pfd = { .fd = ready_r, .events = POLLIN };
        int pr = poll(&pfd, 1, 50);
        if (pr > 0) {
            char c;
            ssize_t n = read(ready_r, &c, 1);
            if (n == 1)
                return UPGRADE_READY;
            if (n == 0) { /* every write end closed: exec failed or the child exited */
                upgrade_reap(pid, err, errcap, "the new process did not start");
                return UPGRADE_FAILED;
            }
        }
        struct timespec zero = { 0, 0 };
        int s = sigtimedwait(sigs, NULL, &zero);
        if (s == SIGTERM || s == SIGINT) {
            *sig = s;
            kill(pid, SIGTERM);
            upgrade_reap(pid, err, errcap, "upgrade aborted by a stop signal");
            return UPGRADE_ABORTED;
        }
        if (s > 0 && s != SIGCHLD)
            LOG_WARN("upgrade: signal %d ignored while waiting for the new process", s);
    }
    kill(pid, SIGKILL);
    char why[128];
    snprintf(why, sizeof why, "the new process was not ready within %ld ms and was killed",
             timeout_ms);
    upgrade_reap(pid, err, errcap, why);
    return UPGRADE_FAILED;
}

int upgrade_run(int pub_fd, int admin_fd, long timeout_ms, const sigset_t *sigs, pid_t *child,
                int *sig, char *err, size_t errcap)
{
    if (!exe_path[0] || !saved_argv) {
        snprintf(err, errcap, "the executable's path is unknown");
        return UPGRADE_FAILED;
    }
    if (pub_fd < 0) {
        snprintf(err, errcap, "no public listening socket to hand over");
        return UPGRADE_FAILED;
    }
    if (access(exe_path, X_OK) != 0) {
        snprintf(err, errcap, "cannot execute %s: %s", exe_path, strerror(errno));
        return UPGRADE_FAILED;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        return UPGRADE_FAILED;
    }
    int nfds = admin_fd >= 0 ? 2 : 1;
    int ready_target = 3 + nfds;
    char fds[32], names[64], ready[64], pidvar[40] = "LISTEN_PID=";
    snprintf(fds, sizeof fds, "LISTEN_FDS=%d", nfds);
    snprintf(names, sizeof names, "LISTEN_FDNAMES=%s", nfds == 2 ? "public:admin" : "public");
    snprintf(ready, sizeof ready, "RATES_UPGRADE_READY_FD=%d", ready_target);
    char **env = upgrade_env(fds, names, ready, pidvar);
    if (!env) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errcap, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0)
        upgrade_child(pub_fd, admin_fd, pipefd[1], ready_target, env, pidvar, sizeof pidvar);
    free(env);
    close(pipefd[1]);
    LOG_INFO("upgrade: started %s as pid %ld; waiting up to %ld ms for it to serve", exe_path,
             (long)pid, timeout_ms);
    int rc = upgrade_wait(pid, pipefd[0], timeout_ms, sigs, sig, err, errcap);
    close(pipefd[0]);
    if (rc == UPGRADE_READY)
        *child = pid;
    return rc;
fail:
    free(env);
    close(pipefd[0]);
    close(pipefd[1]);
    return UPGRADE_FAILED;
}
