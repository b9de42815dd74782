/*
 * buf.c - growable buffer and hand-written JSON number formatting (see buf.h).
 */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_buf_init(struct srv_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

void srv_buf_free(struct srv_buf *b)
{
    if (!b)
        return;
    free(b->data);
    srv_buf_init(b);
}

int srv_buf_reserve(struct srv_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

void srv_buf_put(struct srv_buf *b, const void *s, size_t n)
{
    if (srv_buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void srv_buf_puts(struct srv_buf *b, const char *s) { srv_buf_put(b, s, strlen(s)); }

void srv_buf_putc(struct srv_buf *b, char c)
{
    if (srv_buf_reserve(b, 1) != 0)
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        srv_buf_put(b, tmp, (size_t)n);
        return;
    }
    if (srv_buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int srv_utf8_len(const char *s, size_t avail)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = avail ? p[0] : 0, lo = 0x80, hi = 0xbf;
    int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (c < 0x80)
        return avail && c ? 1 : 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (!n || (size_t)n > avail || p[1] < lo || p[1] > hi)
        return 0;
    for (int k = 2; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return n;
}

void srv_buf_json_string(struct srv_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    srv_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            srv_buf_put(b, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            srv_buf_put(b, e, 6);
        } else if (c < 0x80) {
            srv_buf_putc(b, (char)c);
        } else {
            /* A message may quote the client's bytes (an unknown model name): a byte that does
             * not start well-formed UTF-8 becomes U+FFFD, so the answer stays valid JSON.
             * Reading stops at the NUL, which never continues a sequence. */
            int n = srv_utf8_len((const char *)p, 4);
            if (n) {
                srv_buf_put(b, (const char *)p, (size_t)n);
                p += n - 1;
            } else {
                srv_buf_puts(b, "\\ufffd");
            }
        }
    }
    srv_buf_putc(b, '"');
}

/* Writes the decimal digits of v (no sign) at p; returns the count. */
static int put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

void srv_buf_i64(struct srv_buf *b, int64_t v)
{
    if (srv_buf_reserve(b, 24) != 0)
        return;
    char *p = b->data + b->len;
    int n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        p[n++] = '-';
        u = 0 - u;
    }
    n += put_u64(p + n, u);
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

void srv_buf_num(struct srv_buf *b, double v)
{
    if (!isfinite(v)) {
        srv_buf_put(b, "null", 4);
        return;
    }
    if (v == 0) {
        srv_buf_putc(b, '0');
        return;
    }
    if (v > 1) {
        srv_buf_printf(b, "%.9g", v);
        return;
    }
    /* the fast path needs 10^(5-e) from pow10_tab: e >= -17 */
    if (v < 1e-17) {
        srv_buf_printf(b, "%.6g", v);
        return;
    }
    if (srv_buf_reserve(b, 32) != 0)
        return;
    /* 6 significant digits: v = m * 10^(e-5) with 100000 <= m < 1000000. */
    int e = (int)floor(log10(v));
    double scaled = e <= 5 ? v * pow10_tab[5 - e] : v / pow10_tab[e - 5];
    uint64_t m = (uint64_t)llround(scaled);
    if (m >= 1000000) { /* rounding carried into a new digit */
        m /= 10;
        e++;
    } else if (m < 100000) { /* log10 rounded the wrong way */
        m = (uint64_t)llround(v * pow10_tab[6 - e]);
        e--;
        if (m >= 1000000) {
            m /= 10;
            e++;
        }
    }
    char *p = b->data + b->len;
    int n = 0;
    char dig[6];
    for (int i = 5; i >= 0; i--) {
        dig[i] = (char)('0' + m % 10);
        m /= 10;
    }
    int nd = 6;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (e >= 0) { /* only v == 1 after rounding */
        p[n++] = '1';
    } else if (e >= -4) {
        p[n++] = '0';
        p[n++] = '.';
        for (int i = 0; i < -e - 1; i++)
            p[n++] = '0';
        memcpy(p + n, dig, (size_t)nd);
        n += nd;
    } else {
        p[n++] = dig[0];
        if (nd > 1) {
            p[n++] = '.';
            memcpy(p + n, dig + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        p[n++] = 'e';
        p[n++] = '-';
        n += put_u64(p + n, (uint64_t)-e);
    }
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

/* "%.*g" of v with p digits, or with as many as it takes to write a whole number below 10^9
 * without an exponent ("10", not "1e+01": the same value, in the form people write). */
static void put_g(struct srv_buf *b, double v, int p)
{
    char text[48];
    snprintf(text, sizeof text, "%.*g", p, v);
    const char *e = strchr(text, 'e');
    if (e && e[1] == '+' && atoi(e + 2) < 9)
        snprintf(text, sizeof text, "%.*g", atoi(e + 2) + 1, v);
    srv_buf_puts(b, text);
}

void srv_buf_f32(struct srv_buf *b, float v)
{
    char text[48];
    int p = 1;
    if (!isfinite(v)) {
        srv_buf_put(b, "null", 4);
        return;
    }
    for (; p < 9; p++) { /* 9 significant digits always round-trip a binary32 */
        snprintf(text, sizeof text, "%.*g", p, (double)v);
        if (strtof(text, NULL) == v)
            break;
    }
    put_g(b, (double)v, p);
}

void srv_buf_f64(struct srv_buf *b, double v)
{
    char text[48];
    int p = 1;
    if (!isfinite(v)) {
        srv_buf_put(b, "null", 4);
        return;
    }
    for (; p < 17; p++) { /* 17 always round-trip a binary64 */
        snprintf(text, sizeof text, "%.*g", p, v);
        if (strtod(text, NULL) == v)
            break;
    }
    put_g(b, v, p);
}

void srv_buf_fixed3(struct srv_buf *b, float v)
{
    if (srv_buf_reserve(b, 8) != 0)
        return;
    int m = v > 0 ? (int)lrintf(v * 1000.0f) : 0; /* NaN fails v > 0 */
    if (m > 1000)
        m = 1000;
    char *p = b->data + b->len;
    int n = 0;
    if (m == 1000) {
        p[n++] = '1';
    } else if (m == 0) {
        p[n++] = '0';
    } else {
        p[n++] = '0';
        p[n++] = '.';
        p[n++] = (char)('0' + m / 100);
        p[n++] = (char)('0' + m / 10 % 10);
        p[n++] = (char)('0' + m % 10);
        while (p[n - 1] == '0')
            n--;
    }
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

char *srv_buf_steal(struct srv_buf *b, size_t *len)
{
    if (b->oom) {
        srv_buf_free(b);
        return NULL;
    }
    if (!b->data && srv_buf_reserve(b, 0) != 0) {
        srv_buf_free(b);
        return NULL;
    }
    char *d = b->data;
    if (len)
        *len = b->len;
    srv_buf_init(b);
    return d;
}
