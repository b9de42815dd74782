/*
 * metrics.h - Prometheus counters for GET /metrics.
 *
 * Plain relaxed atomic counters, one set per server; rendering reads them without stopping
 * anyone, so a scrape sees each counter exact but not all of them at one instant.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include "buf.h"

#include <stdint.h>

enum srv_route {
    SRV_ROUTE_PREDICT,
    SRV_ROUTE_MODELS,
    SRV_ROUTE_MODEL,
    SRV_ROUTE_HEALTHZ,
    SRV_ROUTE_METRICS,
    SRV_ROUTE_STATIC,
    SRV_ROUTE_OTHER,
    SRV_ROUTE_READ,
    SRV_ROUTE_V2,       /* Open Inference Protocol metadata and health (oip.h) */
    SRV_ROUTE_V2_INFER, /* .../infer */
    SRV_ROUTE_OPENAPI,  /* GET /openapi.json */
    SRV_ROUTE_SAMPLES,  /* GET, POST /samples (samples_route.h) */
    SRV_ROUTE_SAMPLE,   /* GET, DELETE /samples/{id}[.png] */
    SRV_ROUTE_COUNT
};

#define SRV_METRICS_STATUSES 10 /* 200 304 400 404 405 413 415 500 503 other */
#define SRV_METRICS_BUCKETS 14  /* latency buckets, the last one +Inf */

struct srv_metrics {
    uint64_t requests[SRV_ROUTE_COUNT][SRV_METRICS_STATUSES];
    uint64_t latency[SRV_METRICS_BUCKETS]; /* non-cumulative; cumulated when rendered */
    uint64_t latency_sum_us;
    uint64_t predictions[12 /* 0..9, blank, not a digit */];
    uint64_t reloads_ok, reloads_failed;
    uint64_t bytes_out;
    int64_t start_unix;
};

void srv_metrics_init(struct srv_metrics *m);
const char *srv_route_name(enum srv_route r);
/* Counts one finished request (thread-safe). */
void srv_metrics_request(struct srv_metrics *m, enum srv_route route, int status, uint64_t us,
                         uint64_t bytes);
/* Counts one answered image: digit 0..9, or -1 for a blank image. */
void srv_metrics_prediction(struct srv_metrics *m, int digit);
/* One image rejected as "not a digit" by a model with that class. */
void srv_metrics_not_a_digit(struct srv_metrics *m);
void srv_metrics_reload(struct srv_metrics *m, int ok);
/* Appends the Prometheus text exposition (version 0.0.4). models: models loaded now;
 * generation: the registry's snapshot generation. */
void srv_metrics_render(const struct srv_metrics *m, struct srv_buf *b, int models,
                        uint64_t generation);

#endif
