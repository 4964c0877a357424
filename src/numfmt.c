/* numfmt.c: shortest round-trip formatting of doubles. */
#include "numfmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t numfmt_double(double x, char *out, size_t cap)
{
    if (!isfinite(x))
        return (size_t)snprintf(out, cap, "null");
    /* If 15 significant digits read back exactly, %g's trailing-zero removal already gives the
     * shortest form: any shorter exact form rounds to the same 15 digits. Else try 16, 17. */
    /* Subnormals have less precision than that argument needs: search from 1 digit. */
    int first = fabs(x) < DBL_MIN ? 1 : 15;
    for (int prec = first; prec <= 17; prec++) {
        int n = snprintf(out, cap, "%.*g", prec, x);
        if (n > 0 && strtod(out, NULL) == x)
            return (size_t)n;
    }
    return strlen(out);
}
