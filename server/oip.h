/*
 * oip.h - the Open Inference Protocol's REST routes (KServe v2, also Triton's and Seldon's
 * HTTP API) on top of predict.c, without any HTTP library.
 *
 * Routes (server/API.md "Open Inference Protocol"):
 *   GET  /v2                                              server metadata
 *   GET  /v2/health/live, /v2/health/ready                (answered by http.c: readiness
 *                                                          is shared with /healthz)
 *   GET  /v2/models/{name}[/versions/{v}]                 model metadata
 *   GET  /v2/models/{name}[/versions/{v}]/ready           model readiness
 *   POST /v2/models/{name}[/versions/{v}]/infer           inference
 * A digits model has one version, "1". An infer request has one input: FP32 or UINT8 pixels
 * of shape [N,784], [N,28,28] or [N,1,28,28] in MNIST's layout (what /predict's
 * {"pixels":[784]} takes: FP32 in [0,1], UINT8 0..255, 1 or 255 = ink), or BYTES [N] (or
 * [N,1]) holding image files, normalised like an upload to /predict. Outputs: probabilities
 * FP32 [N,10] and prediction INT64 [N] (-1 for a blank image or one that is not a digit).
 * Triton's binary tensor extension is read and written: Inference-Header-Content-Length,
 * binary_data_size, binary_data, binary_data_output.
 *
 * Large bodies never become a cJSON tree: the request is read in place by jscan.h.
 */
#ifndef SRV_OIP_H
#define SRV_OIP_H

#include "metrics.h"
#include "models.h"
#include "predict.h"
#include "request.h"

#include <stddef.h>

enum srv_oip_kind {
    SRV_OIP_NONE,        /* not a /v2 route: 404 */
    SRV_OIP_SERVER,      /* GET /v2 */
    SRV_OIP_LIVE,        /* GET /v2/health/live */
    SRV_OIP_READY,       /* GET /v2/health/ready */
    SRV_OIP_MODEL,       /* GET /v2/models/{name}[/versions/{v}] */
    SRV_OIP_MODEL_READY, /* GET .../ready */
    SRV_OIP_INFER,       /* POST .../infer */
};

#define SRV_OIP_VERSION_MAX 32

struct srv_oip_path {
    enum srv_oip_kind kind;
    char model[SRV_MODEL_NAME_MAX];
    char version[SRV_OIP_VERSION_MAX]; /* "" when the path names none */
};

/* 1 when url is "/v2" or below "/v2/" (every such path is answered by the /v2 routes, with a
 * 404 in their words when it names none of them). */
int srv_oip_is_v2(const char *url);

/* Splits a /v2 path into *p; returns p->kind. A model name or version too long, empty or
 * holding '/' gives SRV_OIP_NONE. */
enum srv_oip_kind srv_oip_path_parse(struct srv_oip_path *p, const char *url);

/* GET /v2: {"name":"digits","version":..., "extensions":[...]}. */
void srv_oip_server_metadata(struct srv_response *res);

/* GET /v2/models/... (SRV_OIP_MODEL or SRV_OIP_MODEL_READY): the metadata or readiness of
 * p's model in snapshot s; 404 for an unknown model or version, 503 when none is loaded. */
void srv_oip_model(struct srv_response *res, const struct srv_snapshot *s,
                   const struct srv_oip_path *p);

/* 1 when an infer request may have this Content-Type: application/json, or
 * application/octet-stream (Triton's binary extension), or none at all (Triton's clients
 * send none with binary tensors). */
int srv_oip_content_type_ok(const char *content_type);

/*
 * POST .../infer: parses the body (len bytes; json_len_header is the
 * Inference-Header-Content-Length header or NULL), predicts every image with p's model, and
 * fills res with the inference response (JSON, or JSON and binary tensors, res->has_json_len
 * set). Every problem is a 4xx JSON {"error": ...}: 400 for the request, 404 for the model or
 * version, 503 when no model is loaded. Thread-safe.
 */
void srv_oip_infer(struct srv_response *res, struct srv_registry *reg,
                   struct srv_metrics *metrics, const struct srv_oip_path *p,
                   const char *json_len_header, const char *body, size_t len);

#endif
