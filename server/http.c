/*
 * http.c - routing, request state, limits and the access log on libmicrohttpd (see http.h).
 *
 * Routes:
 *   POST /predict                   predict.c
 *   POST /read                      read.c (the same bodies, limits and buffering as /predict)
 *   GET  /models, /model[?name=x]   model metadata (pre-rendered per snapshot)
 *   GET  /healthz, /metrics         status and Prometheus counters
 *   GET  /openapi.json              the OpenAPI 3.1 document of every route (openapi.h)
 *   GET  /v2..., POST .../infer     the Open Inference Protocol (oip.c; infer bodies are
 *                                   buffered and limited like /predict's)
 *   GET  anything else              a file under --web (static.c), else 404
 * A known path with the wrong method is 405 with Allow; HEAD works wherever GET does.
 */
#include "http.h"

#include "access.h"
#include "buf.h"
#include "conns.h"
#include "decode.h"
#include "oip.h"
#include "openapi.h"
#include "pool.h"
#include "predict.h"
#include "read.h"
#include "request.h"
#include "ratelimit.h"
#include "samples_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct srv_http {
    struct MHD_Daemon *d;
    struct srv_config cfg;
    struct srv_registry *reg;
    struct srv_metrics *metrics;
    const struct srv_static *st;
    int port;
    atomic_int in_flight; /* requests between the first callback and completion */
    struct srv_pool *pool; /* expensive requests (pool.h, server/API.md "Photos") */
    struct srv_conns *conns;
    atomic_int stopping;      /* set by srv_http_stop: every answer closes its connection */
    atomic_int draining;      /* srv_http_drain: health checks say not ready, all else served */
    atomic_size_t body_bytes; /* reserved by request bodies being received (max_body_memory) */
    struct srv_ids ids;       /* X-Request-Id for requests that bring none (access.h) */
    struct srv_ratelimit *writes; /* per-address budget of the writing routes */
};

/* An image over this many pixels by its header, or a JSON body over this many bytes, is an
 * expensive request (pool.h); and how many may wait for a pool thread. */
#define SRV_EXPENSIVE_PIXELS (1024 * 1024)
#define SRV_EXPENSIVE_JSON_BYTES ((size_t)1 << 20)
/* A /v2 infer body over this runs on the pool (64 KiB is 10 images of FP32 pixels in JSON), and
 * so does any body with a BYTES tensor: its image files cannot be sized from a header without
 * reading the JSON, and a 4 MP PNG of plain paper fits in a few kilobytes. */
#define SRV_EXPENSIVE_V2_BYTES ((size_t)64 << 10)
#define SRV_POOL_MAX_WAITING 64


enum method { M_GET, M_HEAD, M_POST, M_DELETE, M_OPTIONS, M_OTHER };

