/*
 * request.c - /predict JSON bodies to images: an exact fast path, cJSON for everything else.
 *
 * Both parsers fill the same drafts (one per image, plus the top-level defaults), and one
 * function, finish(), checks the shape of the request and builds the result, so the
 * messages about counts and sizes are the same whichever parser ran. See request.h for why
 * there are two.
 */
#include "request.h"
#include "buf.h"
#include "err.h"
#include "jscan.h"

#include "nn/nn.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Drafts                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* What one JSON object said, before the shape checks. */
struct draft {
    int has_width, has_height, has_pixels, has_model, has_images;
    int width, height;
    float *pixels;
    size_t n_pixels, cap;
    char model[SRV_MODEL_NAME_MAX];
    int return_input; /* -1 = not given */
};

struct drafts {
    struct draft top;
    struct draft *img; /* batch entries */
    int n, cap;
    size_t total_pixels;
};

static const char accepted_fields[] = "pixels, width, height, model, return_input, images";

static void draft_init(struct draft *d)
{
    memset(d, 0, sizeof *d);
    d->return_input = -1;
}

static void drafts_free(struct drafts *ds)
{
    free(ds->top.pixels);
    for (int i = 0; i < ds->n; i++)
        free(ds->img[i].pixels);
    free(ds->img);
    memset(ds, 0, sizeof *ds);
}

static struct draft *drafts_add(struct drafts *ds)
{
    if (ds->n == ds->cap) {
        int cap = ds->cap ? ds->cap * 2 : 8;
        struct draft *p = realloc(ds->img, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        ds->img = p;
        ds->cap = cap;
    }
    struct draft *d = &ds->img[ds->n++];
    draft_init(d);
    return d;
}

/* Appends one pixel value; -1 when the request would pass the total pixel limit, -2 on OOM. */
static int draft_push(struct drafts *ds, struct draft *d, float v)
{
    if (d->n_pixels == d->cap) {
        if (ds->total_pixels + d->n_pixels >= SRV_MAX_TOTAL_PIXELS)
            return -1;
        size_t cap = d->cap ? d->cap * 2 : 1024;
        if (cap > SRV_MAX_TOTAL_PIXELS)
            cap = SRV_MAX_TOTAL_PIXELS;
        float *p = realloc(d->pixels, cap * sizeof *p);
        if (!p)
            return -2;
        d->pixels = p;
        d->cap = cap;
    }
    d->pixels[d->n_pixels++] = v;
    return 0;
}

/* Shortest "%.Ng" that reads back as v, for messages ("value 3.5 at index 17"). */
static void fmt_value(char *buf, size_t len, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* Checks a pixel value; fills err and returns NN_EINVAL when it is not finite in [0,1]. */
static int check_value(double v, size_t index, const char *where, char *err, size_t errlen)
{
    if (!isfinite(v))
        return srv_seterr(err, errlen, NN_EINVAL, "%svalue at index %zu is not a finite number",
                          where, index);
    if (v < 0 || v > 1) {
        char num[40];
        fmt_value(num, sizeof num, v);
        return srv_seterr(err, errlen, NN_EINVAL, "%svalue %s at index %zu is outside [0,1]", where,
                          num, index);
    }
    return 0;
}

/* Builds the request from the drafts (taking over their pixel arrays) after the shape
 * checks shared by both parsers. */
static int finish(struct srv_request *req, struct drafts *ds, char *err, size_t errlen)
{
    struct draft *top = &ds->top;
    int n = 1;
    struct draft *list = top;
    if (top->has_images) {
        if (top->has_pixels || top->has_width || top->has_height)
            return srv_seterr(
                err, errlen, NN_EINVAL,
                "send either \"pixels\" (one image) or \"images\" (a batch), not both");
        if (ds->n == 0)
            return srv_seterr(err, errlen, NN_EINVAL, "images is empty: send 1 to %d images",
                              SRV_MAX_IMAGES);
        n = ds->n;
        list = ds->img;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        struct draft *d = &list[i];
        char where[32] = "";
        if (top->has_images)
            snprintf(where, sizeof where, "images[%d]: ", i);
        if (!d->has_pixels)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "%smissing \"pixels\": send {\"pixels\":[784 numbers]} or "
                              "{\"width\":W,\"height\":H,\"pixels\":[W*H numbers]}",
                              where);
        if (d->has_width != d->has_height)
            return srv_seterr(err, errlen, NN_EINVAL, "%s\"width\" and \"height\" go together",
                              where);
        if (d->has_width) {
            size_t want = (size_t)d->width * (size_t)d->height;
            if (d->n_pixels != want)
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "%spixels has %zu numbers, expected %zu (width %d x height %d)",
                                  where, d->n_pixels, want, d->width, d->height);
        } else if (d->n_pixels != NN_MNIST_PIXELS) {
            return srv_seterr(err, errlen, NN_EINVAL,
                              "%spixels has %zu numbers, expected %d (28x28; send \"width\" and "
                              "\"height\" for other sizes)",
                              where, d->n_pixels, NN_MNIST_PIXELS);
        }
        total += d->n_pixels;
    }
    if (total > SRV_MAX_TOTAL_PIXELS)
        return srv_seterr(err, errlen, NN_EINVAL, "request has %zu pixels in all, at most %d",
                          total, SRV_MAX_TOTAL_PIXELS);

