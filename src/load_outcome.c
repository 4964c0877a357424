/* load_outcome.c: rates-load's retry and exit-code policy (pure; see load_outcome.h). */
#include "load_outcome.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char in_progress[] = "\"idempotency_key_in_progress\"";

bool load_outcome_status_retryable(long status, const char *reply, size_t reply_len)
{
    if (status == 409)
        return reply && reply_len &&
               memmem(reply, reply_len, in_progress, sizeof in_progress - 1) != NULL;
    return status == 502 || status == 503 || status == 504;
}

bool load_outcome_curl_retryable(CURLcode c)
{
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_PEER_FAILED_VERIFICATION:
        return false;
    default:
        return true;
    }
}

int load_outcome_status_exit(long status, const char *code)
{
    if (status == 200 || status == 201)
        return LOAD_EXIT_OK;
    if (status == 401 || status == 403)
        return LOAD_EXIT_AUTH;
    if (status == 422 && code && strcmp(code, "idempotency_key_reused") == 0)
        return LOAD_EXIT_KEY_REUSED;
    if (status == 422)
        return LOAD_EXIT_REJECTED;
    if (status == 409)
        return LOAD_EXIT_CONFLICT;
    return LOAD_EXIT_REFUSED;
}

const char *load_outcome_hint(long status, const char *code)
{
    if (status == 409 && code && strcmp(code, "batch_retracted") == 0)
        return "the batch this key loaded was retracted: its rows are gone; use --new-key to "
               "load the file again";
    return NULL;
}

struct load_decision load_outcome_decide(const struct load_answer *a, int attempt, int retries)
{
    if (a->read_error)
        return (struct load_decision){ .verdict = LOAD_VERDICT_READ_ERROR,
                                       .exit_code = LOAD_EXIT_LOCAL };
    if (a->curl == CURLE_OK && (a->status == 200 || a->status == 201))
        return (struct load_decision){ .verdict = LOAD_VERDICT_COMMITTED,
                                       .exit_code = LOAD_EXIT_OK };
    if (a->curl == CURLE_OK && !load_outcome_status_retryable(a->status, a->reply, a->reply_len))
        return (struct load_decision){ .verdict = LOAD_VERDICT_ANSWERED,
                                       .exit_code = load_outcome_status_exit(a->status, a->code) };
    if (a->curl != CURLE_OK && !load_outcome_curl_retryable(a->curl))
        return (struct load_decision){ .verdict = LOAD_VERDICT_BROKEN,
                                       .exit_code = LOAD_EXIT_REFUSED };
    if (attempt >= retries)
        return (struct load_decision){ .verdict = LOAD_VERDICT_GAVE_UP,
                                       .exit_code = LOAD_EXIT_GAVE_UP };
    return (struct load_decision){ .verdict = LOAD_VERDICT_RETRY, .exit_code = -1 };
}

double load_outcome_backoff_s(int attempt, double retry_after_s, int jitter)
{
    if (retry_after_s >= 0)
        return retry_after_s;
    double s = LOAD_OUTCOME_BACKOFF_FIRST_S; /* doubled: exact, as 0.5 * 2^attempt */
    for (int i = 0; i < attempt && s < LOAD_OUTCOME_BACKOFF_MAX_S; i++)
        s *= 2.0;
    if (s > LOAD_OUTCOME_BACKOFF_MAX_S)
        s = LOAD_OUTCOME_BACKOFF_MAX_S;
    if (jitter >= 0)
        s *= 0.75 + 0.5 * (jitter > 255 ? 255 : jitter) / 255.0;
    return s;
}

double load_outcome_retry_after(const char *value, size_t len)
{
    char v[32];
    if (!value)
        len = 0;
    if (len >= sizeof v)
        len = sizeof v - 1;
    if (len)
        memcpy(v, value, len);
    v[len] = '\0';
    char *end;
    double s = strtod(v, &end); /* seconds; an HTTP date is treated as absent */
    if (end == v || !(s >= 0) || !isfinite(s))
        return -1;
    return s < LOAD_OUTCOME_RETRY_AFTER_MAX_S ? s : LOAD_OUTCOME_RETRY_AFTER_MAX_S;
}
