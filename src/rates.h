/* rates.h: GET /rates, the average price per day on a route. */
#ifndef RATES_RATES_H
#define RATES_RATES_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

struct http_req;

/* Registers the prepared statements of /rates and of the region routes it builds on
 * (/regions, /ports: regions_init); call before the pool starts. */
void rates_init(void);
void rates_on_request(struct http_req *req);

/* One day's aggregate as read from the database, newest first. */
struct rates_day {
    int32_t offset; /* days after date_from */
    long count;
    double avg;
    char avg_text[32]; /* PostgreSQL's own shortest round-trip text of avg, or "" */
};

/* Renders {"rates": [...]} for every day from date_to down to date_from; days holds the
 * non-empty days in descending order. Caller frees the result. */
char *rates_render(int32_t date_from, int32_t date_to, const struct rates_day *days, size_t ndays,
                   size_t *len);

#endif