/* Per-request state: created on the first callback, freed on completion. */
struct req {
    struct srv_http *h; /* NULL until the request reaches on_request */
    size_t raw_uri_len; /* strlen of the request target as sent (on_uri) */
    struct srv_conn *conn;
    size_t reserved; /* of h->body_bytes */
    int close;       /* answer with Connection: close */
    /* An expensive request is computed by a pool thread while its connection is suspended */
    struct srv_job job;
    struct MHD_Connection *mc;
    int job_done;
    struct srv_response res;
    char ct[128], qm[SRV_MODEL_NAME_MAX + 1], qr[16]; /* qm: Inference-Header-Content-Length
                                                        * for /v2 infer */
    char ql[8];     /* ?label= of POST /samples */
    int has_ql;
    char rest[64]; /* /samples/{rest} */
    struct srv_oip_path oip; /* for SRV_ROUTE_V2 and SRV_ROUTE_V2_INFER */
    int has_ct, has_qm, has_qr;
    int off_host;   /* the client is not on loopback */
    uint64_t t0;
    enum srv_route route;
    enum method method;
    int responded;
    int status;
    uint64_t bytes;
    char *body;
    size_t len, cap;
    char method_s[8];
    char path[128]; /* for the access log, truncated */
    char request_id[SRV_REQUEST_ID_MAX + 1];
    const char *cors_allow; /* Access-Control-Allow-Origin for this request, or NULL */
    char remote[48];        /* the client's address, for the JSON access log */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------------------------------------------------------------------------------------- */
/* Responses                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* Whether answers depend on the request's Origin (--cors names one origin): caches must know. */
static int cors_varies(const struct srv_http *h)
{
    return h->cfg.cors && strcmp(h->cfg.cors, "*");
}

/* Headers every answer carries: its request id, CORS when the request's origin is allowed;
 * Connection: close when the request asked for trouble (a malformed framing) or the server is
 * stopping. */
static void common_headers(struct MHD_Response *resp, const struct req *r)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (r->cors_allow) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, r->cors_allow);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", SRV_CORS_EXPOSE);
    }
    if (cors_varies(r->h))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    if (r->close || atomic_load(&r->h->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Queues body (malloc'd, taken over) with the common headers; json_len, when not NULL, is
 * sent as Inference-Header-Content-Length (oip.h). */
static enum MHD_Result send_body_json_len(struct MHD_Connection *c, struct req *r, int status,
                                          char *body, size_t len, const char *type,
                                          const char *allow, const size_t *json_len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    common_headers(resp, r);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == 503 || status == 429) /* busy, no model yet, or too many writes: all pass */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (json_len) {
        char v[24];
        snprintf(v, sizeof v, "%zu", *json_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", v);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->responded = 1;
        r->status = status;
        r->bytes = len;
    }
    return ret;
}

static enum MHD_Result send_body(struct MHD_Connection *c, struct req *r, int status, char *body,
                                 size_t len, const char *type, const char *allow)
{
    return send_body_json_len(c, r, status, body, len, type, allow, NULL);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct req *r,
                                     struct srv_response *res, const char *allow)
{
    char *body = res->body;
    res->body = NULL;
    return send_body_json_len(c, r, res->status, body, res->len, res->content_type, allow,
                              res->has_json_len ? &res->json_len : NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, int status,
                                  const char *msg, const char *allow)
{
    struct srv_response res;
    srv_response_error(&res, status, msg);
    return send_response(c, r, &res, allow);
}

/* 503 for a server busy with expensive work or memory (send_body adds Retry-After). */
static enum MHD_Result send_busy(struct MHD_Connection *c, struct req *r, const char *msg)
{
    return send_error(c, r, 503, msg, NULL);
}

/* The 503 for an expensive request that found no place in the pool in time. */
static enum MHD_Result send_pool_busy(struct MHD_Connection *c, struct req *r,
                                      const struct srv_http *h)
{
    char msg[240];
    snprintf(msg, sizeof msg,
             "busy: %d expensive request(s) (images over 1 MP, JSON bodies over 1 MiB) are "
             "being worked on, the most at once, and others are waiting; retry shortly "
             "(smaller requests are never queued)",
             srv_pool_threads(h->pool));
    return send_busy(c, r, msg);
}

static enum MHD_Result send_copy(struct MHD_Connection *c, struct req *r, int status,
                                 const char *data, size_t len, const char *type)
{
    char *body = malloc(len + 1);
    if (!body)
        return send_error(c, r, 500, "out of memory", NULL);
    memcpy(body, data, len);
    body[len] = '\n';
    return send_body(c, r, status, body, len + 1, type, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Routes                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static enum MHD_Result route_models(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    struct srv_snapshot *s = srv_registry_acquire(h->reg);
    enum MHD_Result ret;
    if (r->route == SRV_ROUTE_MODELS) {
        ret = send_copy(c, r, 200, s->list_json, s->list_json_len, "application/json");
    } else {
        const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
        const struct srv_model *m = srv_snapshot_find(s, name);
        if (m) {
            ret = send_copy(c, r, 200, m->json, m->json_len, "application/json");
        } else {
            char msg[160];
            if (s->n == 0)
                snprintf(msg, sizeof msg, "no model is loaded");
            else
                snprintf(msg, sizeof msg, "unknown model \"%.64s\" (see GET /models)",
                         name ? name : "");
            ret = send_error(c, r, s->n == 0 ? 503 : 404, msg, NULL);
        }
    }
    srv_snapshot_release(s);
    return ret;
}

/* Whether the server takes predictions now, for /healthz and /v2/health/ready alike: 1, or 0
 * with the reason in why. */
static int serving_ready(struct srv_http *h, const struct srv_snapshot *s, char *why, size_t n)
{
    if (atomic_load(&h->draining)) {
        snprintf(why, n, "draining: the server is stopping");
        return 0;
    }
    if (s->n == 0) {
        snprintf(why, n, "no model is loaded");
        return 0;
    }
    return 1;
}

static enum MHD_Result route_healthz(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    struct srv_snapshot *s = srv_registry_acquire(h->reg);
    struct srv_registry_status st;
    srv_registry_status(h->reg, &st);
    struct srv_buf b;
    srv_buf_init(&b);
    char why[64];
    int ready = serving_ready(h, s, why, sizeof why);
    srv_buf_printf(&b, "{\"status\":\"%s\",\"models\":%d,\"default\":",
                   atomic_load(&h->draining) ? "draining" : s->n ? "ok" : "no model", s->n);
    if (s->n)
        srv_buf_json_string(&b, s->models[0].name);
    else
        srv_buf_puts(&b, "null");
    srv_buf_puts(&b, ",\"names\":[");
    for (int i = 0; i < s->n; i++) {
        if (i)
            srv_buf_putc(&b, ',');
        srv_buf_json_string(&b, s->models[i].name);
    }
    srv_buf_printf(&b,
                   "],\"generation\":%llu,\"reloads\":{\"ok\":%llu,\"failed\":%llu},"
                   "\"last_reload_unix\":%lld,\"last_reload_error\":",
                   (unsigned long long)st.generation, (unsigned long long)st.reloads_ok,
                   (unsigned long long)st.reloads_failed, (long long)st.last_reload_unix);
    if (st.last_error[0])
        srv_buf_json_string(&b, st.last_error);
    else
        srv_buf_puts(&b, "null");
    srv_buf_printf(&b, ",\"uptime_s\":%lld,\"version\":\"%s\",\"samples_kept\":%s}\n",
                   (long long)(time(NULL) - h->metrics->start_unix), NN_VERSION,
                   h->cfg.samples ? "true" : "false");
    int status = ready ? 200 : 503;
    srv_snapshot_release(s);
    size_t len = 0;
    char *body = srv_buf_steal(&b, &len);
    if (!body)
        return send_error(c, r, 500, "out of memory", NULL);
    return send_body(c, r, status, body, len, "application/json", NULL);
}

/* GET /v2 routes: metadata and health (oip.h). */
static enum MHD_Result route_v2(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    struct srv_response res = {0};
    struct srv_snapshot *s;
    char why[64];
    switch (r->oip.kind) {
    case SRV_OIP_SERVER: srv_oip_server_metadata(&res); break;
    case SRV_OIP_LIVE:
        return send_copy(c, r, 200, "{\"live\":true}", 13, "application/json");
    case SRV_OIP_READY:
        s = srv_registry_acquire(h->reg);
        int ready = serving_ready(h, s, why, sizeof why);
        srv_snapshot_release(s);
        if (ready)
            return send_copy(c, r, 200, "{\"ready\":true}", 14, "application/json");
        return send_error(c, r, 503, why, NULL);
    case SRV_OIP_MODEL:
    case SRV_OIP_MODEL_READY:
        s = srv_registry_acquire(h->reg);
        srv_oip_model(&res, s, &r->oip);
        srv_snapshot_release(s);
        break;
    default:
        return send_error(c, r, 404,
                          "no such route: the /v2 routes are /v2, /v2/health/live, "
                          "/v2/health/ready, /v2/models/{name}[/versions/1][/ready|/infer]",
                          NULL);
    }
    return send_response(c, r, &res, NULL);
}

static enum MHD_Result route_metrics(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    struct srv_snapshot *s = srv_registry_acquire(h->reg);
    struct srv_registry_status st;
    srv_registry_status(h->reg, &st);
    struct srv_buf b;
    srv_buf_init(&b);
    srv_metrics_render(h->metrics, &b, s->n, st.generation);
    srv_snapshot_release(s);
    size_t len = 0;
    char *body = srv_buf_steal(&b, &len);
    if (!body)
        return send_error(c, r, 500, "out of memory", NULL);
    return send_body(c, r, 200, body, len, "text/plain; version=0.0.4; charset=utf-8", NULL);
}

static enum MHD_Result route_static(struct srv_http *h, struct MHD_Connection *c, struct req *r,
                                    const char *url)
{
    struct srv_static_file f;
    if (!h->st || srv_static_open(h->st, url, &f) != 0)
        return send_error(c, r, 404, "not found", NULL);
    const char *inm =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    struct MHD_Response *resp;
    int status = 200;
    if (inm && !strcmp(inm, f.etag)) {
        close(f.fd);
        status = 304;
        resp = MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
        f.size = 0;
    } else {
        resp = MHD_create_response_from_fd64(f.size, f.fd); /* closes fd */
        if (!resp)
            close(f.fd);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f.mime);
    /* Revalidate every time: the ETag makes that a 304 without a body. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f.etag);
    common_headers(resp, r);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
    r->status = status;
    r->bytes = r->method == M_HEAD ? 0 : f.size;
    return ret;
}

static enum srv_route classify(const char *url)
{
    if (!strcmp(url, "/predict"))
        return SRV_ROUTE_PREDICT;
    if (!strcmp(url, "/read"))
        return SRV_ROUTE_READ;
    if (!strcmp(url, "/models"))
        return SRV_ROUTE_MODELS;
    if (!strcmp(url, "/model"))
        return SRV_ROUTE_MODEL;
    if (!strcmp(url, "/openapi.json"))
        return SRV_ROUTE_OPENAPI;
    if (!strcmp(url, "/healthz"))
        return SRV_ROUTE_HEALTHZ;
    if (!strcmp(url, "/metrics"))
        return SRV_ROUTE_METRICS;
    if (!strcmp(url, "/samples"))
        return SRV_ROUTE_SAMPLES;
    if (!strncmp(url, "/samples/", 9))
        return SRV_ROUTE_SAMPLE;
    if (srv_oip_is_v2(url)) {
        struct srv_oip_path p;
        return srv_oip_path_parse(&p, url) == SRV_OIP_INFER ? SRV_ROUTE_V2_INFER : SRV_ROUTE_V2;
    }
    return SRV_ROUTE_STATIC;
}

/* ---------------------------------------------------------------------------------------- */
/* libmicrohttpd callbacks                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* What the request's framing headers say, all occurrences counted (libmicrohttpd acts on the
 * first Content-Length alone). */
struct framing {
    int n_length, lengths_differ, n_coding;
    const char *length, *coding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->n_length++ && strcmp(f->length, value ? value : ""))
            f->lengths_differ = 1;
        f->length = value ? value : "";
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->n_coding++;
        f->coding = value ? value : "";
    }
    return MHD_YES;
}

/* RFC 9112 section 6: a request whose length two parties could read differently (request
 * smuggling) is refused and its connection closed. Content-Length values that are not a
 * number never get here: libmicrohttpd answers those 400 itself. Returns MHD_YES with
 * r->responded unset when the framing is fine. */
static enum MHD_Result check_framing(struct MHD_Connection *c, struct req *r)
{
    struct framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (!f.n_length && !f.n_coding)
        return MHD_YES;
    r->close = 1; /* if refused below */
    if (f.lengths_differ)
        return send_error(c, r, 400, "two different Content-Length headers", NULL);
    if (f.n_coding && f.n_length)
        return send_error(c, r, 400,
                          "both Transfer-Encoding and Content-Length: send one of them", NULL);
    if (f.n_coding > 1 || (f.n_coding && strcasecmp(f.coding, "chunked"))) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Transfer-Encoding \"%.40s\" is not supported: send the body with a "
                 "Content-Length or chunked",
                 f.coding);
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        return send_error(c, r, 501, msg, NULL);
    }
    r->close = 0;
    return MHD_YES;
}

/* A last answer written straight to the socket, for when libmicrohttpd cannot queue one (in
 * the middle of a body) and the connection is then dropped: a small write into an empty send
 * buffer, then the sending side shut, so the client reads the answer and the end of the
 * stream. */
static void answer_now(struct MHD_Connection *c, struct req *r, int status, const char *what,
                       size_t limit)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    char body[160], cors[320] = "", msg[900];
    int nb = snprintf(body, sizeof body, "{\"error\":\"%s of %zu bytes\"}\n", what, limit);
    if (r->cors_allow)
        snprintf(cors, sizeof cors,
                 "Access-Control-Allow-Origin: %s\r\nAccess-Control-Expose-Headers: %s\r\n",
                 r->cors_allow, SRV_CORS_EXPOSE);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "X-Request-Id: %s\r\n%s%sContent-Length: %d\r\n\r\n%s",
                     status, status == 413 ? "Content Too Large" : "Error", r->request_id, cors,
                     cors_varies(r->h) ? "Vary: Origin\r\n" : "", nb, body);
    if (n <= 0 || (size_t)n >= sizeof msg)
        return;
    if (send(ci->connect_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n) {
        shutdown(ci->connect_fd, SHUT_WR);
        r->responded = 1;
        r->status = status;
        r->bytes = (uint64_t)nb;
    }
}

/* Takes n bytes of the budget for bodies being received; 0, or -1 when it has no room. */
static int reserve_body(struct srv_http *h, struct req *r, size_t n)
{
    size_t cur = atomic_load(&h->body_bytes);
    do {
        if (n > h->cfg.max_body_memory || cur > h->cfg.max_body_memory - n)
            return -1;
    } while (!atomic_compare_exchange_weak(&h->body_bytes, &cur, cur + n));
    r->reserved += n;
    return 0;
}

static enum MHD_Result body_begin(struct srv_http *h, struct MHD_Connection *c, struct req *r);

/* First call for a POST /predict or /read: reject early on size or type, else get a buffer
 * ready. */
static enum MHD_Result predict_begin(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!srv_predict_body_kind(ct)) {
        struct srv_response res;
        srv_predict(&res, h->reg, NULL, ct, NULL, 0, NULL, NULL); /* words the 415 */
        return send_response(c, r, &res, NULL);
    }
    return body_begin(h, c, r);
}

/* The same for a POST /v2/.../infer. */
static enum MHD_Result infer_begin(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!srv_oip_content_type_ok(ct)) {
        char msg[240];
        snprintf(msg, sizeof msg,
                 "unsupported Content-Type %.100s for infer; send application/json, or "
                 "application/octet-stream with Inference-Header-Content-Length",
                 ct);
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return send_error(c, r, 415, msg, NULL);
    }
    const char *jl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    if (jl && strlen(jl) > 20)
        return send_error(c, r, 400, "Inference-Header-Content-Length is not a length", NULL);
    return body_begin(h, c, r);
}

