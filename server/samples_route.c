/*
 * samples_route.c - the /samples routes (see samples_route.h).
 */
#include "samples_route.h"

#include "buf.h"
#include "jscan.h"
#include "request.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char json_type[] = "application/json";

/* ---------------------------------------------------------------------------------------- */
/* "label" in a JSON body                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Skips one JSON value at the cursor (strictly, as jscan reads): 0 or SRV_NOT_HANDLED. */
static int skip_value(struct srv_jscan *c, int depth)
{
    srv_jscan_ws(c);
    if (c->p >= c->end)
        return srv_jscan_give_up(c, "a value");
    if (depth > SRV_MAX_DEPTH)
        return srv_jscan_give_up(c, "nesting too deep");
    char ch = *c->p;
    if (ch == '"')
        return srv_jscan_string(c, NULL, 0, NULL);
    if (ch == '[' || ch == '{') {
        char close = ch == '[' ? ']' : '}';
        c->p++;
        if (srv_jscan_eat(c, close))
            return 0;
        for (;;) {
            if (close == '}') {
                srv_jscan_ws(c);
                if (srv_jscan_string(c, NULL, 0, NULL) != 0 || !srv_jscan_eat(c, ':'))
                    return srv_jscan_give_up(c, "a field");
            }
            if (skip_value(c, depth + 1) != 0)
                return SRV_NOT_HANDLED;
            if (srv_jscan_eat(c, ','))
                continue;
            if (srv_jscan_eat(c, close))
                return 0;
            return srv_jscan_give_up(c, "',' or the end of the list");
        }
    }
    static const char *const literals[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(literals[i]);
        if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, literals[i], n)) {
            c->p += n;
            return 0;
        }
    }
    const char *e = srv_json_number_end(c->p, c->end);
    if (!e)
        return srv_jscan_give_up(c, "a value");
    c->p = e;
    return 0;
}

/* Finds a top-level "label" member in a JSON object body. Returns 1 when there is none (the
 * body is left to the /predict parser, which words any error), 0 with *label and *rest (the
 * body without that member, malloc'd) when there is one, or -1 with the message in err. */
