/* rowparse_field.c: the one place where a row's fields are checked (codes, day, price). */
#include "rowparse_int.h"

#include <stdio.h>
#include <string.h>

#include "date.h"
#include "utf8.h"

void rowparse_show(char *out, size_t cap, const char *s, size_t len)
{
    const size_t max_shown = 24;
    size_t o = 0;
    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && i < max_shown && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            out[o++] = '?';
    }
    if (len > max_shown && o + 5 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

int rowparse_check_code(const char *s, size_t len, const char *name, char *msg, size_t cap)
{
    if (len == 0) {
        snprintf(msg, cap, "%s is empty", name);
        return -1;
    }
    if (len > ROWPARSE_MAX_CODE) {
        snprintf(msg, cap, "%s is longer than %d bytes", name, ROWPARSE_MAX_CODE);
        return -1;
    }
    if (memchr(s, '\0', len)) {
        snprintf(msg, cap, "%s contains a NUL byte", name);
        return -1;
    }
    if (!utf8_valid(s, len)) {
        snprintf(msg, cap, "%s is not valid UTF-8", name);
        return -1;
    }
    return 0;
}

static int rowparse_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int rowparse_check_day(const char *s, size_t len, int32_t *days, char *msg, size_t cap)
{
    char shown[40];
    if (len == 0) {
        snprintf(msg, cap, "day is empty");
        return -1;
    }
    if (date_parse_strict(s, len, days) == 0)
        return 0;
    rowparse_show(shown, sizeof shown, s, len);
    int shape = len == 10 && s[4] == '-' && s[7] == '-';
    for (size_t i = 0; shape && i < len; i++)
        if (i != 4 && i != 7 && !rowparse_is_digit(s[i]))
            shape = 0;
    if (shape)
        snprintf(msg, cap, "day %s does not exist", shown);
    else
        snprintf(msg, cap, "day %s is not a date in the form YYYY-MM-DD", shown);
    return -1;
}

int rowparse_check_price(const char *s, size_t len, int32_t *price, char *msg, size_t cap)
{
    char shown[40];
    if (len == 0) {
        snprintf(msg, cap, "price is empty");
        return -1;
    }
    rowparse_show(shown, sizeof shown, s, len);
    if (s[0] == '-' || s[0] == '+') {
        snprintf(msg, cap, "price %s has a sign: it must be an integer from 1 to 2147483647",
                 shown);
        return -1;
    }
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && rowparse_is_digit(s[i])) {
        if (v <= 2147483647u)
            v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i < len) {
        const char *what = "is not an integer";
        if (i > 0 && s[i] == '.')
            what = "has a fraction";
        else if (i > 0 && (s[i] == 'e' || s[i] == 'E'))
            what = "has an exponent";
        snprintf(msg, cap, "price %s %s: it must be an integer from 1 to 2147483647", shown, what);
        return -1;
    }
    if (len > 1 && s[0] == '0') {
        snprintf(msg, cap, "price %s has leading zeros", shown);
        return -1;
    }
    if (v < 1 || v > 2147483647u) {
        snprintf(msg, cap, "price %s is out of range 1..2147483647", shown);
        return -1;
    }
    *price = (int32_t)v;
    return 0;
}
