/*
 * predict.h - the POST /predict handler and JSON responses, without any HTTP library.
 *
 * http.c hands over the complete body, the Content-Type and the two query parameters and gets
 * back a status and a malloc'd JSON body; tests call the same function directly. Each thread
 * keeps its own nn_workspace per model (a pthread key, freed when the thread ends), so the
 * predict path takes no lock: the only shared step is taking a reference to the model
 * snapshot (models.h).
 */
#ifndef SRV_PREDICT_H
#define SRV_PREDICT_H

#include "metrics.h"
#include "models.h"

#include <stddef.h>

struct srv_response {
    int status;
    char *body; /* malloc'd, owned by the response; NULL for no body */
    size_t len;
    const char *content_type; /* static string */
    /* Triton's binary tensor extension (oip.h): when set, the body is a JSON header of
     * json_len bytes followed by tensor bytes, sent with Inference-Header-Content-Length. */
    int has_json_len;
    size_t json_len;
};

/* Fills res with {"error": msg} and the status. If even that cannot be allocated, body is
 * NULL and status 500. */
void srv_response_error(struct srv_response *res, int status, const char *msg);
void srv_response_free(struct srv_response *res);

/*
 * Answers one /predict request. content_type is the header (NULL if absent): application/json
 * bodies are parsed by request.c; image/png, image/jpeg, image/bmp, image/gif and
 * application/octet-stream go through decode.c; anything else is 415. q_model and
 * q_return_input are the query parameters ("?model=x&return_input=1", NULL if absent), used
 * for image bodies. Never fails for input: every problem is a 4xx JSON error. metrics may be
 * NULL. Thread-safe.
 */
void srv_predict(struct srv_response *res, struct srv_registry *reg, struct srv_metrics *metrics,
                 const char *content_type, const char *body, size_t len, const char *q_model,
                 const char *q_return_input);

/* Frees the calling thread's workspaces now (for threads that are not going to exit, such as a
 * test's main thread). */
void srv_predict_thread_cleanup(void);

/* The body of a /predict or /read request to images, the same way for both: JSON through
 * srv_request_parse_json, image uploads through srv_image_decode with the query's model and
 * return_input. Returns 0 with *req filled (srv_request_free it), or -1 with res holding the
 * 4xx/5xx error and *req empty. */
struct srv_request;
int srv_predict_parse_body(struct srv_response *res, struct srv_request *req,
                           const char *content_type, const char *body, size_t len,
                           const char *q_model, const char *q_return_input);

/* This thread's workspace for model m of snapshot s (cached per thread, never freed by the
 * caller); NULL when out of memory. */
nn_workspace *srv_predict_workspace(const struct srv_snapshot *s, const struct srv_model *m);

/* One image's answer, the same for /predict, /read and /v2 infer. */
struct srv_prediction {
    int blank;          /* no ink: digit -1, no probabilities */
    int digit;          /* 0..9, NN_NOT_A_DIGIT, or -1 when blank */
    int shown;          /* probabilities in p10: 10, or the model's classes when fewer */
    int has_reject;     /* the model has a "not a digit" class: reject is its probability */
    float p10[10], reject;
    const float *input; /* the 784 values the model saw (x, or the raw image's own pixels) */
};

/* Normalises im (unless raw) into x, predicts it with model m of snapshot s on this thread's
 * workspace and counts it in metrics (may be NULL). Returns 0, or -1 with res holding the
 * error (400 for an image that cannot be normalised, 500 out of memory). */
struct srv_image;
int srv_predict_image(struct srv_prediction *out, float x[784], const struct srv_snapshot *s,
                      const struct srv_model *m, const struct srv_image *im,
                      struct srv_metrics *metrics, struct srv_response *res);

/* Fills res with a 400 naming the unknown model and the loaded ones; where prefixes it
 * ("images[2]: " or ""). */
void srv_predict_unknown_model(struct srv_response *res, const struct srv_snapshot *s,
                               const char *name, const char *where);

/* The media type of a Content-Type header value: "json", "image", or NULL (unsupported). */
const char *srv_predict_body_kind(const char *content_type);

#endif