static int take_label(const char *body, size_t len, int *label, char **rest, size_t *rest_len,
                      char *err, size_t errlen)
{
    struct srv_jscan c = {body, body + len, NULL, NULL, 0};
    if (!srv_jscan_eat(&c, '{'))
        return 1;
    const char *member = NULL, *member_end = NULL;
    if (srv_jscan_eat(&c, '}'))
        return 1;
    for (;;) {
        int just_read = 0;
        srv_jscan_ws(&c);
        const char *start = c.p;
        char key[16];
        if (srv_jscan_string(&c, key, sizeof key, "a long field name") != 0 && !c.why)
            return 1;
        if (c.why) { /* a name longer than "label": not it, skip it */
            c = (struct srv_jscan){start, body + len, NULL, NULL, 0};
            if (srv_jscan_string(&c, NULL, 0, NULL) != 0)
                return 1;
            key[0] = '\0';
        }
        if (!srv_jscan_eat(&c, ':'))
            return 1;
        srv_jscan_ws(&c);
        if (!strcmp(key, "label")) {
            if (member) {
                snprintf(err, errlen, "duplicate field \"label\"");
                return -1;
            }
            double v = 0;
            if (srv_jscan_number(&c, &v) != 0 || !(v >= 0 && v <= 9) || v != (int)v) {
                snprintf(err, errlen, "label must be a digit 0..9");
                return -1;
            }
            *label = (int)v;
            member = start;
            member_end = c.p;
            just_read = 1;
        } else if (skip_value(&c, 1) != 0) {
            return 1;
        }
        if (srv_jscan_eat(&c, ',')) {
            if (just_read) /* "label":D, ... : the comma after goes with it */
                member_end = c.p;
            continue;
        }
        if (!srv_jscan_eat(&c, '}'))
            return 1;
        break;
    }
    if (!member)
        return 1;
    /* {... ,"label":D} : drop the comma before instead */
    const char *cut = member;
    if (member_end[-1] != ',') {
        const char *q = member;
        while (q > body && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n' || q[-1] == '\r'))
            q--;
        if (q > body && q[-1] == ',')
            cut = q - 1;
    }
    size_t head = (size_t)(cut - body), tail = len - (size_t)(member_end - body);
    char *out = malloc(head + tail + 1);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(out, body, head);
    memcpy(out + head, member_end, tail);
    out[head + tail] = '\0';
    *rest = out;
    *rest_len = head + tail;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Routes                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void no_database(struct srv_response *res)
{
    srv_response_error(res, 404,
                       "samples are not kept: start the server with --samples FILE (make run "
                       "uses data/samples.db)");
}

/* A decimal in [lo, hi] from a query value; -1 when it is not one. */
static long long query_int(const char *v, long long lo, long long hi)
{
    if (!v || !*v)
        return -1;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi || v[0] == '+' || v[0] == '-' || v[0] == ' ')
        return -1;
    return x;
}

static void json_answer(struct srv_response *res, struct srv_buf *b, int status)
{
    memset(res, 0, sizeof *res);
    res->body = srv_buf_steal(b, &res->len);
    res->status = status;
    res->content_type = json_type;
    if (!res->body)
        srv_response_error(res, 500, "out of memory");
}

void srv_samples_post(struct srv_response *res, struct srv_samples *db, struct srv_registry *reg,
                      struct srv_metrics *metrics, const char *content_type, const char *body,
                      size_t len, const char *q_model, const char *q_label)
{
    memset(res, 0, sizeof *res);
    if (!db) {
        no_database(res);
        return;
    }
    char err[512];
    char *rest = NULL;
    size_t rest_len = 0;
    int label = -1;
    const char *kind = srv_predict_body_kind(content_type);
    if (kind && kind[0] == 'j') {
        int rc = take_label(body, len, &label, &rest, &rest_len, err, sizeof err);
        if (rc < 0) {
            srv_response_error(res, 400, err);
            return;
        }
    }
    if (q_label) {
        long long v = query_int(q_label, 0, 9);
        if (v < 0 || (label >= 0 && label != v)) {
            free(rest);
            srv_response_error(res, 400,
                               v < 0 ? "label must be a digit 0..9 (?label=D)"
                                     : "label is given twice, in the query and in the body, "
                                       "with different values; give it once");
            return;
        }
        label = (int)v;
    }
    if (label < 0) {
        free(rest);
        srv_response_error(res, 400,
                           "a sample needs its label: ?label=D, or \"label\":D in a JSON body");
        return;
    }
    struct srv_request req;
    int parsed = srv_predict_parse_body(res, &req, content_type, rest ? rest : body,
                                        rest ? rest_len : len, q_model, NULL);
    free(rest);
    if (parsed != 0)
        return;
    struct srv_snapshot *s = srv_registry_acquire(reg);
    struct srv_sample *sm = calloc(1, sizeof *sm);
    void *png = NULL;
    size_t png_len = 0;
    if (!sm) {
        srv_response_error(res, 500, "out of memory");
        goto done;
    }
    if (req.batch || req.n != 1) {
        srv_response_error(res, 400, "a sample is one image: send {\"pixels\":[...]} or an image "
                                     "file, not {\"images\":[...]}");
        goto done;
    }
    if (s->n == 0) {
        srv_response_error(res, 503, "no model is loaded; start the server with --model FILE");
        goto done;
    }
    const struct srv_image *im = &req.images[0];
    const struct srv_model *m = srv_snapshot_find(s, im->model[0] ? im->model : NULL);
    if (!m) {
        srv_predict_unknown_model(res, s, im->model, "");
        goto done;
    }
    struct srv_prediction p;
    float x[784];
    if (srv_predict_image(&p, x, s, m, im, metrics, res) != 0)
        goto done;
    if (p.blank) {
        srv_response_error(res, 400, "the image is blank: there is no digit to keep");
        goto done;
    }
    sm->label = label;
    sm->prediction = p.digit >= 0 && p.digit <= 9 ? p.digit : -1;
    sm->has_probabilities = p.shown == 10;
    memcpy(sm->probabilities, p.p10, sizeof sm->probabilities);
    memcpy(sm->input, p.input, sizeof sm->input);
    snprintf(sm->model, sizeof sm->model, "%s", m->name);
    snprintf(sm->route, sizeof sm->route, "/samples");
    sm->created_unix = (int64_t)time(NULL);
    png = srv_samples_png(im->pixels, im->width, im->height, &png_len);
    if (!png) {
        srv_response_error(res, 500, "out of memory");
        goto done;
    }
    int64_t id = 0;
    int rc = srv_samples_add(db, sm, png, png_len, &id, err, sizeof err);
    if (rc != SRV_SAMPLES_OK) {
        srv_response_error(res, rc == SRV_SAMPLES_FULL ? 507 : 500, err);
        goto done;
    }
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b, "{\"id\":%lld,\"label\":%d,\"prediction\":", (long long)id, label);
    if (sm->prediction >= 0)
        srv_buf_printf(&b, "%d", sm->prediction);
    else
        srv_buf_puts(&b, "null");
    srv_buf_puts(&b, ",\"model\":");
    srv_buf_json_string(&b, m->name);
    srv_buf_puts(&b, "}\n");
    json_answer(res, &b, 201);
done:
    free(png);
    free(sm);
    srv_snapshot_release(s);
    srv_request_free(&req);
}