/* Checks the declared length of a body we want and reserves memory for it. */
static enum MHD_Result body_begin(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || n > h->cfg.max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "body of %s bytes is larger than the limit of %zu bytes", cl,
                     h->cfg.max_body);
            return send_error(c, r, 413, msg, NULL);
        }
        /* The declared length is taken from the budget for all bodies being received now
         * (--max-body-memory), so that many large uploads at once cannot take the memory;
         * over it, 503 and the client retries. */
        if (reserve_body(h, r, (size_t)n) != 0) {
            r->close = 1;
            char msg[200];
            snprintf(msg, sizeof msg,
                     "busy: request bodies being received take the memory allowed for them "
                     "(%zu MiB); retry shortly",
                     h->cfg.max_body_memory >> 20);
            return send_busy(c, r, msg);
        }
        /* Trust the declared length for the limit check only: allocate at most 1 MiB up front
         * and grow as the bytes actually arrive. */
        r->cap = (size_t)n + 1 < ((size_t)1 << 20) ? (size_t)n + 1 : (size_t)1 << 20;
        r->body = malloc(r->cap);
        if (!r->body)
            return send_error(c, r, 500, "out of memory", NULL);
    }
    return MHD_YES;
}

static enum MHD_Result predict_data(struct srv_http *h, struct MHD_Connection *c, struct req *r,
                                    const char *data, size_t size)
{
    if (size > h->cfg.max_body - r->len) {
        /* A chunked body (no Content-Length) just passed the limit. libmicrohttpd 0.9.75
         * queues an answer only before the body or after its end, and the end may never come
         * (a chunk declared larger than the limit, sent slowly), so the 413 is written to the
         * socket here, its sending side closed, and the connection dropped. */
        r->close = 1;
        answer_now(c, r, 413, "body is larger than the limit", h->cfg.max_body);
        return MHD_NO;
    }
    /* A body trickled in (slowloris): once a request has taken longer than the timeout, it
     * must have arrived at 1 KiB/s on average, or the connection is closed. */
    uint64_t us = now_us() - r->t0;
    if (us > (uint64_t)h->cfg.timeout_s * 1000000u && (r->len + size) * 1000000u / us < 1024)
        return MHD_NO;
    if (r->len + size + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + size + 1)
            cap *= 2;
        if (cap > h->cfg.max_body + 1)
            cap = h->cfg.max_body + 1;
        if (cap > r->reserved && reserve_body(h, r, cap - r->reserved) != 0)
            return MHD_NO; /* a chunked body over the memory budget: nothing to answer yet */
        char *p = realloc(r->body, cap);
        if (!p)
            return MHD_NO;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, size);
    r->len += size;
    return MHD_YES;
}