    struct srv_image *imgs = &req->one;
    if (n < 1 || n > SRV_MAX_IMAGES)
        return srv_seterr(err, errlen, NN_EINVAL, "images has %d entries, at most %d per request",
                          n, SRV_MAX_IMAGES);
    if (n > 1 || top->has_images) {
        imgs = calloc((size_t)n, sizeof *imgs);
        if (!imgs)
            return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct draft *d = &list[i];
        struct srv_image *im = &imgs[i];
        im->raw = !d->has_width;
        im->width = d->has_width ? d->width : NN_MNIST_SIDE;
        im->height = d->has_width ? d->height : NN_MNIST_SIDE;
        im->pixels = d->pixels;
        d->pixels = NULL;
        const struct draft *m = d->has_model ? d : top;
        memcpy(im->model, m->model, sizeof im->model);
        im->return_input = d->return_input >= 0     ? d->return_input
                           : top->return_input >= 0 ? top->return_input
                                                    : 0;
        im->return_input_given = d->return_input >= 0 || top->return_input >= 0;
    }
    req->batch = top->has_images;
    req->n = n;
    req->images = imgs;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Fast path: strict JSON, only the forms we expect, exact numbers; gives up otherwise      */
/* ---------------------------------------------------------------------------------------- */

enum { GIVE_UP = SRV_NOT_HANDLED };

/* The cursor (jscan.h), and the request being read: where and why the fast path gave up is,
 * for a body too large to hand to cJSON, the error the client gets (see parse_general). */
struct cur {
    struct srv_jscan s;
    struct drafts *ds;
    char key[48]; /* the field being read, for the message */
};

static int fast_pixels(struct cur *c, struct draft *d)
{
    if (!srv_jscan_eat(&c->s, '['))
        return srv_jscan_give_up(&c->s, "pixels must be an array of numbers in [0,1]");
    if (srv_jscan_eat(&c->s, ']'))
        return 0;
    for (;;) {
        double v;
        srv_jscan_ws(&c->s);
        if (srv_jscan_number(&c->s, &v) != 0)
            return GIVE_UP;
        if (!(v >= 0 && v <= 1))
            return srv_jscan_give_up(&c->s, "a pixel value outside [0,1] just before this");
        int rc = draft_push(c->ds, d, (float)v);
        if (rc == -2)
            return NN_ENOMEM;
        if (rc != 0)
            return srv_jscan_give_up(&c->s, "more than 4194304 pixels in all");
        srv_jscan_ws(&c->s);
        if (c->s.p < c->s.end && *c->s.p == ',') {
            c->s.p++;
            continue;
        }
        if (c->s.p < c->s.end && *c->s.p == ']') {
            c->s.p++;
            return 0;
        }
        return srv_jscan_give_up(&c->s, "expected ',' or ']' in pixels");
    }
}

static int fast_side(struct cur *c, int *out)
{
    double v;
    srv_jscan_ws(&c->s);
    if (srv_jscan_number(&c->s, &v) != 0 || !(v >= 1 && v <= SRV_MAX_SIDE) || v != floor(v))
        return srv_jscan_give_up(&c->s, "width and height must be integers in 1..2048");
    *out = (int)v;
    return 0;
}

static int fast_object(struct cur *c, struct draft *d, int top);

static int fast_images(struct cur *c)
{
    if (!srv_jscan_eat(&c->s, '['))
        return srv_jscan_give_up(&c->s, "images must be an array of objects like {\"pixels\":[...]}");
    if (srv_jscan_eat(&c->s, ']'))
        return 0;
    for (;;) {
        if (c->ds->n >= SRV_MAX_IMAGES)
            return srv_jscan_give_up(&c->s, "images has more than 256 entries, at most 256 per request");
        struct draft *d = drafts_add(c->ds);
        if (!d)
            return NN_ENOMEM;
        int rc = fast_object(c, d, 0);
        if (rc != 0)
            return rc;
        c->ds->total_pixels += d->n_pixels;
        if (srv_jscan_eat(&c->s, ','))
            continue;
        if (srv_jscan_eat(&c->s, ']'))
            return 0;
        return srv_jscan_give_up(&c->s, "expected ',' or ']' in images");
    }
}

static int fast_object(struct cur *c, struct draft *d, int top)
{
    if (!srv_jscan_eat(&c->s, '{'))
        return srv_jscan_give_up(&c->s, top ? "the body must be a JSON object such as {\"pixels\":[...]}"
                              : "an image must be an object such as {\"pixels\":[...]}");
    if (srv_jscan_eat(&c->s, '}'))
        return 0;
    for (;;) {
        char *key = c->key;
        c->key[0] = '\0';
        srv_jscan_ws(&c->s);
        const char *key_at = c->s.p;
        int rc = srv_jscan_string(&c->s, key, 16, "an unknown field");
        if (rc != 0)
            return rc;
        if (!srv_jscan_eat(&c->s, ':'))
            return srv_jscan_give_up(&c->s, "expected ':' after a field name");
        srv_jscan_ws(&c->s);
        if (!strcmp(key, "pixels") && !d->has_pixels) {
            d->has_pixels = 1;
            rc = fast_pixels(c, d);
        } else if (!strcmp(key, "width") && !d->has_width) {
            d->has_width = 1;
            rc = fast_side(c, &d->width);
        } else if (!strcmp(key, "height") && !d->has_height) {
            d->has_height = 1;
            rc = fast_side(c, &d->height);
        } else if (!strcmp(key, "model") && !d->has_model) {
            d->has_model = 1;
            rc = srv_jscan_string(&c->s, d->model, sizeof d->model,
                             "model must be a string of at most 63 bytes");
        } else if (!strcmp(key, "return_input") && d->return_input < 0) {
            if ((size_t)(c->s.end - c->s.p) >= 4 && !memcmp(c->s.p, "true", 4)) {
                d->return_input = 1;
                c->s.p += 4;
            } else if ((size_t)(c->s.end - c->s.p) >= 5 && !memcmp(c->s.p, "false", 5)) {
                d->return_input = 0;
                c->s.p += 5;
            } else {
                rc = srv_jscan_give_up(&c->s, "return_input must be true or false");
            }
        } else if (top && !strcmp(key, "images") && !d->has_images) {
            d->has_images = 1;
            rc = fast_images(c);
        } else {
            c->s.p = key_at; /* the message points at the name */
            rc = srv_jscan_give_up(&c->s, "an unknown or repeated field");
        }
        if (rc != 0)
            return rc;
        if (srv_jscan_eat(&c->s, ','))
            continue;
        if (srv_jscan_eat(&c->s, '}'))
            return 0;
        return srv_jscan_give_up(&c->s, "expected ',' or '}' after a field");
    }
}

/* 0, NN_ENOMEM, or GIVE_UP with c->s.why and c->s.at saying where. */
static int parse_fast(struct drafts *ds, struct cur *c, const char *body, size_t len)
{
    memset(c, 0, sizeof *c);
    c->s.p = body;
    c->s.end = body + len;
    c->ds = ds;
    if (len >= 3 && !memcmp(body, "\xef\xbb\xbf", 3))
        c->s.p += 3; /* a UTF-8 byte order mark, which cJSON skips too */
    int rc = fast_object(c, &ds->top, 1);
    if (rc != 0)
        return rc;
    srv_jscan_ws(&c->s);
    return c->s.p == c->s.end ? 0 : srv_jscan_give_up(&c->s, "unexpected data after the object");
}

/* ---------------------------------------------------------------------------------------- */
/* cJSON path: any JSON, every error worded                                                 */
/* ---------------------------------------------------------------------------------------- */

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* One pass over the raw bytes before cJSON sees them: nesting depth, the number of values
 * (commas), and the tokens cJSON is lenient about, checked as strictly as the fast path reads
 * them: numbers by RFC 8259's grammar ("00.5" and "5." are refused; cJSON would take what
 * strtod takes) and at most 63 characters, strings in well-formed UTF-8 without raw control
 * characters, with known escapes and no \u0000 (cJSON would end the string there, so that
 * "mnist-cnn\u0000x" named mnist-cnn), and no control characters between tokens but JSON's
 * four whitespace ones (cJSON skips any). *values is set even when the scan fails. */