/* One sample as JSON (with its 28x28 input). */
static void sample_json(struct srv_buf *b, const struct srv_sample *sm)
{
    srv_buf_printf(b, "{\"id\":%lld,\"label\":%d,\"prediction\":", (long long)sm->id, sm->label);
    if (sm->prediction >= 0)
        srv_buf_printf(b, "%d", sm->prediction);
    else
        srv_buf_puts(b, "null");
    srv_buf_puts(b, ",\"probabilities\":");
    if (sm->has_probabilities) {
        srv_buf_putc(b, '[');
        for (int k = 0; k < 10; k++) {
            if (k)
                srv_buf_putc(b, ',');
            srv_buf_num(b, sm->probabilities[k]);
        }
        srv_buf_putc(b, ']');
    } else {
        srv_buf_puts(b, "null");
    }
    srv_buf_puts(b, ",\"model\":");
    srv_buf_json_string(b, sm->model);
    srv_buf_puts(b, ",\"route\":");
    srv_buf_json_string(b, sm->route);
    srv_buf_printf(b, ",\"time\":%lld,\"input\":[", (long long)sm->created_unix);
    for (int k = 0; k < 784; k++) {
        if (k)
            srv_buf_putc(b, ',');
        srv_buf_fixed3(b, sm->input[k]);
    }
    srv_buf_puts(b, "]}");
}

struct list_ctx {
    struct srv_buf *b;
    int n;
};

static int list_each(void *ctx, const struct srv_sample *sm)
{
    struct list_ctx *l = ctx;
    if (l->n++)
        srv_buf_putc(l->b, ',');
    sample_json(l->b, sm);
    return l->b->oom;
}

void srv_samples_list_json(struct srv_response *res, struct srv_samples *db, const char *q_label,
                           const char *q_limit, const char *q_offset)
{
    memset(res, 0, sizeof *res);
    if (!db) {
        no_database(res);
        return;
    }
    long long label = q_label ? query_int(q_label, 0, 9) : -1;
    long long limit = q_limit ? query_int(q_limit, 1, SRV_SAMPLES_LIST_MAX) : 100;
    long long offset = q_offset ? query_int(q_offset, 0, (long long)1 << 62) : 0;
    if ((q_label && label < 0) || limit < 0 || offset < 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%s", q_label && label < 0 ? "label must be a digit 0..9"
                       : limit < 0 ? "limit must be 1..1000"
                                   : "offset must be a whole number >= 0");
        srv_response_error(res, 400, msg);
        return;
    }
    char err[512];
    int64_t total = 0;
    if (srv_samples_count(db, (int)label, &total, err, sizeof err) != SRV_SAMPLES_OK) {
        srv_response_error(res, 500, err);
        return;
    }
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b, "{\"total\":%lld,\"samples\":[", (long long)total);
    struct list_ctx l = {&b, 0};
    if (srv_samples_list(db, (int)label, limit, offset, list_each, &l, err, sizeof err) !=
        SRV_SAMPLES_OK) {
        srv_buf_free(&b);
        srv_response_error(res, 500, err);
        return;
    }
    srv_buf_puts(&b, "]}\n");
    json_answer(res, &b, 200);
}

/* The id in "12" or "12.png"; *png says which. -1 when it is neither. */
static long long parse_id(const char *rest, int *png)
{
    char digits[24];
    size_t n = strspn(rest, "0123456789");
    *png = !strcmp(rest + n, ".png");
    if (n == 0 || n >= sizeof digits || (rest[n] && !*png) || rest[0] == '0')
        return -1;
    memcpy(digits, rest, n);
    digits[n] = '\0';
    return query_int(digits, 1, (long long)1 << 62);
}

static void bad_id(struct srv_response *res, const char *rest)
{
    char msg[200];
    snprintf(msg, sizeof msg, "no such sample route /samples/%.40s: use /samples/{id} or "
                              "/samples/{id}.png with a positive integer id",
             rest);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    srv_response_error(res, 404, msg);
}

/* ---------------------------------------------------------------------------------------- */
/* GET /samples/export: the samples as an MNIST IDX pair, in a tar                          */
/* ---------------------------------------------------------------------------------------- */

struct export_ctx {
    unsigned char *images, *labels;
    size_t n, cap;
    int oom;
};

