/*
 * http.h - the libmicrohttpd daemon: routing, per-request state, limits, access log.
 *
 * One daemon with an internal thread pool on epoll (MHD_USE_INTERNAL_POLLING_THREAD |
 * MHD_USE_EPOLL, --threads threads); a thread runs the requests it reads to completion, so an
 * ordinary prediction runs on the thread that read the request, while an expensive one (an
 * image over 1 MP, a JSON body over 1 MiB: pool.h) is computed on the pool's threads with its
 * connection suspended. Per request: state allocated when the request line arrives, the body
 * buffered up to --max-body and within --max-body-memory for all bodies at once (413 as soon
 * as Content-Length says it is larger, or as soon as a chunked body passes the limit), freed
 * in the completion callback, which also writes the access-log line and the metrics. The
 * connections themselves are tracked (conns.h) for the per-request deadline, half-closed
 * clients and the graceful stop.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "access.h"
#include "metrics.h"
#include "models.h"
#include "samples.h"
#include "static.h"

#include <stddef.h>

struct srv_config {
    const char *bind; /* IPv4 or IPv6 literal; default "127.0.0.1" */
    int port;         /* 0 = any free port (see srv_http_port) */
    int threads;      /* >= 1 */
    size_t max_body;  /* bytes */
    unsigned max_connections;
    unsigned timeout_s;       /* idle connection timeout */
    size_t connection_memory; /* libmicrohttpd per-connection pool (headers, buffers) */
    int quiet;                /* no access log */
    int max_large_decodes;    /* threads for expensive requests (< 1: threads / 2, >= 1) */
    int large_decode_wait_ms; /* how long one may wait for them before a 503 (0: not at all) */
    unsigned max_connections_per_ip; /* 0 = no limit */
    size_t max_body_memory;          /* bytes all bodies being received may take together */
    const char *cors;                /* --cors: "*" or one origin (access.h); NULL = off */
    enum srv_log_format log_format;  /* the access log's lines (unless quiet) */
    struct srv_samples *samples;     /* --samples: the /samples routes (NULL: 404); not owned */
    int allow_remote_writes;         /* writing routes answer clients off loopback too */
    int write_rate; /* writes a second per client address (burst: twice that); 0 = no limit */
};

struct srv_http;

/* Starts serving. reg and metrics are required; st may be NULL (no static files). None of
 * them is owned: they must outlive srv_http_stop. err: "127.0.0.1:8080: cannot listen". */
int srv_http_start(struct srv_http **out, const struct srv_config *cfg, struct srv_registry *reg,
                   struct srv_metrics *metrics, const struct srv_static *st, char *err,
                   size_t errlen);
/* The port actually bound. */
int srv_http_port(const struct srv_http *h);
/* Closes connections that have waited longer than the timeout for their next request to be
 * complete, however slowly its bytes trickled in, and idle ones whose client has half-closed
 * (conns.h; call it about once a second). */
void srv_http_sweep(struct srv_http *h);
/* Draining (on != 0): /healthz and /v2/health/ready answer 503 "draining" so that a load
 * balancer takes this server out of rotation, while every other request, new connections
 * included, is served as before. Thread-safe. */
void srv_http_drain(struct srv_http *h, int on);
/* Graceful stop: stops accepting connections, answers every request from then on with
 * Connection: close, closes idle keep-alive connections, waits up to grace_ms for the
 * requests in flight to be answered and their connections closed, then stops the threads and
 * frees h. Returns the number of requests that were still in flight when the grace time ran
 * out (0 normally). Accepts NULL. */
int srv_http_stop(struct srv_http *h, int grace_ms);

#endif
