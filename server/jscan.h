/*
 * jscan.h - a strict JSON scanner that reads values in place, for request bodies too large or
 * too hot for a cJSON tree (request.c's fast path, oip.c's infer requests).
 *
 * The cursor walks [p, end). Every reader skips leading whitespace where JSON allows it, and
 * on anything that is not what it expects records the first place and reason (why, at) and
 * returns SRV_NOT_HANDLED, so a caller can word the error or hand the body to a fuller parser.
 * Numbers follow RFC 8259 strictly ("00.5", "5.", ".5", "+1", "1e" are not numbers), at most
 * SRV_JSON_NUMBER_MAX characters, and convert to the double strtod (and so cJSON) gives.
 * Strings are decoded (escapes resolved, UTF-8 checked, no \u0000). No allocation, no state
 * outside the cursor.
 */
#ifndef SRV_JSCAN_H
#define SRV_JSCAN_H

#include <stddef.h>

struct srv_jscan {
    const char *p, *end;
    const char *why, *at; /* the first reason given up, and where; NULL while all is well */
    size_t values;        /* numbers read so far */
};

/* Records why (unless a reason is recorded already; "unexpected end of the body" at the end)
 * and returns SRV_NOT_HANDLED. */
int srv_jscan_give_up(struct srv_jscan *c, const char *why);
/* Skips JSON whitespace. */
void srv_jscan_ws(struct srv_jscan *c);
/* Skips whitespace, then consumes ch if it is next: 1, else 0 (nothing recorded). */
int srv_jscan_eat(struct srv_jscan *c, char ch);
/* The end of the strict JSON number at p, or NULL when there is none there. */
const char *srv_json_number_end(const char *p, const char *end);
/* A number at the cursor (no leading whitespace skipped) into *out: 0 or SRV_NOT_HANDLED. */
int srv_jscan_number(struct srv_jscan *c, double *out);
/* A string at the cursor decoded into buf[len] (NUL-terminated): 0, or SRV_NOT_HANDLED with
 * too_long as the reason when it does not fit. With buf NULL the string is checked and
 * skipped, whatever its length. */
int srv_jscan_string(struct srv_jscan *c, char *buf, size_t len, const char *too_long);

#endif
