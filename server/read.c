/*
 * read.c - POST /read: body to images (predict.c's parser), images to numbers (nn_read_number),
 * numbers to JSON (read.h).
 */
#include "read.h"

#include "buf.h"
#include "request.h"

#include "nn/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char json_type[] = "application/json";

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One image's answer object into b; 0, or -1 with res holding the error. r is scratch. */
static int read_one(struct srv_response *res, struct srv_buf *b, const struct srv_snapshot *s,
                    const struct srv_model *m, const struct srv_image *im, const char *where,
                    struct nn_read_result *r, struct srv_metrics *metrics, uint64_t t0)
{
    nn_workspace *ws = srv_predict_workspace(s, m);
    if (!ws) {
        srv_response_error(res, 500, "out of memory for the prediction workspace");
        return -1;
    }
    int rc = nn_read_number(r, m->model, ws, im->pixels, im->width, im->height);
    if (rc != NN_OK && rc != NN_EBLANK) {
        char msg[256];
        if (rc == NN_ERANGE &&
            (r->work > NN_READ_MAX_WORK || r->classified >= NN_READ_MAX_CLASSIFIED))
            snprintf(msg, sizeof msg,
                     "%sthis image would take too much work to read (cutting its marks apart "
                     "would take over %d classifications or look at over %llu Mi pixels); "
                     "send the number smaller, or at most %d digits",
                     where, NN_READ_MAX_CLASSIFIED, (unsigned long long)(NN_READ_MAX_WORK >> 20),
                     NN_READ_MAX_DIGITS);
        else if (rc == NN_ERANGE)
            snprintf(msg, sizeof msg,
                     "%smore than %d digits (or %d separate marks) found; /read reads numbers "
                     "of 1 to %d digits",
                     where, NN_READ_MAX_DIGITS, NN_READ_MAX_MARKS, NN_READ_MAX_DIGITS);
        else if (rc == NN_EINVAL)
            snprintf(msg, sizeof msg, "%smodel \"%s\" does not read 28x28 digits", where, m->name);
        else
            snprintf(msg, sizeof msg, "%sout of memory", where);
        srv_response_error(res, rc == NN_ENOMEM ? 500 : 400, msg);
        return -1;
    }
    const int classes = nn_model_classes(m->model), shown = classes < 10 ? classes : 10;
    int rejected = 0;
    for (int j = 0; rc != NN_EBLANK && j < r->n; j++)
        rejected += r->digits[j].prediction == NN_NOT_A_DIGIT;
    if (rc == NN_EBLANK) {
        if (metrics)
            srv_metrics_prediction(metrics, -1);
        srv_buf_puts(b, "{\"number\":null,\"reason\":\"blank\",\"digits\":[]");
    } else {
        if (rejected) { /* one mark that is not a digit: no number */
            srv_buf_puts(b, "{\"number\":null,\"reason\":\"not_a_digit\"");
        } else {
            srv_buf_puts(b, "{\"number\":\"");
            for (int j = 0; j < r->n; j++)
                srv_buf_putc(b, (char)('0' + r->digits[j].prediction));
            srv_buf_putc(b, '"');
        }
        srv_buf_puts(b, ",\"digits\":[");
        for (int j = 0; j < r->n; j++) {
            const struct nn_read_digit *d = &r->digits[j];
            if (metrics && d->prediction == NN_NOT_A_DIGIT)
                srv_metrics_not_a_digit(metrics);
            else if (metrics)
                srv_metrics_prediction(metrics, d->prediction);
            srv_buf_puts(b, j ? ",{\"prediction\":" : "{\"prediction\":");
            if (d->prediction == NN_NOT_A_DIGIT)
                srv_buf_puts(b, "null,\"reason\":\"not_a_digit\"");
            else
                srv_buf_i64(b, d->prediction);
            srv_buf_puts(b, ",\"probabilities\":[");
            for (int k = 0; k < shown; k++) {
                if (k)
                    srv_buf_putc(b, ',');
                srv_buf_num(b, d->probs[k]);
            }
            srv_buf_putc(b, ']');
            if (classes > NN_NOT_A_DIGIT_CLASS) {
                srv_buf_puts(b, ",\"not_a_digit\":");
                srv_buf_num(b, d->not_a_digit);
            }
            srv_buf_printf(b, ",\"box\":[%d,%d,%d,%d]", d->x, d->y, d->w, d->h);
            if (im->return_input) {
                srv_buf_puts(b, ",\"input\":[");
                srv_buf_reserve(b, NN_MNIST_PIXELS * 6);
                for (int k = 0; k < NN_MNIST_PIXELS; k++) {
                    if (k)
                        srv_buf_putc(b, ',');
                    srv_buf_fixed3(b, d->input[k]);
                }
                srv_buf_putc(b, ']');
            }
            srv_buf_putc(b, '}');
        }
        srv_buf_putc(b, ']');
    }
    srv_buf_puts(b, ",\"model\":");
    srv_buf_json_string(b, m->name);
    srv_buf_puts(b, ",\"elapsed_us\":");
    srv_buf_i64(b, (int64_t)(now_us() - t0));
    srv_buf_putc(b, '}');
    return 0;
}

/* Reads every image of req into b; 0, or -1 with res holding the error. */
static int answer(struct srv_response *res, struct srv_buf *b, const struct srv_snapshot *s,
                  const struct srv_request *req, struct srv_metrics *metrics, uint64_t t0)
{
    if (s->n == 0) {
        srv_response_error(res, 503, "no model is loaded; start the server with --model FILE");
        return -1;
    }
    const struct srv_model *models[SRV_MAX_IMAGES];
    char where[32] = "";
    for (int i = 0; i < req->n; i++) {
        models[i] = srv_snapshot_find(s, req->images[i].model);
        if (!models[i]) {
            if (req->batch)
                snprintf(where, sizeof where, "images[%d]: ", i);
            srv_predict_unknown_model(res, s, req->images[i].model, where);
            return -1;
        }
    }
    struct nn_read_result *r = malloc(sizeof *r);
    if (!r) {
        srv_response_error(res, 500, "out of memory");
        return -1;
    }
    int rc = 0;
    if (req->batch)
        srv_buf_puts(b, "{\"results\":[");
    for (int i = 0; i < req->n && rc == 0; i++) {
        if (req->batch)
            snprintf(where, sizeof where, "images[%d]: ", i);
        if (i)
            srv_buf_putc(b, ',');
        rc = read_one(res, b, s, models[i], &req->images[i], where, r, metrics,
                      req->batch ? now_us() : t0);
    }
    free(r);
    if (rc != 0)
        return -1;
    if (req->batch) {
        srv_buf_puts(b, "],\"elapsed_us\":");
        srv_buf_i64(b, (int64_t)(now_us() - t0));
        srv_buf_putc(b, '}');
    }
    srv_buf_putc(b, '\n');
    return 0;
}

void srv_read(struct srv_response *res, struct srv_registry *reg, struct srv_metrics *metrics,
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
    srv_buf_reserve(&b, 1024);
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
