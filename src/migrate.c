/* migrate.c: applies db/migrations in order, each in its own transaction with a lock_timeout,
 * recorded in schema_migrations; an advisory lock makes concurrent runs take turns. A
 * no-transaction migration's CREATE INDEX CONCURRENTLY is recorded only once its index is
 * valid (pg_index.indisvalid): an invalid leftover of a failed build is dropped and rebuilt. */
#include "migrate.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

#define MIGRATE_LOCK_KEY_STR "72730001"
#define MIGRATE_LOCK_WAIT_S 120
#define MIGRATE_RETRIES 5
#define MIGRATE_NAME_MAX 192 /* a schema-qualified index name in a migration */

int migrate_required_version(void)
{
    int v = 0;
    for (int i = 0; i < migrations_count; i++)
        if (migrations[i].version > v)
            v = migrations[i].version;
    return v;
}

static int migrate_exec(PGconn *pg, const char *sql, char *err, size_t errcap, char *sqlstate)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (sqlstate)
            str_copy(sqlstate, 6, state ? state : "");
        db_error_copy(NULL, r, err, errcap);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

int migrate_current_version(PGconn *pg, char *err, size_t errcap)
{
    PGresult *r = PQexec(pg, "SELECT to_regclass('public.schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_copy(NULL, r, err, errcap);
        PQclear(r);
        return -1;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 0;
    r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM public.schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_copy(NULL, r, err, errcap);
        PQclear(r);
        return -1;
    }
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int migrate_is_applied(PGconn *pg, int version, char *err, size_t errcap)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *params[1] = { v };
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM public.schema_migrations WHERE version = $1", 1,
                               NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_copy(NULL, r, err, errcap);
        PQclear(r);
        return -1;
    }
    int applied = PQntuples(r) > 0;
    PQclear(r);
    return applied;
}

static int migrate_record(PGconn *pg, const struct migration *m, char *err, size_t errcap)
{
    char v[16];
    snprintf(v, sizeof v, "%d", m->version);
    const char *params[2] = { v, m->name };
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO public.schema_migrations (version, name) "
                               "VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
                               2, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        db_error_copy(NULL, r, err, errcap);
    PQclear(r);
    return rc;
}

/* The index a CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ... statement builds,
 * copied into out (as written: unquoted, maybe schema-qualified); false for other statements
 * (comment lines before the statement are skipped). */
static bool migrate_cic_name(const char *stmt, char *out, size_t cap)
{
    static const char *const words[] = { "CREATE", "UNIQUE", "INDEX", "CONCURRENTLY",
                                         "IF",     "NOT",    "EXISTS" };
    const char *p = stmt;
    for (;;) { /* skip blanks and "--" comment lines */
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (p[0] != '-' || p[1] != '-')
            break;
        p += strcspn(p, "\n");
    }
    bool concurrently = false;
    size_t w = 0;
    for (int n = 0; n < 16; n++) { /* bounded: at most the seven words, then the name */
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        size_t len = strcspn(p, " \t\r\n(;");
        if (len == 0)
            return false;
        bool matched = false;
        for (size_t k = w; k < sizeof words / sizeof words[0]; k++) {
            if (strlen(words[k]) == len && strncasecmp(p, words[k], len) == 0) {
                if (k == 0 && w != 0)
                    break;
                concurrently |= k == 3;
                w = k + 1;
                matched = true;
                break;
            }
        }
        if (!matched) {
            /* The name: after CREATE ... INDEX; "ON" means the index has no name. */
            if (w < 3 || !concurrently || len >= cap || (len == 2 && strncasecmp(p, "ON", 2) == 0))
                return false;
            for (size_t i = 0; i < len; i++)
                if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                      (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '.'))
                    return false;
            memcpy(out, p, len);
            out[len] = '\0';
            return true;
        }
        if (w == 1 && n != 0)
            return false;
        p += len;
    }
    return false;
}