/* Whether a /v2 infer body names the BYTES datatype (in JSON, or in the JSON header of Triton's
 * binary form; a false positive only sends a cheap body to the pool). */
static int has_bytes_tensor(const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    while (p && end - p >= 5 && (p = memchr(p, 'B', (size_t)(end - p - 4))) != NULL) {
        if (!memcmp(p, "BYTES", 5))
            return 1;
        p++;
    }
    return 0;
}

/* Images whose header says more than 1 MP and JSON bodies over 1 MiB (the cost of a request
 * grows with both; everything the page sends is far below); for /read, whose cuts look at a
 * wide mark many times (up to ~120 ms for a 2048x128 bar), an eighth of that. */
static int is_expensive(enum srv_route route, const char *kind, const char *body, size_t len)
{
    if (route == SRV_ROUTE_V2_INFER)
        return len > SRV_EXPENSIVE_V2_BYTES || has_bytes_tensor(body, len);
    if (!kind || !body)
        return 0;
    int shift = route == SRV_ROUTE_READ ? 3 : 0;
    if (!strcmp(kind, "image"))
        return srv_image_header_pixels(body, len) > (SRV_EXPENSIVE_PIXELS >> shift);
    return len > (SRV_EXPENSIVE_JSON_BYTES >> shift);
}

