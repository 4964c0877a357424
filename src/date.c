/* date.c: date parsing and civil-calendar arithmetic. */
#include "date.h"

static int date_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int date_days_in_month(int y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && date_is_leap(y))
        return 29;
    return dim[m - 1];
}

/* Days from civil, after H. Hinnant's public-domain description of the algorithm. */
int32_t date_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

void date_to_civil(int32_t days, int *y, int *m, int *d)
{
    int z = days + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int yy = yoe + era * 400;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int date_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads 1..max ASCII digits at s[*i]; returns the value or -1. */
static int date_take_digits(const char *s, size_t len, size_t *i, int min, int max)
{
    int v = 0, n = 0;
    while (*i < len && n < max && date_digit(s[*i])) {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        n++;
    }
    return n >= min ? v : -1;
}

static int date_check(int y, int m, int d, int32_t *days)
{
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > date_days_in_month(y, m))
        return -1;
    *days = date_from_civil(y, m, d);
    return 0;
}

int date_parse_loose(const char *s, size_t len, int32_t *days)
{
    size_t i = 0;
    int y = date_take_digits(s, len, &i, 4, 4);
    if (y < 0 || i >= len || s[i++] != '-')
        return -1;
    int m = date_take_digits(s, len, &i, 1, 2);
    if (m < 0 || i >= len || s[i++] != '-')
        return -1;
    int d = date_take_digits(s, len, &i, 1, 2);
    if (d < 0 || i != len)
        return -1;
    return date_check(y, m, d, days);
}

int date_parse_strict(const char *s, size_t len, int32_t *days)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    size_t i = 0;
    int y = date_take_digits(s, 4, &i, 4, 4);
    i = 5;
    int m = date_take_digits(s, 7, &i, 2, 2);
    i = 8;
    int d = date_take_digits(s, 10, &i, 2, 2);
    if (y < 0 || m < 0 || d < 0)
        return -1;
    return date_check(y, m, d, days);
}

void date_format(int32_t days, char out[11])
{
    int y, m, d;
    date_to_civil(days, &y, &m, &d);
    out[0] = (char)('0' + y / 1000 % 10);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}
