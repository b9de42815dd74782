/*
 * access.h - what every answer says about its request: the request id (X-Request-Id), the
 * access-log line (text or JSON), and the CORS headers for a browser on another origin.
 *
 * No state of its own but the request-id counter, which the caller keeps (one per server).
 */
#ifndef SRV_ACCESS_H
#define SRV_ACCESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_REQUEST_ID_MAX 64 /* longest X-Request-Id taken from a client */

/* Request ids made by the server: "<8 hex digits of this process>-<counter>". */
struct srv_ids {
    uint32_t prefix;
    atomic_uint_fast64_t next;
};

/* A new prefix (from the clock and the process id: unique enough to tell servers apart in one
 * log, not a secret). */
void srv_ids_init(struct srv_ids *ids);
/* The id of a request: the client's X-Request-Id when it has 1..64 characters of
 * [A-Za-z0-9._:-] (so it can go into a header and a log line as it is), else a new one.
 * client may be NULL. Thread-safe. */
void srv_request_id(struct srv_ids *ids, const char *client, char out[SRV_REQUEST_ID_MAX + 1]);

enum srv_log_format { SRV_LOG_TEXT, SRV_LOG_JSON };

struct srv_access {
    const char *method, *path; /* path: as decoded, any bytes */
    int status;                /* 0: the connection ended without an answer */
    uint64_t bytes, duration_us;
    const char *request_id, *remote; /* remote: the client's address, "" if unknown */
    int aborted;                     /* the answer was not delivered completely */
    int64_t unix_ms;                 /* wall-clock time the request ended */
};

/* One access-log line with its '\n' into out (cap bytes): text is
 * "METHOD PATH STATUS BYTES MICROSECONDS[ (aborted)]" with control characters and spaces of the
 * path shown as '?'; JSON is one object: time (ISO 8601 UTC, milliseconds), request_id, method,
 * path, status, bytes, duration_us, remote, aborted. A line longer than cap is cut, still
 * ending in '\n' (the path is at most 127 bytes, so JSON lines fit 1 KiB). Returns its length. */
size_t srv_access_line(char *out, size_t cap, enum srv_log_format f, const struct srv_access *a);

/* Whether a --cors value is "*" or an origin "http[s]://host[:port]" (no path, no trailing
 * slash, host of letters, digits, '.', '-', or an [IPv6] literal). 0 when valid, else -1 with
 * the reason in why. */
int srv_cors_origin_check(const char *origin, char *why, size_t n);
/* The Access-Control-Allow-Origin value for a request from origin (its Origin header, maybe
 * NULL) when the server was started with --cors allowed (NULL: off): "*", allowed itself when
 * origin is the same (ASCII case-insensitive in scheme and host), else NULL (no CORS headers:
 * the browser then refuses the answer to the page). */
const char *srv_cors_allow(const char *allowed, const char *origin);

/* Headers a page may read from an answer to another origin. */
#define SRV_CORS_EXPOSE "X-Request-Id, Retry-After, Inference-Header-Content-Length"
/* Headers a preflight may ask for. */
#define SRV_CORS_HEADERS "Content-Type, X-Request-Id, Inference-Header-Content-Length"
#define SRV_CORS_MAX_AGE "600"

#endif
