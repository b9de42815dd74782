/*
 * jscan.c - the strict JSON scanner under the fast paths of request.c and oip.c (jscan.h).
 */
#include "jscan.h"

#include "buf.h"
#include "request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int srv_jscan_give_up(struct srv_jscan *c, const char *why)
{
    if (!c->why) {
        c->why = c->p >= c->end ? "unexpected end of the body" : why;
        c->at = c->p;
    }
    return SRV_NOT_HANDLED;
}

static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

void srv_jscan_ws(struct srv_jscan *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

int srv_jscan_eat(struct srv_jscan *c, char ch)
{
    srv_jscan_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* The end of the strict JSON number (RFC 8259) at p, or NULL when there is none there:
 * "00.5", "5.", ".5", "+1", "1e" are not numbers. */
const char *srv_json_number_end(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return NULL;
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

/* A strict JSON number, converted exactly when its digits allow (an integer mantissa below
 * 2^53 times or divided by an exact power of ten), else by strtod, which rounds correctly as
 * well and is what cJSON uses, so the two paths give the same double. Numbers longer than
 * cJSON reads (63 characters) are given up on. */
int srv_jscan_number(struct srv_jscan *c, double *out)
{
    const char *p = c->p, *end = srv_json_number_end(c->p, c->end);
    if (!end)
        return srv_jscan_give_up(c, "expected a number");
    if (end - p > SRV_JSON_NUMBER_MAX)
        return srv_jscan_give_up(c, "a number longer than 63 characters");
    int neg = *p == '-', nd = 0, e10 = 0, exact = 1;
    uint64_t m = 0;
    p += neg;
    for (; p < end && is_digit(*p); p++) {
        if (m != 0 || *p != '0') {
            exact &= ++nd <= 19;
            m = m * 10 + (uint64_t)(*p - '0');
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++) {
            if (m != 0 || *p != '0') {
                exact &= ++nd <= 19;
                m = m * 10 + (uint64_t)(*p - '0');
            }
            e10--;
        }
    }
    if (p < end) { /* the exponent */
        p++;
        int sign = *p == '-' ? -1 : 1, ev = 0;
        if (*p == '+' || *p == '-')
            p++;
        for (; p < end; p++)
            ev = ev < 100000 ? ev * 10 + (*p - '0') : ev;
        e10 += sign * ev;
    }
    double d;
    if (exact && m <= (UINT64_C(1) << 53) && (m == 0 || (e10 >= -22 && e10 <= 22))) {
        d = (double)m;
        if (m != 0)
            d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
        d = neg ? -d : d;
    } else {
        char buf[SRV_JSON_NUMBER_MAX + 1];
        size_t n = (size_t)(end - c->p);
        memcpy(buf, c->p, n);
        buf[n] = '\0';
        d = strtod(buf, NULL);
    }
    *out = d;
    c->p = end;
    c->values++;
    return 0;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if not hex. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The code point of the \u escape at c->p (just after the backslash-u), with a surrogate
 * pair joined; -1 (given up) when malformed or U+0000, which would cut the string short. */
static long u_escape(struct srv_jscan *c)
{
    if (c->end - c->p < 4)
        return srv_jscan_give_up(c, "a \\u escape needs four hex digits"), -1;
    long cp = hex4(c->p);
    if (cp < 0)
        return srv_jscan_give_up(c, "a \\u escape needs four hex digits"), -1;
    c->p += 4;
    if (cp == 0)
        return srv_jscan_give_up(c, "strings must not contain \\u0000"), -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return srv_jscan_give_up(c, "a lone low surrogate in a \\u escape"), -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo = c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' ? hex4(c->p + 2) : -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return srv_jscan_give_up(c, "a high surrogate not followed by a low one"), -1;
        c->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return cp;
}

/* Appends code point cp as UTF-8; 0, or -1 when buf[len] has no room for it and the NUL. */
static int put_utf8(char *buf, size_t len, size_t *n, long cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 63));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 63));
        u[2] = (char)(0x80 | (cp & 63));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 63));
        u[2] = (char)(0x80 | ((cp >> 6) & 63));
        u[3] = (char)(0x80 | (cp & 63));
        k = 4;
    }
    if (*n + k + 1 > len)
        return -1;
    memcpy(buf + *n, u, k);
    *n += k;
    return 0;
}

/* A JSON string decoded into buf[len] (escapes resolved, UTF-8 checked, NUL-terminated), or
 * SRV_NOT_HANDLED, also when it does not fit. */
int srv_jscan_string(struct srv_jscan *c, char *buf, size_t len, const char *too_long)
{
    if (!srv_jscan_eat(c, '"'))
        return srv_jscan_give_up(c, "expected a string");
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        long cp;
        if (ch < 0x20)
            return srv_jscan_give_up(c, "a control character in a string (escape it)");
        if (ch == '\\') {
            if (++c->p >= c->end)
                return srv_jscan_give_up(c, "");
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = strchr(from, *c->p);
            if (*c->p == 'u') {
                c->p++;
                if ((cp = u_escape(c)) < 0)
                    return SRV_NOT_HANDLED;
            } else if (e && *e) {
                cp = (unsigned char)to[e - from];
                c->p++;
            } else {
                return srv_jscan_give_up(c, "an unknown escape in a string");
            }
        } else if (ch >= 0x80) {
            int k = srv_utf8_len(c->p, (size_t)(c->end - c->p));
            if (!k)
                return srv_jscan_give_up(c, "a string that is not valid UTF-8");
            if (buf && n + (size_t)k + 1 > len) {
                buf[n] = '\0';
                return srv_jscan_give_up(c, too_long);
            }
            if (buf)
                memcpy(buf + n, c->p, (size_t)k);
            n += (size_t)k;
            c->p += k;
            continue;
        } else {
            cp = ch;
            c->p++;
        }
        if (!buf)
            continue;
        if (put_utf8(buf, len, &n, cp) != 0) {
            buf[n] = '\0';
            return srv_jscan_give_up(c, too_long);
        }
    }
    if (c->p >= c->end)
        return srv_jscan_give_up(c, "");
    c->p++;
    if (buf)
        buf[n] = '\0';
    return 0;
}
