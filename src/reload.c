/* reload.c: SIGHUP reload from the option table (config_walk): apply what is reloadable. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"

typedef int (*reload_apply_fn)(const struct config *fresh, char *err, size_t errcap);

static int reload_log_level(const struct config *fresh, char *err, size_t errcap)
{
    int level = log_level_parse(fresh->log_level);
    if (level < 0) {
        snprintf(err, errcap, "unknown log level %s", fresh->log_level);
        return -1;
    }
    log_set_level(level);
    return 0;
}

/* Tokens are swapped atomically: a request holds either the old or the new set. */
static int reload_ingest_tokens(const struct config *fresh, char *err, size_t errcap)
{
    return auth_set_tokens(fresh->ingest_tokens, fresh->ingest_open, err, errcap);
}

/* One applier per option flagged OPT_RELOAD in src/config.c; a flagged option without one is
 * reported at every reload (so a new flag cannot silently do nothing). */
static const struct {
    const char *name;
    reload_apply_fn apply;
} reload_appliers[] = {
    { "log_level", reload_log_level },
    { "ingest_tokens", reload_ingest_tokens },
};

struct reload_pass {
    const struct config *fresh;
    char applied[512];
    char failed[512];
    int restart;
};

static void reload_append(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? "," : "", name);
}

static void reload_option(const char *name, bool reloadable, bool changed, void *arg)
{
    struct reload_pass *p = arg;
    if (!reloadable) {
        if (changed) {
            LOG_WARN("reload: %s changed but is not reloadable: restart ratesd to apply it", name);
            p->restart++;
        }
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(reload_appliers); i++) {
        if (strcmp(reload_appliers[i].name, name) != 0)
            continue;
        char err[512];
        if (reload_appliers[i].apply(p->fresh, err, sizeof err) != 0) {
            LOG_ERROR("reload: %s refused, keeping the previous value: %s", name, err);
            reload_append(p->failed, sizeof p->failed, name);
        } else {
            reload_append(p->applied, sizeof p->applied, name);
        }
        return;
    }
    LOG_ERROR("reload: %s is marked reloadable but has no applier in src/reload.c", name);
    reload_append(p->failed, sizeof p->failed, name);
}

int reload_run(const struct config *running, int argc, char **argv, config_getenv_fn env)
{
    struct config fresh;
    char err[1024];
    if (config_load(&fresh, argc, (const char *const *)argv, env, err, sizeof err) != CONFIG_OK) {
        LOG_ERROR("reload refused, keeping the running configuration: %s", err);
        config_free(&fresh); /* what the layers set before the error */
        return -1;
    }
    struct reload_pass p = { .fresh = &fresh };
    config_walk(&fresh, running, reload_option, &p);
    LOG_INFO("reloaded: applied=%s%s%s restart_needed=%d", p.applied[0] ? p.applied : "none",
             p.failed[0] ? " refused=" : "", p.failed, p.restart);
    config_free(&fresh);
    return p.restart;
}