/* Whether the index name is valid: 1 valid, 0 invalid (a failed concurrent build left it),
 * 2 no such index, -1 error. */
static int migrate_index_state(PGconn *pg, const char *name, char *err, size_t errcap)
{
    const char *params[1] = { name };
    PGresult *r = PQexecParams(pg,
                               "SELECT indisvalid FROM pg_catalog.pg_index"
                               " WHERE indexrelid = pg_catalog.to_regclass($1)",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error_copy(NULL, r, err, errcap);
        PQclear(r);
        return -1;
    }
    int state = PQntuples(r) == 0 ? 2 : strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 1 : 0;
    PQclear(r);
    return state;
}

static int migrate_drop_index(PGconn *pg, const char *name, char *err, size_t errcap,
                              char *sqlstate)
{
    char sql[128 + MIGRATE_NAME_MAX];
    snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", name);
    return migrate_exec(pg, sql, err, errcap, sqlstate);
}

/* Runs one CREATE INDEX CONCURRENTLY statement so that it ends with a valid index: a build
 * that failed or timed out leaves an INVALID index that "IF NOT EXISTS" would skip, so an
 * invalid one is dropped first, and the index is checked after the build. */
static int migrate_exec_cic(PGconn *pg, const char *stmt, const char *name, char *err,
                            size_t errcap, char *sqlstate)
{
    int state = migrate_index_state(pg, name, err, errcap);
    if (state < 0)
        return -1;
    if (state == 0) {
        LOG_WARN("migrate: index %s is INVALID (an interrupted concurrent build): rebuilding it",
                 name);
        if (migrate_drop_index(pg, name, err, errcap, sqlstate) != 0)
            return -1;
    }
    if (migrate_exec(pg, stmt, err, errcap, sqlstate) != 0)
        return -1;
    state = migrate_index_state(pg, name, err, errcap);
    if (state < 0)
        return -1;
    if (state != 1) {
        snprintf(err, errcap, "index %s is %s after its build", name,
                 state == 0 ? "INVALID" : "missing");
        return -1;
    }
    return 0;
}

/* Statements of a no-transaction migration: split at semicolons that end a line. */
static int migrate_apply_notx(PGconn *pg, const struct migration *m, char *err, size_t errcap,
                              char *sqlstate)
{
    char *copy = strdup(m->sql);
    if (!copy) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    int rc = migrate_exec(pg, "SET lock_timeout = '5s'", err, errcap, sqlstate);
    char *p = copy;
    while (rc == 0 && *p) {
        char *end = strstr(p, ";\n");
        if (end)
            end[1] = '\0';
        /* Skip statements that are only comments and blank lines. */
        bool has_sql = false;
        for (char *line = p; line && *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            size_t i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
            if (i < len && !(len - i >= 2 && line[i] == '-' && line[i + 1] == '-'))
                has_sql = true;
            line = nl ? nl + 1 : NULL;
        }
        char index[MIGRATE_NAME_MAX];
        if (has_sql && migrate_cic_name(p, index, sizeof index))
            rc = migrate_exec_cic(pg, p, index, err, errcap, sqlstate);
        else if (has_sql)
            rc = migrate_exec(pg, p, err, errcap, sqlstate);
        p = end ? end + 2 : p + strlen(p);
    }
    if (rc == 0)
        rc = migrate_exec(pg, "RESET lock_timeout", err, errcap, sqlstate);
    free(copy);
    if (rc == 0)
        rc = migrate_record(pg, m, err, errcap);
    return rc;
}

static int migrate_apply_tx(PGconn *pg, const struct migration *m, char *err, size_t errcap,
                            char *sqlstate)
{
    if (migrate_exec(pg, "BEGIN; SET LOCAL lock_timeout = '5s'", err, errcap, sqlstate) != 0)
        return -1;
    if (migrate_exec(pg, m->sql, err, errcap, sqlstate) != 0 ||
        migrate_record(pg, m, err, errcap) != 0 ||
        migrate_exec(pg, "COMMIT", err, errcap, sqlstate) != 0) {
        PGresult *r = PQexec(pg, "ROLLBACK");
        PQclear(r);
        return -1;
    }
    return 0;
}