static int prescan(const char *s, size_t len, size_t *values, char *err, size_t errlen)
{
    int depth = 0;
    *values = 0;
    const char *end = s + len;
    for (const char *p = s; p < end; p++) {
        char ch = *p;
        if (ch == '"') {
            const char *q = p + 1;
            for (; q < end && *q != '"'; q++) {
                unsigned char b = (unsigned char)*q;
                if (b < 0x20)
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "invalid JSON at byte %zu: a control character in a "
                                      "string",
                                      (size_t)(q - s));
                if (b >= 0x80) {
                    int k = srv_utf8_len(q, (size_t)(end - q));
                    if (!k)
                        return srv_seterr(err, errlen, NN_EINVAL,
                                          "invalid JSON at byte %zu: a string that is not "
                                          "valid UTF-8",
                                          (size_t)(q - s));
                    q += k - 1;
                } else if (b == '\\') {
                    if (q + 1 >= end)
                        break;
                    if (q[1] == 'u' && end - q >= 6 && !memcmp(q + 2, "0000", 4))
                        return srv_seterr(err, errlen, NN_EINVAL,
                                          "invalid request at byte %zu: strings must not "
                                          "contain \\u0000",
                                          (size_t)(q - s));
                    if (!strchr("\"\\/bfnrtu", q[1]) || !q[1])
                        return srv_seterr(err, errlen, NN_EINVAL,
                                          "invalid JSON at byte %zu: an unknown escape in a "
                                          "string",
                                          (size_t)(q - s));
                    q++;
                }
            }
            p = q; /* at the closing quote, or the end: cJSON words an unterminated string */
        } else if (ch == '-' || is_digit(ch)) {
            const char *q = srv_json_number_end(p, end);
            size_t n = q ? (size_t)(q - p) : 0;
            if (!q || n > SRV_JSON_NUMBER_MAX || (q < end && (*q == '.' || is_digit(*q)))) {
                char near[24];
                size_t k = 0;
                for (const char *t = p; t < end && k < 16; t++)
                    near[k++] = (*t >= 0x20 && *t < 0x7f) ? *t : '?';
                near[k] = '\0';
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "invalid JSON at byte %zu: \"%s\" is not a JSON number%s",
                                  (size_t)(p - s), near,
                                  q && n > SRV_JSON_NUMBER_MAX ? " of at most 63 characters"
                                                               : "");
            }
            p = q - 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > SRV_MAX_DEPTH)
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "JSON nested deeper than %d levels; a request needs at most "
                                  "{\"images\":[{\"pixels\":[...]}]}",
                                  SRV_MAX_DEPTH);
        } else if (ch == ']' || ch == '}') {
            depth--;
        } else if (ch == ',') {
            ++*values;
        } else if ((unsigned char)ch < 0x20 && ch != ' ' && ch != '\t' && ch != '\n' &&
                   ch != '\r') {
            return srv_seterr(err, errlen, NN_EINVAL,
                              "invalid JSON at byte %zu: control character 0x%02x outside a "
                              "string",
                              (size_t)(p - s), (unsigned)(unsigned char)ch);
        }
    }
    return 0;
}

