/*
 * predict.c - POST /predict: body to images, images to digits, digits to JSON (predict.h).
 */
#include "predict.h"

#include "buf.h"
#include "decode.h"
#include "request.h"

#include "nn/nn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A raw 28x28 image whose every value is below this has no ink (1/255: nothing an 8-bit
 * canvas would show). Normalised images use nn_image_normalize's own test. */
#define RAW_INK_MIN (1.0f / 255.0f)

/* ---------------------------------------------------------------------------------------- */
/* Per-thread workspaces                                                                    */
/* ---------------------------------------------------------------------------------------- */

#define WS_SLOTS 8

struct ws_cache {
    uint64_t generation; /* snapshot generation the slots belong to */
    uint64_t ids[WS_SLOTS];
    nn_workspace *ws[WS_SLOTS];
    int n, next;
};

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_cache_clear(struct ws_cache *c)
{
    for (int i = 0; i < c->n; i++)
        nn_workspace_free(c->ws[i]);
    c->n = c->next = 0;
}

static void ws_cache_destroy(void *p)
{
    struct ws_cache *c = p;
    if (c) {
        ws_cache_clear(c);
        free(c);
    }
}

static void ws_key_init(void) { pthread_key_create(&ws_key, ws_cache_destroy); }

/* This thread's workspace for model m of snapshot s; NULL on OOM. Workspaces of models from
 * older snapshots are dropped the first time the thread sees a newer snapshot; they never
 * touch their model after creation, so dropping them late is safe. */