static void park(void *c) { MHD_suspend_connection(c); }

static struct req *job_req(struct srv_job *job)
{
    return (struct req *)(void *)((char *)job - offsetof(struct req, job));
}

/* The answer to a /predict or /read body, on whichever thread runs it. */
static void compute(struct srv_http *h, struct req *r, struct srv_response *res, const char *ct,
                    const char *qm, const char *qr)
{
    if (r->route == SRV_ROUTE_READ)
        srv_read(res, h->reg, h->metrics, ct, r->body ? r->body : "", r->len, qm, qr);
    else if (r->route == SRV_ROUTE_V2_INFER)
        srv_oip_infer(res, h->reg, h->metrics, &r->oip, qm, r->body ? r->body : "", r->len);
    else if (r->route == SRV_ROUTE_SAMPLES)
        srv_samples_post(res, h->cfg.samples, h->reg, h->metrics, ct, r->body ? r->body : "",
                         r->len, qm, r->has_ql ? r->ql : NULL);
    else
        srv_predict(res, h->reg, h->metrics, ct, r->body ? r->body : "", r->len, qm, qr);
}

/* On a pool thread: the answer, then the connection resumed (predict_end sends it). */
static void run_job(struct srv_job *job)
{
    struct req *r = job_req(job);
    compute(r->h, r, &r->res, r->has_ct ? r->ct : NULL, r->has_qm ? r->qm : NULL,
            r->has_qr ? r->qr : NULL);
    r->job_done = 1;
    MHD_resume_connection(r->mc);
}

/* Resumes the requests queued longer than max_wait_us (all when 0): they answer 503. */
static void expire_jobs(struct srv_http *h, uint64_t max_wait_us)
{
    for (struct srv_job *j = srv_pool_expire(h->pool, now_us(), max_wait_us), *next; j;
         j = next) {
        next = j->next;
        MHD_resume_connection(job_req(j)->mc);
    }
}

/* Copies a header or query value the job needs (they live in the connection's memory, which
 * a pool thread should not read). Returns 1 when present. */
static int keep(char *dst, size_t cap, const char *v)
{
    if (!v)
        return 0;
    snprintf(dst, cap, "%s", v);
    return 1;
}

static enum MHD_Result predict_end(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    if (r->body)
        r->body[r->len] = '\0';
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *qm = r->route == SRV_ROUTE_V2_INFER
                         ? MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                       "Inference-Header-Content-Length")
                         : MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    const char *qr = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "return_input");
    if (r->route == SRV_ROUTE_SAMPLES && !r->job_done) {
        const char *ql = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "label");
        /* (a value too long for ql is no digit: kept as one that says so) */
        r->has_ql = keep(r->ql, sizeof r->ql, ql && strlen(ql) < sizeof r->ql ? ql : ql ? "x" : NULL);
    }
    /* An expensive request is computed on a pool thread (pool.h) while its connection is
     * suspended; this runs again when it is resumed: answer ready, or expired in the queue. */
    if (r->job_done) {
        free(r->body);
        r->body = NULL;
        return send_response(c, r, &r->res, NULL);
    }
    if (r->job.expired)
        return send_pool_busy(c, r, h);
    const char *kind = srv_predict_body_kind(ct);
    if (is_expensive(r->route, kind, r->body, r->len)) {
        /* (cut copies stay what they were: a name over 63 bytes, an invalid return_input) */
        r->has_ct = keep(r->ct, sizeof r->ct, ct);
        r->has_qm = keep(r->qm, sizeof r->qm, qm);
        r->has_qr = keep(r->qr, sizeof r->qr, qr);
        r->mc = c;
        r->job.run = run_job;
        if (srv_pool_submit(h->pool, &r->job, now_us(), park, c) != 0)
            return send_pool_busy(c, r, h);
        return MHD_YES;
    }
    struct srv_response res;
    compute(h, r, &res, ct, qm, qr);
    free(r->body);
    r->body = NULL;
    return send_response(c, r, &res, NULL);
}

/* The methods a route takes, for 405's Allow and the CORS preflight alike (HEAD wherever GET). */
static const char *route_methods(enum srv_route route)
{
    switch (route) {
    case SRV_ROUTE_PREDICT:
    case SRV_ROUTE_READ:
    case SRV_ROUTE_V2_INFER: return "POST";
    case SRV_ROUTE_SAMPLES: return "GET, HEAD, POST";
    case SRV_ROUTE_SAMPLE: return "GET, HEAD, DELETE";
    default: return "GET, HEAD";
    }
}

/* OPTIONS with --cors: a browser's preflight before a cross-origin request (204 with what may be
 * sent here), or 403 for an origin that is not allowed. */