static int export_each(void *ctx, const struct srv_sample *sm)
{
    struct export_ctx *e = ctx;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        unsigned char *im = realloc(e->images, cap * 784), *lb;
        if (!im)
            return e->oom = 1;
        e->images = im;
        if (!(lb = realloc(e->labels, cap)))
            return e->oom = 1;
        e->labels = lb;
        e->cap = cap;
    }
    for (int k = 0; k < 784; k++) {
        float v = sm->input[k] * 255.0f + 0.5f;
        e->images[e->n * 784 + (size_t)k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    e->labels[e->n++] = (unsigned char)sm->label;
    return 0;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* One ustar member: a 512-byte header, then the data padded to 512 bytes. */
static size_t tar_member(unsigned char *out, const char *name, const unsigned char *head,
                         size_t head_len, const unsigned char *data, size_t len, int64_t mtime)
{
    unsigned char *h = out;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)(head_len + len));
    snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)mtime);
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    memcpy(out + 512, head, head_len);
    if (len) /* (no samples: data is NULL) */
        memcpy(out + 512 + head_len, data, len);
    size_t body = head_len + len, padded = (body + 511) / 512 * 512;
    memset(out + 512 + body, 0, padded - body);
    return 512 + padded;
}

static void export_idx(struct srv_response *res, struct srv_samples *db)
{
    char err[512];
    struct export_ctx e = {0};
    if (srv_samples_list(db, -1, INT64_MAX, 0, export_each, &e, err, sizeof err) != SRV_SAMPLES_OK ||
        e.oom) {
        free(e.images);
        free(e.labels);
        srv_response_error(res, 500, e.oom ? "out of memory" : err);
        return;
    }
    unsigned char ih[16], lh[8];
    put_be32(ih, 0x00000803), put_be32(ih + 4, (uint32_t)e.n), put_be32(ih + 8, 28),
        put_be32(ih + 12, 28);
    put_be32(lh, 0x00000801), put_be32(lh + 4, (uint32_t)e.n);
    size_t cap = 512 + (16 + e.n * 784 + 511) / 512 * 512 + 512 + (8 + e.n + 511) / 512 * 512 + 1024;
    unsigned char *tar = malloc(cap);
    if (!tar) {
        free(e.images);
        free(e.labels);
        srv_response_error(res, 500, "out of memory");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    size_t len = tar_member(tar, "samples-images-idx3-ubyte", ih, sizeof ih, e.images, e.n * 784, now);
    len += tar_member(tar + len, "samples-labels-idx1-ubyte", lh, sizeof lh, e.labels, e.n, now);
    memset(tar + len, 0, 1024); /* two zero blocks end the archive */
    len += 1024;
    free(e.images);
    free(e.labels);
    res->status = 200;
    res->body = (char *)tar;
    res->len = len;
    res->content_type = "application/x-tar";
}

void srv_samples_get_one(struct srv_response *res, struct srv_samples *db, const char *rest)
{
    memset(res, 0, sizeof *res);
    if (!db) {
        no_database(res);
        return;
    }
    if (!strcmp(rest, "export")) {
        export_idx(res, db);
        return;
    }
    int png = 0;
    long long id = parse_id(rest, &png);
    if (id < 0) {
        bad_id(res, rest);
        return;
    }
    char err[512];
    if (png) {
        void *data = NULL;
        size_t len = 0;
        int rc = srv_samples_original(db, id, &data, &len, err, sizeof err);
        if (rc == SRV_SAMPLES_OK && !data) {
            snprintf(err, sizeof err, "sample %lld has no stored image", id);
            rc = SRV_SAMPLES_NOT_FOUND;
        }
        if (rc != SRV_SAMPLES_OK) {
            srv_response_error(res, rc == SRV_SAMPLES_NOT_FOUND ? 404 : 500, err);
            return;
        }
        res->status = 200;
        res->body = data;
        res->len = len;
        res->content_type = "image/png";
        return;
    }
    struct srv_sample *sm = malloc(sizeof *sm);
    if (!sm) {
        srv_response_error(res, 500, "out of memory");
        return;
    }
    int rc = srv_samples_get(db, id, sm, err, sizeof err);
    if (rc != SRV_SAMPLES_OK) {
        free(sm);
        srv_response_error(res, rc == SRV_SAMPLES_NOT_FOUND ? 404 : 500, err);
        return;
    }
    struct srv_buf b;
    srv_buf_init(&b);
    sample_json(&b, sm);
    srv_buf_putc(&b, '\n');
    free(sm);
    json_answer(res, &b, 200);
}

void srv_samples_delete_one(struct srv_response *res, struct srv_samples *db, const char *rest)
{
    memset(res, 0, sizeof *res);
    if (!db) {
        no_database(res);
        return;
    }
    int png = 0;
    long long id = parse_id(rest, &png);
    if (id < 0 || png) {
        bad_id(res, rest);
        return;
    }
    char err[512];
    int rc = srv_samples_delete(db, id, err, sizeof err);
    if (rc != SRV_SAMPLES_OK) {
        srv_response_error(res, rc == SRV_SAMPLES_NOT_FOUND ? 404 : 500, err);
        return;
    }
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b, "{\"deleted\":%lld}\n", id);
    json_answer(res, &b, 200);
}