/* Key for messages: printable ASCII, at most 40 characters. */
static void safe_key(char *buf, size_t len, const char *key)
{
    size_t n = 0;
    for (; key && *key && n + 1 < len && n < 40; key++)
        buf[n++] = (*key >= 0x20 && *key < 0x7f) ? *key : '?';
    buf[n] = '\0';
}

static int slow_object(struct drafts *ds, struct draft *d, const cJSON *obj, int top,
                       const char *where, char *err, size_t errlen)
{
    if (!cJSON_IsObject(obj)) {
        if (top)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "the body must be a JSON object such as {\"pixels\":[784 numbers]}");
        return srv_seterr(err, errlen, NN_EINVAL, "%smust be an object such as {\"pixels\":[...]}",
                          where);
    }
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *k = it->string ? it->string : "";
        char key[48];
        safe_key(key, sizeof key, k);
        int dup = 0;
        if (!strcmp(k, "pixels")) {
            if (d->has_pixels) {
                dup = 1;
            } else {
                d->has_pixels = 1;
                if (!cJSON_IsArray(it))
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "%spixels must be an array of numbers in [0,1]", where);
                size_t idx = 0;
                for (const cJSON *v = it->child; v; v = v->next, idx++) {
                    if (!cJSON_IsNumber(v))
                        return srv_seterr(err, errlen, NN_EINVAL,
                                          "%svalue at index %zu is not a number", where, idx);
                    int rc = check_value(v->valuedouble, idx, where, err, errlen);
                    if (rc != 0)
                        return rc;
                    rc = draft_push(ds, d, (float)v->valuedouble);
                    if (rc == -2)
                        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
                    if (rc != 0)
                        return srv_seterr(err, errlen, NN_EINVAL,
                                          "%spixels has more than %d numbers", where,
                                          SRV_MAX_TOTAL_PIXELS);
                }
            }
        } else if (!strcmp(k, "width") || !strcmp(k, "height")) {
            int w = k[0] == 'w';
            if (w ? d->has_width : d->has_height) {
                dup = 1;
            } else {
                double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
                if (!(v >= 1 && v <= SRV_MAX_SIDE) || v != floor(v))
                    return srv_seterr(err, errlen, NN_EINVAL, "%s%s must be an integer in 1..%d",
                                      where, k, SRV_MAX_SIDE);
                *(w ? &d->width : &d->height) = (int)v;
                *(w ? &d->has_width : &d->has_height) = 1;
            }
        } else if (!strcmp(k, "model")) {
            if (d->has_model) {
                dup = 1;
            } else {
                if (!cJSON_IsString(it) || strlen(it->valuestring) >= SRV_MODEL_NAME_MAX)
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "%smodel must be a string of at most %d bytes (see GET "
                                      "/models)",
                                      where, SRV_MODEL_NAME_MAX - 1);
                d->has_model = 1;
                snprintf(d->model, sizeof d->model, "%s", it->valuestring);
            }
        } else if (!strcmp(k, "return_input")) {
            if (d->return_input >= 0) {
                dup = 1;
            } else {
                if (!cJSON_IsBool(it))
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "%sreturn_input must be true or false", where);
                d->return_input = cJSON_IsTrue(it) ? 1 : 0;
            }
        } else if (top && !strcmp(k, "images")) {
            if (d->has_images) {
                dup = 1;
            } else {
                d->has_images = 1;
                if (!cJSON_IsArray(it))
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "images must be an array of objects like {\"pixels\":[...]}");
                int count = cJSON_GetArraySize(it);
                if (count > SRV_MAX_IMAGES)
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "images has %d entries, at most %d per request", count,
                                      SRV_MAX_IMAGES);
                int i = 0;
                for (const cJSON *e = it->child; e; e = e->next, i++) {
                    struct draft *di = drafts_add(ds);
                    if (!di)
                        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
                    char w2[32];
                    snprintf(w2, sizeof w2, "images[%d]: ", i);
                    int rc = slow_object(ds, di, e, 0, w2, err, errlen);
                    if (rc != 0)
                        return rc;
                    ds->total_pixels += di->n_pixels;
                }
            }
        } else {
            return srv_seterr(err, errlen, NN_EINVAL, "%sunknown field \"%s\"; accepted: %s", where,
                              key,
                              top ? accepted_fields : "pixels, width, height, model, return_input");
        }
        if (dup)
            return srv_seterr(err, errlen, NN_EINVAL, "%sduplicate field \"%s\"", where, key);
    }
    return 0;
}