static nn_workspace *thread_workspace(const struct srv_snapshot *s, const struct srv_model *m)
{
    pthread_once(&ws_once, ws_key_init);
    struct ws_cache *c = pthread_getspecific(ws_key);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || pthread_setspecific(ws_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    if (c->generation != s->generation) {
        ws_cache_clear(c);
        c->generation = s->generation;
    }
    for (int i = 0; i < c->n; i++)
        if (c->ids[i] == m->id)
            return c->ws[i];
    nn_workspace *ws = NULL;
    if (nn_workspace_new(&ws, m->model, 1) != NN_OK)
        return NULL;
    int slot;
    if (c->n < WS_SLOTS) {
        slot = c->n++;
    } else { /* round-robin eviction: only a request using > 8 models gets here */
        slot = c->next;
        c->next = (c->next + 1) % WS_SLOTS;
        nn_workspace_free(c->ws[slot]);
    }
    c->ids[slot] = m->id;
    c->ws[slot] = ws;
    return ws;
}

nn_workspace *srv_predict_workspace(const struct srv_snapshot *s, const struct srv_model *m)
{
    return thread_workspace(s, m);
}

void srv_predict_thread_cleanup(void)
{
    pthread_once(&ws_once, ws_key_init);
    struct ws_cache *c = pthread_getspecific(ws_key);
    if (c) {
        pthread_setspecific(ws_key, NULL);
        ws_cache_destroy(c);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Responses                                                                                */
/* ---------------------------------------------------------------------------------------- */

static const char json_type[] = "application/json";

void srv_response_error(struct srv_response *res, int status, const char *msg)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_puts(&b, "{\"error\":");
    srv_buf_json_string(&b, msg);
    srv_buf_puts(&b, "}\n");
    res->body = srv_buf_steal(&b, &res->len);
    res->status = res->body ? status : 500;
    if (!res->body)
        res->len = 0;
    res->content_type = json_type;
}

void srv_response_free(struct srv_response *res)
{
    if (!res)
        return;
    free(res->body);
    res->body = NULL;
    res->len = 0;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *srv_predict_body_kind(const char *ct)
{
    if (!ct)
        return NULL;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const images[] = {"image/png", "image/jpeg", "image/jpg",
                                         "image/bmp", "image/gif",  "application/octet-stream"};
    if (n == 16 && !strncasecmp(ct, "application/json", n))
        return "json";
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        if (strlen(images[i]) == n && !strncasecmp(ct, images[i], n))
            return "image";
    return NULL;
}

/* "unknown model \"x\"; loaded: a, b" */
void srv_predict_unknown_model(struct srv_response *res, const struct srv_snapshot *s,
                               const char *name, const char *where)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b, "%sunknown model \"%.64s\"; loaded: ", where, name);
    for (int i = 0; i < s->n; i++)
        srv_buf_printf(&b, "%s%s", i ? ", " : "", s->models[i].name);
    srv_buf_puts(&b, " (see GET /models)");
    srv_response_error(res, 400, b.data && !b.oom ? b.data : "unknown model");
    srv_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------- */
/* Prediction                                                                               */
/* ---------------------------------------------------------------------------------------- */

int srv_predict_image(struct srv_prediction *out, float x[NN_MNIST_PIXELS],
                      const struct srv_snapshot *s, const struct srv_model *m,
                      const struct srv_image *im, struct srv_metrics *metrics,
                      struct srv_response *res)
{
    memset(out, 0, sizeof *out);
    out->digit = -1;
    out->input = x;
    if (im->raw) {
        float mx = 0;
        for (int k = 0; k < NN_MNIST_PIXELS; k++)
            mx = im->pixels[k] > mx ? im->pixels[k] : mx;
        out->blank = mx < RAW_INK_MIN;
        out->input = im->pixels;
    } else {
        int rc = nn_image_normalize(x, im->pixels, im->width, im->height);
        if (rc == NN_EBLANK) {
            out->blank = 1;
        } else if (rc != NN_OK) {
            srv_response_error(res, 400, "image cannot be normalised (bad dimensions)");
            return -1;
        }
    }
    const int classes = nn_model_classes(m->model);
    out->shown = classes < 10 ? classes : 10;
    out->has_reject = classes > NN_NOT_A_DIGIT_CLASS;
    if (!out->blank) {
        float probs[NN_OUTPUTS_MAX];
        nn_workspace *ws = thread_workspace(s, m);
        if (!ws || nn_model_predict(m->model, out->input, probs, ws) != NN_OK) {
            srv_response_error(res, 500, "out of memory for the prediction workspace");
            return -1;
        }
        out->digit = nn_model_answer(m->model, probs, out->p10, &out->reject);
    }
    if (metrics && !out->blank && out->digit == NN_NOT_A_DIGIT)
        srv_metrics_not_a_digit(metrics);
    else if (metrics)
        srv_metrics_prediction(metrics, out->digit);
    return 0;
}

/* Predicts every image of req and writes the answer; returns 0, or fills res with an error. */
static int answer(struct srv_response *res, struct srv_buf *b, const struct srv_snapshot *s,
                  const struct srv_request *req, struct srv_metrics *metrics, uint64_t t0)
{
    if (s->n == 0) {
        srv_response_error(res, 503, "no model is loaded; start the server with --model FILE");
        return -1;
    }
    /* Resolve every model first, so that a batch fails before any work. */
    const struct srv_model *models[SRV_MAX_IMAGES];
    for (int i = 0; i < req->n; i++) {
        models[i] = srv_snapshot_find(s, req->images[i].model);
        if (!models[i]) {
            char where[32] = "";
            if (req->batch)
                snprintf(where, sizeof where, "images[%d]: ", i);
            srv_predict_unknown_model(res, s, req->images[i].model, where);
            return -1;
        }
    }
    if (req->batch)
        srv_buf_puts(b, "{\"results\":[");
    for (int i = 0; i < req->n; i++) {
        const struct srv_image *im = &req->images[i];
        const struct srv_model *m = models[i];
        uint64_t ti = req->batch ? now_us() : t0;
        float x[NN_MNIST_PIXELS];
        struct srv_prediction pr;
        if (srv_predict_image(&pr, x, s, m, im, metrics, res) != 0)
            return -1;
        const float *in = pr.input;
        const int blank = pr.blank, digit = pr.digit, shown = pr.shown;
        const float *p10 = pr.p10;
        const float reject = pr.reject;
        if (i)
            srv_buf_putc(b, ',');
        if (blank) {
            srv_buf_puts(b, "{\"prediction\":null,\"reason\":\"blank\",\"probabilities\":null");
        } else {
            if (digit == NN_NOT_A_DIGIT) {
                srv_buf_puts(b, "{\"prediction\":null,\"reason\":\"not_a_digit\"");
            } else {
                srv_buf_puts(b, "{\"prediction\":");
                srv_buf_i64(b, digit);
            }
            srv_buf_puts(b, ",\"probabilities\":[");
            for (int k = 0; k < shown; k++) {
                if (k)
                    srv_buf_putc(b, ',');
                srv_buf_num(b, p10[k]);
            }
            srv_buf_putc(b, ']');
            if (pr.has_reject) {
                srv_buf_puts(b, ",\"not_a_digit\":");
                srv_buf_num(b, reject);
            }
        }
        srv_buf_puts(b, ",\"model\":");
        srv_buf_json_string(b, m->name);
        if (im->return_input) {
            srv_buf_puts(b, ",\"input\":[");
            srv_buf_reserve(b, NN_MNIST_PIXELS * 6);
            for (int k = 0; k < NN_MNIST_PIXELS; k++) {
                if (k)
                    srv_buf_putc(b, ',');
                srv_buf_fixed3(b, in[k]);
            }
            srv_buf_putc(b, ']');
        }
        srv_buf_puts(b, ",\"elapsed_us\":");
        srv_buf_i64(b, (int64_t)(now_us() - ti));
        srv_buf_putc(b, '}');
    }
    if (req->batch) {
        srv_buf_puts(b, "],\"elapsed_us\":");
        srv_buf_i64(b, (int64_t)(now_us() - t0));
        srv_buf_putc(b, '}');
    }
    srv_buf_putc(b, '\n');
    return 0;
}

int srv_predict_parse_body(struct srv_response *res, struct srv_request *req,
                           const char *content_type, const char *body, size_t len,
                           const char *q_model, const char *q_return_input)
{
    memset(req, 0, sizeof *req);
    char err[512];
    const char *kind = srv_predict_body_kind(content_type);
    if (!kind) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "unsupported Content-Type %.100s; send application/json or an image "
                 "(image/png, image/jpeg, image/bmp, image/gif, application/octet-stream)",
                 content_type && *content_type ? content_type : "(none)");
        srv_response_error(res, 415, msg);
        return -1;
    }
    /* The query's options hold for every body: for an image they are the only way to say
     * them; for JSON they are defaults for images that do not say, and a contradiction is an
     * error rather than one of the two silently winning. */
    int ri = -1;
    if (q_return_input) {
        if (!strcmp(q_return_input, "1") || !strcmp(q_return_input, "true") ||
            !q_return_input[0])
            ri = 1;
        else if (!strcmp(q_return_input, "0") || !strcmp(q_return_input, "false"))
            ri = 0;
        else {
            srv_response_error(res, 400, "return_input must be 1, true, 0 or false");
            return -1;
        }
    }
    if (q_model && strlen(q_model) >= SRV_MODEL_NAME_MAX) {
        srv_response_error(res, 400, "model name too long (see GET /models)");
        return -1;
    }
    if (kind[0] == 'j') {
        int rc = srv_request_parse_json(req, body, len, 0, err, sizeof err);
        if (rc != 0) {
            srv_response_error(res, rc == NN_ENOMEM ? 500 : 400, err);
            return -1;
        }
        for (int i = 0; q_model && i < req->n; i++) {
            struct srv_image *im = &req->images[i];
            if (!im->model[0]) {
                snprintf(im->model, sizeof im->model, "%s", q_model);
            } else if (strcmp(im->model, q_model)) {
                char msg[300];
                snprintf(msg, sizeof msg,
                         "model is given twice, in the query (%.64s) and in the body (%.64s); "
                         "give it once",
                         q_model, im->model);
                srv_request_free(req);
                srv_response_error(res, 400, msg);
                return -1;
            }
        }
        for (int i = 0; ri >= 0 && i < req->n; i++) {
            struct srv_image *im = &req->images[i];
            if (!im->return_input_given) {
                im->return_input = ri;
            } else if (im->return_input != ri) {
                srv_request_free(req);
                srv_response_error(res, 400,
                                   "return_input is given twice, in the query and in the "
                                   "body, with different values; give it once");
                return -1;
            }
        }
    } else {
        float *px = NULL;
        int w = 0, h = 0;
        int rc = srv_image_decode(&px, &w, &h, body, len, err, sizeof err);
        if (rc != 0) {
            srv_response_error(res, rc == NN_ENOMEM ? 500 : 400, err);
            return -1;
        }
        req->n = 1;
        req->images = &req->one;
        req->one.pixels = px;
        req->one.width = w;
        req->one.height = h;
        req->one.raw = 0;
        req->one.return_input = ri > 0;
        if (q_model)
            snprintf(req->one.model, sizeof req->one.model, "%s", q_model);
    }
    return 0;
}

void srv_predict(struct srv_response *res, struct srv_registry *reg, struct srv_metrics *metrics,
                 const char *content_type, const char *body, size_t len, const char *q_model,
                 const char *q_return_input)
{
    uint64_t t0 = now_us();
    memset(res, 0, sizeof *res);
    struct srv_request req;
    if (srv_predict_parse_body(res, &req, content_type, body, len, q_model, q_return_input) != 0)
        return;
    struct srv_snapshot *s = srv_registry_acquire(reg);
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_reserve(&b, 512);
    if (answer(res, &b, s, &req, metrics, t0) == 0) {
        res->body = srv_buf_steal(&b, &res->len);
        res->status = 200;
        res->content_type = json_type;
        if (!res->body)
            srv_response_error(res, 500, "out of memory");
    }
    srv_buf_free(&b);
    srv_snapshot_release(s);
    srv_request_free(&req);
}