static enum MHD_Result preflight(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!r->cors_allow) {
        char msg[240];
        snprintf(msg, sizeof msg, "origin %.80s is not allowed here (the server allows %.80s)",
                 origin ? origin : "(none)", h->cfg.cors);
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return send_error(c, r, 403, msg, NULL);
    }
    char methods[64];
    snprintf(methods, sizeof methods, "%s, OPTIONS", route_methods(r->route));
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", SRV_CORS_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", SRV_CORS_MAX_AGE);
    common_headers(resp, r);
    enum MHD_Result ret = MHD_queue_response(c, 204, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->responded = 1;
        r->status = 204;
        r->bytes = 0;
    }
    return ret;
}

/* GET /samples (list), GET /samples/{id}[.png], DELETE /samples/{id}; POST /samples goes the
 * way of /predict's bodies (predict_end). */
static enum MHD_Result route_samples(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
    struct srv_response res;
    if (r->route == SRV_ROUTE_SAMPLES) {
        if (r->method == M_POST)
            return predict_end(h, c, r);
        if (r->method != M_GET && r->method != M_HEAD)
            return send_error(c, r, 405, "use GET or POST for /samples", route_methods(r->route));
        srv_samples_list_json(&res, h->cfg.samples,
                              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "label"),
                              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
                              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset"));
    } else if (r->method == M_DELETE) {
        srv_samples_delete_one(&res, h->cfg.samples, r->rest);
    } else if (r->method == M_GET || r->method == M_HEAD) {
        srv_samples_get_one(&res, h->cfg.samples, r->rest);
    } else {
        return send_error(c, r, 405, "use GET or DELETE for /samples/{id}",
                          route_methods(r->route));
    }
    return send_response(c, r, &res, NULL);
}

