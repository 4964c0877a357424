/* routes.h: the table of every endpoint. */
#ifndef RATES_ROUTES_H
#define RATES_ROUTES_H

#include "http.h"

extern const struct http_route routes[];
extern const int routes_count;

#endif