/* cJSON on a body the prescan passed, every error worded. */
static int parse_cjson(struct drafts *ds, const char *body, size_t len, char *err, size_t errlen)
{
    int rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        char near[24];
        size_t n = 0;
        for (size_t i = at; i < len && n < 16; i++)
            near[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '?';
        near[n] = '\0';
        if (at >= len)
            return srv_seterr(err, errlen, NN_EINVAL, "invalid JSON: unexpected end at byte %zu",
                              at);
        return srv_seterr(err, errlen, NN_EINVAL, "invalid JSON at byte %zu near \"%s\"", at, near);
    }
    size_t at = (size_t)(end - body);
    while (at < len &&
           (body[at] == ' ' || body[at] == '\n' || body[at] == '\r' || body[at] == '\t'))
        at++;
    if (at < len) {
        rc = srv_seterr(err, errlen, NN_EINVAL,
                        "invalid JSON: unexpected data after the value at "
                        "byte %zu",
                        at);
        goto out;
    }
    rc = slow_object(ds, &ds->top, root, 1, "", err, errlen);
out:
    cJSON_Delete(root);
    return rc;
}

/*
 * The general path: the prescan, then cJSON for a body of at most SRV_JSON_TREE_MAX values.
 * A larger body never gets a tree (cJSON spends a 64-byte node and ~0.3 us per value: 400 MB
 * and 1.5 s for 4 Mi numbers); the fast path, which reads every valid request, reads it, and
 * if it gives up, where and why it did is the message.
 */