/* Whether the client is on this machine (127.0.0.0/8, ::1, or IPv4 loopback mapped in IPv6). */
static int on_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* The client's address as text ("" when unknown). */
static void client_address(struct MHD_Connection *c, char *out, size_t n)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct srv_http *h = cls;
    struct req *r = *con_cls;
    if (!r || !r->h) {
        if (!r && !(r = calloc(1, sizeof *r)))
            return MHD_NO;
        atomic_fetch_add(&h->in_flight, 1);
        *con_cls = r;
        r->h = h;
        r->t0 = now_us();
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->conn = ci ? ci->socket_context : NULL;
        srv_conn_set_busy(h->conns, r->conn, 1, r->t0);
        r->method = !strcmp(method, "GET")       ? M_GET
                    : !strcmp(method, "HEAD")    ? M_HEAD
                    : !strcmp(method, "POST")    ? M_POST
                    : !strcmp(method, "OPTIONS") ? M_OPTIONS
                    : !strcmp(method, "DELETE")  ? M_DELETE
                                                 : M_OTHER;
        srv_request_id(&h->ids, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id"),
                       r->request_id);
        r->cors_allow = srv_cors_allow(
            h->cfg.cors, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
        if (!h->cfg.quiet && h->cfg.log_format == SRV_LOG_JSON)
            client_address(c, r->remote, sizeof r->remote);
        snprintf(r->method_s, sizeof r->method_s, "%s", method);
        for (char *p = r->method_s; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                *p = '?';
        snprintf(r->path, sizeof r->path, "%s", url); /* access.c makes it safe to log */
        r->route = classify(url);
        if (r->route == SRV_ROUTE_V2 || r->route == SRV_ROUTE_V2_INFER)
            srv_oip_path_parse(&r->oip, url);
        if (r->route == SRV_ROUTE_SAMPLE)
            snprintf(r->rest, sizeof r->rest, "%s", url + 9);
        r->off_host = !on_loopback(c);
        /* A raw NUL in the request target ends the C string libmicrohttpd hands over, so
         * "/index.html\0.png" would be served as /index.html: the target as sent runs up to
         * the space before the version (version - 1), and on_uri measured it. */
        if (version && version > url && (size_t)(version - url) < 65536 &&
            r->raw_uri_len + 1 < (size_t)(version - url)) {
            r->close = 1;
            return send_error(c, r, 400, "a NUL byte in the request target", NULL);
        }
        enum MHD_Result framing = check_framing(c, r);
        if (r->responded || framing != MHD_YES)
            return framing;
        int writes = (r->route == SRV_ROUTE_SAMPLES && r->method == M_POST) ||
                     (r->route == SRV_ROUTE_SAMPLE && r->method == M_DELETE);
        if (writes && r->off_host && !h->cfg.allow_remote_writes) {
            r->close = 1;
            return send_error(c, r, 403,
                              "writing routes answer clients on this machine only; start the "
                              "server with --allow-remote-writes to take them from others",
                              NULL);
        }
        if (writes && h->writes) {
            const union MHD_ConnectionInfo *ca =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (srv_ratelimit_take(h->writes, ca ? ca->client_addr : NULL, now_us()) != 0) {
                r->close = 1;
                char msg[160];
                snprintf(msg, sizeof msg,
                         "too many writes from this address: at most %d at once and %d a "
                         "second (--samples-rate); retry shortly",
                         2 * h->cfg.write_rate, h->cfg.write_rate);
                return send_error(c, r, 429, msg, NULL);
            }
        }
        /* Early answers (413, 415) only for a body we do not want; everything else is answered
         * on a later call, after libmicrohttpd has read the whole request, so that the
         * connection can be kept alive. */
        if ((r->route == SRV_ROUTE_PREDICT || r->route == SRV_ROUTE_READ ||
             r->route == SRV_ROUTE_SAMPLES) &&
            r->method == M_POST)
            return predict_begin(h, c, r);
        if (r->route == SRV_ROUTE_V2_INFER && r->method == M_POST)
            return infer_begin(h, c, r);
        return MHD_YES;
    }
    if (r->responded) { /* answered early: drop whatever body follows */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result ret = MHD_YES;
        if ((r->route == SRV_ROUTE_PREDICT || r->route == SRV_ROUTE_READ ||
             r->route == SRV_ROUTE_V2_INFER || r->route == SRV_ROUTE_SAMPLES) &&
            r->method == M_POST)
            ret = predict_data(h, c, r, upload_data, *upload_data_size);
        *upload_data_size = 0; /* bodies of other requests are ignored */
        return ret;
    }
    if (r->method == M_OPTIONS && h->cfg.cors)
        return preflight(h, c, r);
    if (r->route == SRV_ROUTE_READ && r->method != M_POST)
        return send_error(c, r, 405, "use POST for /read", route_methods(r->route));
    if (r->route == SRV_ROUTE_PREDICT || r->route == SRV_ROUTE_READ) {
        if (r->method != M_POST)
            return send_error(c, r, 405, "use POST for /predict", route_methods(r->route));
        return predict_end(h, c, r);
    }
    if (r->route == SRV_ROUTE_V2_INFER) {
        if (r->method != M_POST)
            return send_error(c, r, 405, "use POST for /v2/models/{name}/infer",
                              route_methods(r->route));
        return predict_end(h, c, r);
    }
    if (r->route == SRV_ROUTE_SAMPLES || r->route == SRV_ROUTE_SAMPLE)
        return route_samples(h, c, r);
    if (r->method != M_GET && r->method != M_HEAD) {
        char msg[64];
        snprintf(msg, sizeof msg, "method %.16s not allowed here; use GET or HEAD", r->method_s);
        return send_error(c, r, 405, msg, route_methods(r->route));
    }
    switch (r->route) {
    case SRV_ROUTE_MODELS:
    case SRV_ROUTE_MODEL: return route_models(h, c, r);
    case SRV_ROUTE_HEALTHZ: return route_healthz(h, c, r);
    case SRV_ROUTE_METRICS: return route_metrics(h, c, r);
    case SRV_ROUTE_V2: return route_v2(h, c, r);
    case SRV_ROUTE_OPENAPI: {
        size_t len = 0;
        const char *doc = srv_openapi_json(&len);
        return send_copy(c, r, 200, doc, len, "application/json");
    }
    default: return route_static(h, c, r, url);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct srv_http *h = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    if (!r->h) { /* refused by libmicrohttpd before on_request (a malformed header) */
        free(r);
        return;
    }
    uint64_t us = now_us() - r->t0;
    int status = r->responded ? r->status : 0; /* 0: connection ended without an answer */
    srv_metrics_request(h->metrics, r->route, status, us, r->bytes);
    if (!h->cfg.quiet) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        struct srv_access a = {
            .method = r->method_s,
            .path = r->path,
            .status = status,
            .bytes = r->bytes,
            .duration_us = us,
            .request_id = r->request_id,
            .remote = r->remote,
            .aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK,
            .unix_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000,
        };
        char line[1024];
        size_t len = srv_access_line(line, sizeof line, h->cfg.log_format, &a);
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
    if (r->reserved)
        atomic_fetch_sub(&h->body_bytes, r->reserved);
    srv_conn_set_busy(h->conns, r->conn, 0, now_us());
    free(r->body);
    free(r);
    atomic_fetch_sub(&h->in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct srv_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? srv_conns_add(h->conns, ci->connect_fd, now_us()) : NULL;
    } else {
        srv_conns_remove(h->conns, *socket_context);
        *socket_context = NULL;
    }
}

/* Called with the request target as sent, before anything splits or decodes it: the request
 * state starts here, with the target's length as a C string (see the NUL check). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req *r = calloc(1, sizeof *r);
    if (r)
        r->raw_uri_len = strlen(uri);
    return r;
}

/* Percent-decoding of the path and query that keeps "%00" as the three characters, so a NUL
 * can never cut a path short ("/index.html%00.png"): the file lookup then simply fails. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (p[0] == '%' && p[1] && p[2] &&
            (hi = (p[1] >= '0' && p[1] <= '9')   ? p[1] - '0'
                  : (p[1] >= 'a' && p[1] <= 'f') ? p[1] - 'a' + 10
                  : (p[1] >= 'A' && p[1] <= 'F') ? p[1] - 'A' + 10
                                                 : -1) >= 0 &&
            (lo = (p[2] >= '0' && p[2] <= '9')   ? p[2] - '0'
                  : (p[2] >= 'a' && p[2] <= 'f') ? p[2] - 'a' + 10
                  : (p[2] >= 'A' && p[2] <= 'F') ? p[2] - 'A' + 10
                                                 : -1) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* The listening socket, made here rather than by libmicrohttpd so that a port in use, a
 * privileged port or an address this machine does not have is said once, plainly. Returns the
 * socket (nonblocking, close-on-exec, SO_REUSEADDR, IPv6 only for an IPv6 address, backlog
 * 1024) with the port it got in *port_out, or -1 with the reason in err. */
static int listen_on(const char *bind_addr, int port, int *port_out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int family;
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, bind_addr, &a4->sin_addr) == 1) {
        family = a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, bind_addr, &a6->sin6_addr) == 1) {
        family = a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else {
        snprintf(err, errlen, "--bind %s: not an IPv4 or IPv6 address", bind_addr);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot make a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    const char *open = family == AF_INET6 ? "[" : "", *close_ = family == AF_INET6 ? "]" : "";
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, errlen,
                     "%s%s%s:%d: the port is in use: another server listens there; stop it or "
                     "choose another --port",
                     open, bind_addr, close_, port);
        else if (e == EACCES)
            snprintf(err, errlen,
                     "%s%s%s:%d: no permission to listen there (ports below 1024 need "
                     "privileges); choose another --port",
                     open, bind_addr, close_, port);
        else if (e == EADDRNOTAVAIL)
            snprintf(err, errlen, "--bind %s: not an address of this machine", bind_addr);
        else
            snprintf(err, errlen, "%s%s%s:%d: cannot listen: %s", open, bind_addr, close_, port,
                     strerror(e));
        close(fd);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t gotlen = sizeof got;
    *port_out = port;
    if (getsockname(fd, (struct sockaddr *)&got, &gotlen) == 0)
        *port_out = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&got)->sin6_port
                                             : ((struct sockaddr_in *)(void *)&got)->sin_port);
    return fd;
}

