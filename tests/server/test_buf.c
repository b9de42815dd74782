/* test_buf.c - the response writer's number formatting round-trips through strtod. */
#include "server/buf.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Digits of the mantissa, leading zeros not counted: "0.00123" -> 3, "4.88137e-23" -> 6. */
static int significant_digits(const char *s)
{
    while (*s == '0' || *s == '.')
        s++;
    int n = 0;
    for (; *s && *s != 'e'; s++)
        n += *s >= '0' && *s <= '9';
    return n;
}

Test(buf, numbers_round_trip_to_six_significant_digits_over_the_whole_range)
{
    /* every decade a probability can take, including the ones below 1e-17 that once read past
     * the power-of-ten table */
    for (int e = -45; e <= 2; e++) {
        for (double mant = 1.0; mant < 10.0; mant += 0.7370123457) {
            double v = mant * pow(10.0, e);
            struct srv_buf b;
            srv_buf_init(&b);
            srv_buf_num(&b, v);
            cr_assert_not_null(b.data);
            char *end;
            double back = strtod(b.data, &end);
            cr_expect_eq(*end, '\0', "'%s' is one JSON number", b.data);
            cr_expect(fabs(back - v) <= 5e-6 * v, "%.17g printed as '%s'", v, b.data);
            cr_expect(b.data[0] != '0' || b.data[1] == '.' || b.data[1] == '\0',
                      "no leading zero mantissa: '%s'", b.data);
            if (v <= 1)
                cr_expect(significant_digits(b.data) <= 6, "'%s' has 6 significant digits at most",
                          b.data);
            srv_buf_free(&b);
        }
    }
}