static int migrate_lock(PGconn *pg, char *err, size_t errcap)
{
    for (int i = 0; i < MIGRATE_LOCK_WAIT_S * 10; i++) {
        PGresult *r = PQexec(pg, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY_STR ")");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            db_error_copy(NULL, r, err, errcap);
            PQclear(r);
            return -1;
        }
        bool got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (got)
            return 0;
        if (i == 0)
            LOG_INFO("migrate: another instance is migrating; waiting");
        usleep(100000);
    }
    snprintf(err, errcap, "migration lock still held after %d s", MIGRATE_LOCK_WAIT_S);
    return -1;
}

int migrate_run(const char *url, long connect_timeout_s, char *err, size_t errcap)
{
    PGconn *pg = db_connect_once(url, connect_timeout_s, "ratesd-migrate", err, errcap);
    if (!pg)
        return -1;
    int rc = migrate_exec(pg, "SET client_min_messages = warning", err, errcap, NULL);
    if (rc == 0)
        rc = migrate_lock(pg, err, errcap);
    /* Created only when missing, in one statement: a role that may not create in schema
     * public (rates_app, whose unit runs `ratesd migrate` before serving) then finds nothing
     * to do on an up-to-date schema and exits 0; CREATE TABLE IF NOT EXISTS would check
     * its CREATE right first and fail. */
    if (rc == 0)
        rc = migrate_exec(pg,
                          "DO $m$ BEGIN"
                          " IF pg_catalog.to_regclass('public.schema_migrations') IS NULL THEN"
                          " CREATE TABLE public.schema_migrations ("
                          " version integer PRIMARY KEY, name text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT pg_catalog.now());"
                          " END IF; END $m$",
                          err, errcap, NULL);
    int applied_now = 0;
    for (int i = 0; rc == 0 && i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        int applied = migrate_is_applied(pg, m->version, err, errcap);
        if (applied < 0) {
            rc = -1;
            break;
        }
        if (applied)
            continue;
        for (int attempt = 1;; attempt++) {
            char sqlstate[6] = "";
            uint64_t t0 = clock_mono_ns();
            rc = m->no_transaction ? migrate_apply_notx(pg, m, err, errcap, sqlstate)
                                   : migrate_apply_tx(pg, m, err, errcap, sqlstate);
            if (rc == 0) {
                LOG_INFO("migrate: applied %s in %.1f ms", m->name,
                         (double)(clock_mono_ns() - t0) / 1e6);
                applied_now++;
                break;
            }
            /* 55P03: lock_timeout. Another session holds a conflicting lock (a long batch):
             * back off and retry rather than queue every reader behind us. 40P01: chosen as a
             * deadlock victim (seen on 0010 right after a dump load on a loaded machine; the
             * error does not name the other session): the transaction was rolled back whole,
             * so the retry starts clean. */
            bool retry = strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "40P01") == 0;
            if (!retry || attempt >= MIGRATE_RETRIES) {
                char detail[512];
                snprintf(detail, sizeof detail, "%s", err);
                snprintf(err, errcap, "migration %s failed: %s", m->name, detail);
                break;
            }
            LOG_WARN("migrate: %s %s (attempt %d); retrying", m->name,
                     sqlstate[0] == '4' ? "was chosen as a deadlock victim"
                                        : "waited too long for a lock",
                     attempt);
            sleep((unsigned)attempt);
        }
    }
    if (rc == 0)
        LOG_INFO("migrate: schema at version %d (%d applied now)", migrate_required_version(),
                 applied_now);
    PQfinish(pg); /* also releases the advisory lock */
    return rc;
}
