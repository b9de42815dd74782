/*
 * metrics.c - request, latency, prediction and reload counters (see metrics.h).
 */
#include "metrics.h"

#include <string.h>
#include <time.h>

static const int status_codes[SRV_METRICS_STATUSES] = {200, 304, 400, 404, 405,
                                                       413, 415, 500, 503, 0};
/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bucket_us[SRV_METRICS_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

static void add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

static uint64_t get(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

void srv_metrics_init(struct srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->start_unix = (int64_t)time(NULL);
}

const char *srv_route_name(enum srv_route r)
{
    switch (r) {
    case SRV_ROUTE_PREDICT: return "/predict";
    case SRV_ROUTE_READ: return "/read";
    case SRV_ROUTE_MODELS: return "/models";
    case SRV_ROUTE_MODEL: return "/model";
    case SRV_ROUTE_HEALTHZ: return "/healthz";
    case SRV_ROUTE_METRICS: return "/metrics";
    case SRV_ROUTE_STATIC: return "static";
    case SRV_ROUTE_V2: return "/v2";
    case SRV_ROUTE_V2_INFER: return "/v2/models/infer";
    case SRV_ROUTE_OPENAPI: return "/openapi.json";
    case SRV_ROUTE_SAMPLES: return "/samples";
    case SRV_ROUTE_SAMPLE: return "/samples/{id}";
    default: return "other";
    }
}

static int status_index(int status)
{
    for (int i = 0; i < SRV_METRICS_STATUSES - 1; i++)
        if (status_codes[i] == status)
            return i;
    return SRV_METRICS_STATUSES - 1; /* other */
}

void srv_metrics_request(struct srv_metrics *m, enum srv_route route, int status, uint64_t us,
                         uint64_t bytes)
{
    if ((unsigned)route >= SRV_ROUTE_COUNT)
        route = SRV_ROUTE_OTHER;
    add(&m->requests[route][status_index(status)], 1);
    int b = 0;
    while (b < SRV_METRICS_BUCKETS - 1 && us > bucket_us[b])
        b++;
    add(&m->latency[b], 1);
    add(&m->latency_sum_us, us);
    add(&m->bytes_out, bytes);
}

void srv_metrics_prediction(struct srv_metrics *m, int digit)
{
    add(&m->predictions[digit >= 0 && digit < 10 ? digit : 10], 1);
}

void srv_metrics_not_a_digit(struct srv_metrics *m) { add(&m->predictions[11], 1); }

void srv_metrics_reload(struct srv_metrics *m, int ok)
{
    add(ok ? &m->reloads_ok : &m->reloads_failed, 1);
}

void srv_metrics_render(const struct srv_metrics *m, struct srv_buf *b, int models,
                        uint64_t generation)
{
    srv_buf_puts(b, "# HELP digits_http_requests_total HTTP requests answered, by route and "
                    "status.\n# TYPE digits_http_requests_total counter\n");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++) {
        for (int s = 0; s < SRV_METRICS_STATUSES; s++) {
            uint64_t v = get(&m->requests[r][s]);
            if (!v)
                continue;
            if (status_codes[s])
                srv_buf_printf(b, "digits_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                               srv_route_name((enum srv_route)r), status_codes[s],
                               (unsigned long long)v);
            else
                srv_buf_printf(b,
                               "digits_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                               srv_route_name((enum srv_route)r), (unsigned long long)v);
        }
    }
    srv_buf_puts(b, "# HELP digits_http_request_duration_seconds Time from the request line to "
                    "the end of the answer.\n"
                    "# TYPE digits_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < SRV_METRICS_BUCKETS; i++) {
        cum += get(&m->latency[i]);
        if (i < SRV_METRICS_BUCKETS - 1)
            srv_buf_printf(b, "digits_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                           (double)bucket_us[i] / 1e6, (unsigned long long)cum);
        else
            srv_buf_printf(b, "digits_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                           (unsigned long long)cum);
    }
    srv_buf_printf(b,
                   "digits_http_request_duration_seconds_sum %.6f\n"
                   "digits_http_request_duration_seconds_count %llu\n",
                   (double)get(&m->latency_sum_us) / 1e6, (unsigned long long)cum);
    srv_buf_puts(
        b, "# HELP digits_predictions_total Images answered, by predicted digit "
           "(blank: no ink; not_a_digit: rejected).\n# TYPE digits_predictions_total counter\n");
    for (int d = 0; d < 12; d++) {
        if (d < 10)
            srv_buf_printf(b, "digits_predictions_total{digit=\"%d\"} %llu\n", d,
                           (unsigned long long)get(&m->predictions[d]));
        else
            srv_buf_printf(b, "digits_predictions_total{digit=\"%s\"} %llu\n",
                           d == 10 ? "blank" : "not_a_digit",
                           (unsigned long long)get(&m->predictions[d]));
    }
    srv_buf_printf(b,
                   "# HELP digits_model_reloads_total Model reloads (SIGHUP), by result.\n"
                   "# TYPE digits_model_reloads_total counter\n"
                   "digits_model_reloads_total{result=\"ok\"} %llu\n"
                   "digits_model_reloads_total{result=\"failed\"} %llu\n"
                   "# HELP digits_models_loaded Models being served.\n"
                   "# TYPE digits_models_loaded gauge\n"
                   "digits_models_loaded %d\n"
                   "# HELP digits_model_generation Snapshot generation (+1 per good reload).\n"
                   "# TYPE digits_model_generation gauge\n"
                   "digits_model_generation %llu\n"
                   "# HELP digits_http_response_bytes_total Response bytes queued.\n"
                   "# TYPE digits_http_response_bytes_total counter\n"
                   "digits_http_response_bytes_total %llu\n"
                   "# HELP digits_start_time_seconds Start time of the process.\n"
                   "# TYPE digits_start_time_seconds gauge\n"
                   "digits_start_time_seconds %lld\n",
                   (unsigned long long)get(&m->reloads_ok),
                   (unsigned long long)get(&m->reloads_failed), models,
                   (unsigned long long)generation, (unsigned long long)get(&m->bytes_out),
                   (long long)m->start_unix);
}