static int parse_general(struct drafts *ds, const char *body, size_t len,
                         const struct cur *fast_note, char *err, size_t errlen)
{
    size_t values = 0;
    int rc = 0;
    struct cur note;
    if (!fast_note && len >= 2 * SRV_JSON_TREE_MAX) { /* (SRV_PARSE_NO_FAST: the same note) */
        rc = parse_fast(ds, &note, body, len);
        if (rc == 0 || rc == NN_ENOMEM)
            return rc == 0 ? 0 : srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
        drafts_free(ds);
        draft_init(&ds->top);
        fast_note = &note;
    }
    /* (a body the fast path read that many numbers of goes to the note without a prescan) */
    if (!fast_note || fast_note->s.values < SRV_JSON_TREE_MAX) {
        rc = prescan(body, len, &values, err, errlen);
        if (rc != 0)
            return rc;
        if (values < SRV_JSON_TREE_MAX)
            return parse_cjson(ds, body, len, err, errlen);
    }
    struct cur c;
    if (fast_note) { /* the fast path has read this body already */
        c = *fast_note;
        rc = GIVE_UP;
    } else {
        rc = parse_fast(ds, &c, body, len);
    }
    if (rc == NN_ENOMEM)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
    if (rc != 0) {
        char key[48] = "";
        if (!strncmp(c.s.why, "an unknown", 10))
            safe_key(key, sizeof key, c.key);
        if (key[0])
            return srv_seterr(err, errlen, NN_EINVAL,
                              "invalid request at byte %zu: %s \"%s\"; accepted: %s",
                              (size_t)(c.s.at - body), c.s.why, key, accepted_fields);
        return srv_seterr(err, errlen, NN_EINVAL, "invalid request at byte %zu: %s",
                          (size_t)(c.s.at - body), c.s.why);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

int srv_request_parse_json(struct srv_request *req, const char *body, size_t len, unsigned flags,
                           char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (err && errlen)
        err[0] = '\0';
    if (len == 0)
        return srv_seterr(err, errlen, NN_EINVAL,
                          "empty body: send a JSON object such as {\"pixels\":[784 numbers]}");
    struct drafts ds;
    memset(&ds, 0, sizeof ds);
    draft_init(&ds.top);
    int rc = GIVE_UP;
    struct cur c;
    const struct cur *note = NULL;
    if (!(flags & SRV_PARSE_NO_FAST)) {
        rc = parse_fast(&ds, &c, body, len);
        if (rc == 0) {
            rc = finish(req, &ds, err, errlen);
            req->fast = rc == 0;
            goto done;
        }
        if (rc == NN_ENOMEM) {
            srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
            goto done;
        }
        if (flags & SRV_PARSE_FAST_ONLY)
            goto done;
        drafts_free(&ds);
        draft_init(&ds.top);
        note = &c;
    }
    rc = parse_general(&ds, body, len, note, err, errlen);
    if (rc == 0)
        rc = finish(req, &ds, err, errlen);
done:
    drafts_free(&ds);
    if (rc != 0)
        srv_request_free(req);
    return rc;
}

void srv_request_free(struct srv_request *req)
{
    if (!req)
        return;
    if (req->images) {
        for (int i = 0; i < req->n; i++)
            free(req->images[i].pixels);
        if (req->images != &req->one)
            free(req->images);
    }
    memset(req, 0, sizeof *req);
}
