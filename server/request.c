/*
 * request.c - /predict JSON bodies to images: an exact fast path, cJSON for everything else.
 *
 * Both parsers fill the same drafts (one per image, plus the top-level defaults), and one
 * function, finish(), checks the shape of the request and builds the result, so the
 * messages about counts and sizes are the same whichever parser ran. See request.h for why
 * there are two.
 */
#include "request.h"
#include "err.h"

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

struct cur {
    const char *p, *end;
    struct drafts *ds;
};

static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static void skip_ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int eat(struct cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A strict JSON number converted exactly, or GIVE_UP. */
static int fast_number(struct cur *c, double *out)
{
    const char *p = c->p, *end = c->end, *start = p;
    int neg = 0, nd = 0, e10 = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end)
        return GIVE_UP;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return GIVE_UP;
    } else if (is_digit(*p)) {
        while (p < end && is_digit(*p)) {
            if (++nd > 19)
                return GIVE_UP;
            m = m * 10 + (uint64_t)(*p++ - '0');
        }
    } else {
        return GIVE_UP;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return GIVE_UP;
        while (p < end && is_digit(*p)) {
            if (m != 0 || *p != '0') {
                if (++nd > 19)
                    return GIVE_UP;
                m = m * 10 + (uint64_t)(*p - '0');
            }
            e10--;
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int sign = 1, ev = 0, ned = 0;
        if (p < end && (*p == '+' || *p == '-'))
            sign = *p++ == '-' ? -1 : 1;
        if (p >= end || !is_digit(*p))
            return GIVE_UP;
        while (p < end && is_digit(*p)) {
            if (++ned > 4)
                return GIVE_UP;
            ev = ev * 10 + (*p++ - '0');
        }
        e10 += sign * ev;
    }
    if (p - start > 40 || m > (UINT64_C(1) << 53))
        return GIVE_UP;
    double d = (double)m;
    if (m != 0) {
        if (e10 < -22 || e10 > 22)
            return GIVE_UP;
        d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
    }
    *out = neg ? -d : d;
    c->p = p;
    return 0;
}

/* A string of printable ASCII without escapes, copied into buf[len]; or GIVE_UP. */
static int fast_string(struct cur *c, char *buf, size_t len)
{
    if (!eat(c, '"'))
        return GIVE_UP;
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\' || n + 1 >= len)
            return GIVE_UP;
        buf[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end)
        return GIVE_UP;
    c->p++;
    buf[n] = '\0';
    return 0;
}

static int fast_pixels(struct cur *c, struct draft *d)
{
    if (!eat(c, '['))
        return GIVE_UP;
    if (eat(c, ']'))
        return 0;
    for (;;) {
        double v;
        skip_ws(c);
        if (fast_number(c, &v) != 0 || !(v >= 0 && v <= 1))
            return GIVE_UP;
        int rc = draft_push(c->ds, d, (float)v);
        if (rc == -2)
            return NN_ENOMEM;
        if (rc != 0)
            return GIVE_UP;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
        return GIVE_UP;
    }
}

static int fast_side(struct cur *c, int *out)
{
    double v;
    skip_ws(c);
    if (fast_number(c, &v) != 0 || !(v >= 1 && v <= SRV_MAX_SIDE) || v != floor(v))
        return GIVE_UP;
    *out = (int)v;
    return 0;
}

static int fast_object(struct cur *c, struct draft *d, int top);

static int fast_images(struct cur *c)
{
    if (!eat(c, '['))
        return GIVE_UP;
    if (eat(c, ']'))
        return 0;
    for (;;) {
        if (c->ds->n >= SRV_MAX_IMAGES)
            return GIVE_UP;
        struct draft *d = drafts_add(c->ds);
        if (!d)
            return NN_ENOMEM;
        int rc = fast_object(c, d, 0);
        if (rc != 0)
            return rc;
        c->ds->total_pixels += d->n_pixels;
        if (eat(c, ','))
            continue;
        if (eat(c, ']'))
            return 0;
        return GIVE_UP;
    }
}

static int fast_object(struct cur *c, struct draft *d, int top)
{
    if (!eat(c, '{'))
        return GIVE_UP;
    if (eat(c, '}'))
        return 0;
    for (;;) {
        char key[16];
        int rc = fast_string(c, key, sizeof key);
        if (rc != 0 || !eat(c, ':'))
            return GIVE_UP;
        skip_ws(c);
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
            rc = fast_string(c, d->model, sizeof d->model);
        } else if (!strcmp(key, "return_input") && d->return_input < 0) {
            if ((size_t)(c->end - c->p) >= 4 && !memcmp(c->p, "true", 4)) {
                d->return_input = 1;
                c->p += 4;
            } else if ((size_t)(c->end - c->p) >= 5 && !memcmp(c->p, "false", 5)) {
                d->return_input = 0;
                c->p += 5;
            } else {
                rc = GIVE_UP;
            }
        } else if (top && !strcmp(key, "images") && !d->has_images) {
            d->has_images = 1;
            rc = fast_images(c);
        } else {
            rc = GIVE_UP;
        }
        if (rc != 0)
            return rc;
        if (eat(c, ','))
            continue;
        if (eat(c, '}'))
            return 0;
        return GIVE_UP;
    }
}

static int parse_fast(struct drafts *ds, const char *body, size_t len)
{
    struct cur c = {body, body + len, ds};
    int rc = fast_object(&c, &ds->top, 1);
    if (rc != 0)
        return rc;
    skip_ws(&c);
    return c.p == c.end ? 0 : GIVE_UP;
}

/* ---------------------------------------------------------------------------------------- */
/* cJSON path: any JSON, every error worded                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Depth and value count from the raw bytes, so that a hostile body never gets a tree built:
 * cJSON allocates a 64-byte node per value and recurses once per nesting level. */
static int prescan(const char *s, size_t len, char *err, size_t errlen)
{
    int depth = 0, in_str = 0;
    size_t values = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > SRV_MAX_DEPTH)
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "JSON nested deeper than %d levels; a request needs at most "
                                  "{\"images\":[{\"pixels\":[...]}]}",
                                  SRV_MAX_DEPTH);
        } else if (ch == ']' || ch == '}') {
            depth--;
        } else if (ch == ',') {
            if (++values > (size_t)SRV_MAX_TOTAL_PIXELS + 4096)
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "request has more than %d values, at most %d pixels in all",
                                  SRV_MAX_TOTAL_PIXELS + 4096, SRV_MAX_TOTAL_PIXELS);
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

static int parse_slow(struct drafts *ds, const char *body, size_t len, char *err, size_t errlen)
{
    int rc = prescan(body, len, err, errlen);
    if (rc != 0)
        return rc;
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
    if (!(flags & SRV_PARSE_NO_FAST)) {
        rc = parse_fast(&ds, body, len);
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
    }
    rc = parse_slow(&ds, body, len, err, errlen);
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

int srv_request_init_single(struct srv_request *req, int w, int h)
{
    memset(req, 0, sizeof *req);
    if (w < 1 || h < 1 || (size_t)w > SIZE_MAX / sizeof(float) / (size_t)h)
        return NN_ENOMEM;
    req->one.pixels = malloc((size_t)w * (size_t)h * sizeof(float));
    if (!req->one.pixels)
        return NN_ENOMEM;
    req->one.width = w;
    req->one.height = h;
    req->n = 1;
    req->images = &req->one;
    return 0;
}
