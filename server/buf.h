/*
 * buf.h - a growable byte buffer and the JSON writer the server answers with.
 *
 * Responses are built by appending into one malloc'd buffer that is then handed to
 * libmicrohttpd, so there is no intermediate cJSON tree on the hot path. Numbers are formatted
 * by hand (probabilities with 6 significant digits, inputs with 3 decimals): snprintf("%g") was
 * the largest cost of a /predict answer.
 *
 * Errors are sticky: an allocation failure sets `oom`, later appends do nothing, and the caller
 * checks `oom` once at the end. Not thread-safe per buffer; any number of buffers may be used
 * from different threads.
 */
#ifndef SRV_BUF_H
#define SRV_BUF_H

#include <stddef.h>
#include <stdint.h>

struct srv_buf {
    char *data; /* NUL-terminated when len > 0 or after srv_buf_reserve */
    size_t len, cap;
    int oom;
};

/* Zeroes b (no allocation). */
void srv_buf_init(struct srv_buf *b);
/* Frees the data; b can be reused after srv_buf_init. Accepts NULL. */
void srv_buf_free(struct srv_buf *b);
/* Makes room for `extra` more bytes plus a NUL. Returns 0, or -1 (and sets oom). */
int srv_buf_reserve(struct srv_buf *b, size_t extra);

void srv_buf_put(struct srv_buf *b, const void *s, size_t n);
void srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_putc(struct srv_buf *b, char c);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Appends s as a quoted JSON string, escaping '"', '\\' and control characters; well-formed
 * UTF-8 is copied, any other byte >= 0x80 becomes U+FFFD, so that a message quoting a client's
 * bytes is still valid JSON. */
void srv_buf_json_string(struct srv_buf *b, const char *s);
/* Bytes in the well-formed UTF-8 sequence (RFC 3629) at s, reading at most avail bytes;
 * 0 when there is none (a NUL, a stray continuation byte, an overlong form, a surrogate,
 * above U+10FFFF, or cut short). ASCII other than NUL is 1. */
int srv_utf8_len(const char *s, size_t avail);
void srv_buf_i64(struct srv_buf *b, int64_t v);
/* A double as JSON: NaN and infinities become null; values up to 1 have 6 significant digits
 * ("0.982341", "3.1e-7"; a fast path down to 1e-17), larger ones "%.9g". */
void srv_buf_num(struct srv_buf *b, double v);
/* The shortest decimal that reads back to exactly v: "%.Ng" with the smallest N (1..9 for a
 * float, through strtof; 1..17 for a double, through strtod) that round-trips, so a stored 0.002f
 * is "0.002", not "0.00200000009"; whole numbers below 10^9 without an exponent ("10", not
 * "1e+01"). NaN and infinities become null. For values a person reads
 * again (a model's learning rate, its recorded accuracies), not for the hot path. */
void srv_buf_f32(struct srv_buf *b, float v);
void srv_buf_f64(struct srv_buf *b, double v);
/* v in [0,1] with 3 decimals, trailing zeros dropped ("0", "0.5", "0.125"); values outside
 * [0,1] are clamped, NaN written as 0. */
void srv_buf_fixed3(struct srv_buf *b, float v);

/* Gives the data to the caller (who frees it with free()) and re-initialises b. Returns NULL
 * if oom was set (the data is freed). *len may be NULL. */
char *srv_buf_steal(struct srv_buf *b, size_t *len);

#endif