int srv_http_start(struct srv_http **out, const struct srv_config *cfg, struct srv_registry *reg,
                   struct srv_metrics *metrics, const struct srv_static *st, char *err,
                   size_t errlen)
{
    *out = NULL;
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->cfg = *cfg;
    h->reg = reg;
    h->metrics = metrics;
    h->st = st;
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->stopping, 0);
    atomic_init(&h->body_bytes, 0);
    atomic_init(&h->draining, 0);
    srv_ids_init(&h->ids);
    /* People correct a few digits a minute; a script that writes faster is slowed down rather
     * than let fill the database. */
    if (cfg->samples && cfg->write_rate > 0 &&
        !(h->writes = srv_ratelimit_new(cfg->write_rate, 2.0 * cfg->write_rate))) {
        snprintf(err, errlen, "out of memory");
        srv_ratelimit_free(h->writes);
        free(h);
        return -1;
    }
    h->conns = srv_conns_new();
    if (!h->conns) {
        snprintf(err, errlen, "out of memory");
        srv_ratelimit_free(h->writes);
        free(h);
        return -1;
    }
    /* Expensive requests: by default on half as many threads as the server has, so that the
     * server's own threads are left for everything else; queued ones hold no thread, so many
     * may wait, unless waiting is off (--large-decode-wait 0). */
    int nthreads = cfg->threads > 0 ? cfg->threads : 1;
    int nlarge = cfg->max_large_decodes > 0 ? cfg->max_large_decodes
                                            : (nthreads / 2 > 0 ? nthreads / 2 : 1);
    int nwait = cfg->large_decode_wait_ms > 0 ? SRV_POOL_MAX_WAITING : 0;
    if (srv_pool_new(&h->pool, nlarge, nwait) != 0) {
        snprintf(err, errlen, "cannot start the threads for expensive requests");
        srv_conns_free(h->conns);
        srv_ratelimit_free(h->writes);
        free(h);
        return -1;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME;
    const char *bind = cfg->bind ? cfg->bind : "127.0.0.1";
    int port = 0;
    int fd = listen_on(bind, cfg->port, &port, err, errlen);
    if (fd < 0) {
        srv_pool_free(h->pool);
        srv_conns_free(h->conns);
        srv_ratelimit_free(h->writes);
        free(h);
        return -1;
    }
    if (strchr(bind, ':'))
        flags |= MHD_USE_IPv6;
    if (!cfg->quiet)
        flags |= MHD_USE_ERROR_LOG;
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : 1;
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->timeout_s, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)cfg->connection_memory, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)cfg->max_connections_per_ip, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
                            ops, MHD_OPTION_END);
    if (!h->d) {
        close(fd);
        snprintf(err, errlen, "%s:%d: the HTTP daemon did not start", bind, port);
        srv_pool_free(h->pool);
        srv_conns_free(h->conns);
        srv_ratelimit_free(h->writes);
        free(h);
        return -1;
    }
    h->port = port;
    *out = h;
    return 0;
}

int srv_http_port(const struct srv_http *h) { return h->port; }

void srv_http_sweep(struct srv_http *h)
{
    if (!h)
        return;
    uint64_t now = now_us();
    srv_conns_close_idle(h->conns, now, (uint64_t)h->cfg.timeout_s * 1000000u);
    srv_conns_close_half_closed(h->conns, now, 500000);
    expire_jobs(h, (uint64_t)h->cfg.large_decode_wait_ms * 1000u);
}

void srv_http_drain(struct srv_http *h, int on)
{
    atomic_store(&h->draining, on != 0);
}

int srv_http_stop(struct srv_http *h, int grace_ms)
{
    if (!h)
        return 0;
    /* From now on every answer says Connection: close. Closing the quiesced listening socket
     * makes new connections fail at once instead of waiting in the backlog of a server that
     * will never accept them. Idle keep-alive connections are closed now, busy ones after
     * their answer; the daemon stops when none is left, or when the grace time is over. */
    atomic_store(&h->stopping, 1);
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    int left = atomic_load(&h->in_flight);
    for (int waited = 0; waited < grace_ms; waited += 5) {
        /* again each time: a connection that was busy a moment ago may be idle now (its
         * client sent nothing more after the answer) */
        srv_conns_close_idle(h->conns, now_us(), 0);
        left = atomic_load(&h->in_flight);
        if (left == 0 && srv_conns_count(h->conns) == 0)
            break;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Jobs still queued answer 503; the pool's threads finish the ones running, which resume
     * their connections, before the daemon goes. */
    expire_jobs(h, 0);
    srv_pool_free(h->pool);
    left = atomic_load(&h->in_flight);
    MHD_stop_daemon(h->d);
    srv_conns_free(h->conns);
    srv_ratelimit_free(h->writes);
    free(h);
    return left;
}
