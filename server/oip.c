/*
 * oip.c - the Open Inference Protocol's REST routes (oip.h).
 *
 * An infer request is read in place with jscan.h, never as a cJSON tree: its data can be
 * 200k numbers (256 images of 784), and a tree of those would take ~13 MB and ~10 ms. The
 * reader is strict and words every error with the field it is in ("inputs[0].shape: ...").
 * The tensors then become a struct srv_request (raw 784-pixel images, or decoded image files)
 * and every image goes through srv_predict_image, the step /predict and /read use.
 */
#include "oip.h"

#include "buf.h"
#include "decode.h"
#include "err.h"
#include "jscan.h"

#include "nn/nn.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OIP_ID_MAX 256    /* bytes of the request's "id", echoed in the answer */
#define OIP_NAME_MAX 64   /* bytes of a tensor's or output's name */
#define OIP_MAX_RANK 4    /* [N,1,28,28] */
#define OIP_MAX_DEPTH 8   /* nesting of objects and arrays in a request */
#define OIP_VERSION "1"   /* every model has this one version */
#define OIP_OUT_PROBS 0
#define OIP_OUT_PRED 1

static const char json_type[] = "application/json";
static const char binary_type[] = "application/octet-stream";
static const char inputs_help[] =
    "one input: FP32 or UINT8 pixels of shape [N,784], [N,28,28] or [N,1,28,28], or BYTES "
    "image files of shape [N]";

/* ---------------------------------------------------------------------------------------- */
/* Paths and metadata                                                                       */
/* ---------------------------------------------------------------------------------------- */

int srv_oip_is_v2(const char *url)
{
    return !strncmp(url, "/v2", 3) && (url[3] == '\0' || url[3] == '/');
}

/* Copies the path segment at *s (up to '/' or the end) into dst[cap]; 0, or -1 when empty or
 * too long. *s moves past the segment. */
static int segment(const char **s, char *dst, size_t cap)
{
    size_t n = strcspn(*s, "/");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, *s, n);
    dst[n] = '\0';
    *s += n;
    return 0;
}

enum srv_oip_kind srv_oip_path_parse(struct srv_oip_path *p, const char *url)
{
    memset(p, 0, sizeof *p);
    if (!strcmp(url, "/v2") || !strcmp(url, "/v2/"))
        return p->kind = SRV_OIP_SERVER;
    if (!strcmp(url, "/v2/health/live"))
        return p->kind = SRV_OIP_LIVE;
    if (!strcmp(url, "/v2/health/ready"))
        return p->kind = SRV_OIP_READY;
    const char *s = url;
    if (strncmp(s, "/v2/models/", 11))
        return SRV_OIP_NONE;
    s += 11;
    if (segment(&s, p->model, sizeof p->model) != 0)
        return SRV_OIP_NONE;
    if (!strncmp(s, "/versions/", 10)) {
        s += 10;
        if (segment(&s, p->version, sizeof p->version) != 0)
            return SRV_OIP_NONE;
    }
    if (!*s)
        return p->kind = SRV_OIP_MODEL;
    if (!strcmp(s, "/ready"))
        return p->kind = SRV_OIP_MODEL_READY;
    if (!strcmp(s, "/infer"))
        return p->kind = SRV_OIP_INFER;
    return p->kind = SRV_OIP_NONE;
}

static void respond(struct srv_response *res, struct srv_buf *b, int status)
{
    res->body = srv_buf_steal(b, &res->len);
    res->status = status;
    res->content_type = json_type;
    if (!res->body)
        srv_response_error(res, 500, "out of memory");
}

void srv_oip_server_metadata(struct srv_response *res)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b,
                   "{\"name\":\"digits\",\"version\":\"%s\",\"extensions\":"
                   "[\"binary_tensor_data\"]}\n",
                   NN_VERSION);
    respond(res, &b, 200);
}

/* The model p names in s, or NULL with res holding the 404 (or 503 with no model). */
static const struct srv_model *find_model(struct srv_response *res, const struct srv_snapshot *s,
                                          const struct srv_oip_path *p)
{
    char msg[300];
    if (s->n == 0) {
        srv_response_error(res, 503, "no model is loaded");
        return NULL;
    }
    const struct srv_model *m = srv_snapshot_find(s, p->model);
    if (!m) {
        struct srv_buf b;
        srv_buf_init(&b);
        srv_buf_printf(&b, "unknown model \"%.64s\"; loaded: ", p->model);
        for (int i = 0; i < s->n; i++)
            srv_buf_printf(&b, "%s%s", i ? ", " : "", s->models[i].name);
        srv_response_error(res, 404, b.data && !b.oom ? b.data : "unknown model");
        srv_buf_free(&b);
        return NULL;
    }
    if (p->version[0] && strcmp(p->version, OIP_VERSION)) {
        snprintf(msg, sizeof msg, "model \"%s\" has no version \"%.32s\"; its one version is \"%s\"",
                 m->name, p->version, OIP_VERSION);
        srv_response_error(res, 404, msg);
        return NULL;
    }
    return m;
}

void srv_oip_model(struct srv_response *res, const struct srv_snapshot *s,
                   const struct srv_oip_path *p)
{
    memset(res, 0, sizeof *res);
    const struct srv_model *m = find_model(res, s, p);
    if (!m)
        return;
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_puts(&b, "{\"name\":");
    srv_buf_json_string(&b, m->name);
    if (p->kind == SRV_OIP_MODEL_READY) {
        srv_buf_puts(&b, ",\"ready\":true}\n");
    } else {
        srv_buf_puts(&b,
                     ",\"versions\":[\"" OIP_VERSION "\"],\"platform\":\"digits\","
                     "\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[-1,784]},"
                     "{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[-1]}],"
                     "\"outputs\":[{\"name\":\"probabilities\",\"datatype\":\"FP32\","
                     "\"shape\":[-1,10]},{\"name\":\"prediction\",\"datatype\":\"INT64\","
                     "\"shape\":[-1]}]}\n");
    }
    respond(res, &b, 200);
}

int srv_oip_content_type_ok(const char *ct)
{
    if (!ct || !*ct)
        return 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && !strncasecmp(ct, json_type, n)) ||
           (n == 24 && !strncasecmp(ct, binary_type, n));
}

/* ---------------------------------------------------------------------------------------- */
/* Reading an infer request                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* One image file of a BYTES tensor, pointing into the body (binary) or into `decoded`. */
struct blob {
    const unsigned char *p;
    size_t n;
};

struct infer {
    char id[OIP_ID_MAX];
    int has_id;
    int binary_all; /* parameters.binary_data_output */
    int n_inputs;
    /* the one input */
    char dtype[16];
    long long shape[OIP_MAX_RANK];
    int rank, has_shape, has_data;
    long long bin_size; /* parameters.binary_data_size, or -1 */
    float *values;      /* numbers of data, in order */
    size_t n_values, cap_values;
    int strings;                 /* data held strings (BYTES) */
    struct blob *blobs;          /* BYTES elements */
    size_t n_blobs, cap_blobs;
    unsigned char *decoded;      /* base64-decoded strings, blobs point into it */
    size_t n_decoded, cap_decoded;
    /* outputs, in the order asked */
    int n_outputs;
    int out_kind[2];
    int out_binary[2]; /* -1: not said */
    int has_outputs;
};

/* A reader over the JSON part, and where to word errors. */
struct rd {
    struct srv_jscan s;
    const char *body;
    char *err;
    size_t errlen;
    int depth;
};

static void infer_free(struct infer *in)
{
    free(in->values);
    free(in->blobs);
    free(in->decoded);
}

/* A syntax error: where the scanner gave up, or here. */
static int syntax(struct rd *r, const char *what)
{
    srv_jscan_give_up(&r->s, what);
    return srv_seterr(r->err, r->errlen, NN_EINVAL, "invalid JSON at byte %zu: %s",
                      (size_t)(r->s.at - r->body), r->s.why);
}

static int skip_value(struct rd *r);

static int skip_container(struct rd *r, char open, char close)
{
    if (++r->depth > OIP_MAX_DEPTH)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "invalid request: JSON nested deeper than %d levels", OIP_MAX_DEPTH);
    r->s.p++; /* open */
    if (srv_jscan_eat(&r->s, close)) {
        r->depth--;
        return 0;
    }
    for (;;) {
        if (open == '{') {
            srv_jscan_ws(&r->s);
            if (srv_jscan_string(&r->s, NULL, 0, "") != 0)
                return syntax(r, "expected a field name");
            if (!srv_jscan_eat(&r->s, ':'))
                return syntax(r, "expected ':' after a field name");
        }
        int rc = skip_value(r);
        if (rc)
            return rc;
        if (srv_jscan_eat(&r->s, ','))
            continue;
        if (srv_jscan_eat(&r->s, close))
            break;
        return syntax(r, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    r->depth--;
    return 0;
}

/* Any JSON value, checked and skipped. */
static int skip_value(struct rd *r)
{
    srv_jscan_ws(&r->s);
    if (r->s.p >= r->s.end)
        return syntax(r, "unexpected end of the body");
    char ch = *r->s.p;
    if (ch == '{')
        return skip_container(r, '{', '}');
    if (ch == '[')
        return skip_container(r, '[', ']');
    if (ch == '"')
        return srv_jscan_string(&r->s, NULL, 0, "") ? syntax(r, "bad string") : 0;
    double d;
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return srv_jscan_number(&r->s, &d) ? syntax(r, "bad number") : 0;
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(r->s.end - r->s.p) >= n && !memcmp(r->s.p, words[i], n)) {
            r->s.p += n;
            return 0;
        }
    }
    return syntax(r, "expected a JSON value");
}

/* A boolean into *out: 0, or a worded error naming where. */
static int read_bool(struct rd *r, int *out, const char *where)
{
    srv_jscan_ws(&r->s);
    size_t left = (size_t)(r->s.end - r->s.p);
    if (left >= 4 && !memcmp(r->s.p, "true", 4)) {
        r->s.p += 4;
        *out = 1;
        return 0;
    }
    if (left >= 5 && !memcmp(r->s.p, "false", 5)) {
        r->s.p += 5;
        *out = 0;
        return 0;
    }
    return srv_seterr(r->err, r->errlen, NN_EINVAL, "%s must be true or false", where);
}

/* A string into buf[cap]: 0, or a worded error naming where. */
static int read_string(struct rd *r, char *buf, size_t cap, const char *where)
{
    srv_jscan_ws(&r->s);
    if (r->s.p >= r->s.end || *r->s.p != '"')
        return srv_seterr(r->err, r->errlen, NN_EINVAL, "%s must be a string", where);
    if (srv_jscan_string(&r->s, buf, cap, "too long") != 0) {
        if (r->s.why && !strcmp(r->s.why, "too long"))
            return srv_seterr(r->err, r->errlen, NN_EINVAL, "%s is longer than %zu bytes", where,
                              cap - 1);
        return syntax(r, "bad string");
    }
    return 0;
}

/* Reads the object at the cursor, calling field(r, key, ctx) for each field with the cursor
 * at its value; field returns 0, or an error. Keys over 63 bytes are errors. */
static int read_object(struct rd *r, const char *where, void *ctx,
                       int (*field)(struct rd *r, const char *key, void *ctx))
{
    if (!srv_jscan_eat(&r->s, '{'))
        return r->s.p >= r->s.end ? syntax(r, "")
                                  : srv_seterr(r->err, r->errlen, NN_EINVAL,
                                               "%s must be a JSON object", where);
    if (++r->depth > OIP_MAX_DEPTH)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "invalid request: JSON nested deeper than %d levels", OIP_MAX_DEPTH);
    if (srv_jscan_eat(&r->s, '}')) {
        r->depth--;
        return 0;
    }
    for (;;) {
        char key[64];
        srv_jscan_ws(&r->s);
        if (srv_jscan_string(&r->s, key, sizeof key, "a field name longer than 63 bytes"))
            return syntax(r, "expected a field name");
        if (!srv_jscan_eat(&r->s, ':'))
            return syntax(r, "expected ':' after a field name");
        int rc = field(r, key, ctx);
        if (rc)
            return rc;
        if (srv_jscan_eat(&r->s, ','))
            continue;
        if (srv_jscan_eat(&r->s, '}'))
            break;
        return syntax(r, "expected ',' or '}' after a field");
    }
    r->depth--;
    return 0;
}

/* Reads the array at the cursor, calling item(r, index, ctx) with the cursor at each item. */
static int read_array(struct rd *r, const char *where, void *ctx,
                      int (*item)(struct rd *r, size_t i, void *ctx))
{
    if (!srv_jscan_eat(&r->s, '['))
        return r->s.p >= r->s.end ? syntax(r, "")
                                  : srv_seterr(r->err, r->errlen, NN_EINVAL,
                                               "%s must be an array", where);
    if (++r->depth > OIP_MAX_DEPTH)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "invalid request: JSON nested deeper than %d levels", OIP_MAX_DEPTH);
    if (srv_jscan_eat(&r->s, ']')) {
        r->depth--;
        return 0;
    }
    for (size_t i = 0;; i++) {
        int rc = item(r, i, ctx);
        if (rc)
            return rc;
        if (srv_jscan_eat(&r->s, ','))
            continue;
        if (srv_jscan_eat(&r->s, ']'))
            break;
        return syntax(r, "expected ',' or ']'");
    }
    r->depth--;
    return 0;
}

/* --- data --------------------------------------------------------------------------------- */

static int push_value(struct rd *r, struct infer *in, float v)
{
    if (in->n_values == in->cap_values) {
        size_t cap = in->cap_values ? in->cap_values * 2 : 1024;
        if (cap > (size_t)SRV_MAX_IMAGES * NN_MNIST_PIXELS)
            cap = (size_t)SRV_MAX_IMAGES * NN_MNIST_PIXELS;
        if (in->n_values >= cap)
            return srv_seterr(r->err, r->errlen, NN_EINVAL,
                              "inputs[0].data has more than %d numbers (%d images of 784)",
                              SRV_MAX_IMAGES * NN_MNIST_PIXELS, SRV_MAX_IMAGES);
        float *p = realloc(in->values, cap * sizeof *p);
        if (!p)
            return srv_seterr(r->err, r->errlen, NN_ENOMEM, "out of memory");
        in->values = p;
        in->cap_values = cap;
    }
    in->values[in->n_values++] = v;
    return 0;
}

static int push_blob(struct rd *r, struct infer *in, const unsigned char *p, size_t n)
{
    if (in->n_blobs >= SRV_MAX_IMAGES)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "inputs[0] has more than %d images, at most %d per request",
                          SRV_MAX_IMAGES, SRV_MAX_IMAGES);
    if (in->n_blobs == in->cap_blobs) {
        size_t cap = in->cap_blobs ? in->cap_blobs * 2 : 8;
        struct blob *b = realloc(in->blobs, cap * sizeof *b);
        if (!b)
            return srv_seterr(r->err, r->errlen, NN_ENOMEM, "out of memory");
        in->blobs = b;
        in->cap_blobs = cap;
    }
    in->blobs[in->n_blobs++] = (struct blob){p, n};
    return 0;
}

static int b64_digit(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z'   ? ch - 'A'
           : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
           : ch >= '0' && ch <= '9' ? ch - '0' + 52
           : ch == '+' || ch == '-' ? 62
           : ch == '/' || ch == '_' ? 63
                                    : -1;
}

/* A BYTES element in JSON: a string of base64 (standard or URL-safe alphabet, padding
 * optional), decoded into in->decoded. Offsets are kept while decoding, pointers fixed by
 * the caller once the buffer stops moving. */
static int data_string(struct rd *r, struct infer *in)
{
    const char *q = r->s.p + 1, *end = r->s.end;
    const char *close = memchr(q, '"', (size_t)(end - q));
    if (!close)
        return syntax(r, "an unterminated string");
    size_t n = (size_t)(close - q);
    size_t need = n / 4 * 3 + 3;
    if (in->n_decoded + need > in->cap_decoded) {
        size_t cap = in->cap_decoded ? in->cap_decoded : 4096;
        while (cap < in->n_decoded + need)
            cap *= 2;
        unsigned char *p = realloc(in->decoded, cap);
        if (!p)
            return srv_seterr(r->err, r->errlen, NN_ENOMEM, "out of memory");
        in->decoded = p;
        in->cap_decoded = cap;
    }
    size_t start = in->n_decoded, k = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)q[i];
        int d = b64_digit(ch);
        if (ch == '=' && i + 2 >= n && n % 4 == 0) {
            pad++;
            continue;
        }
        if (d < 0 || pad)
            return srv_seterr(r->err, r->errlen, NN_EINVAL,
                              "inputs[0].data[%zu] is not base64 (byte %zu of the string): "
                              "BYTES elements in JSON are image files in base64; send raw "
                              "bytes with the binary extension",
                              in->n_blobs, i);
        acc = acc << 6 | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            in->decoded[start + k++] = (unsigned char)(acc >> bits);
        }
    }
    in->n_decoded = start + k;
    r->s.p = close + 1;
    /* the pointer is an offset until every string is read (decoded may still move) */
    return push_blob(r, in, (const unsigned char *)(uintptr_t)start, k);
}

static int data_item(struct rd *r, size_t i, void *ctx);

/* One element of data: a number, a string, or a nested array (row-major, flattened). */
static int data_value(struct rd *r, struct infer *in)
{
    srv_jscan_ws(&r->s);
    if (r->s.p >= r->s.end)
        return syntax(r, "unexpected end of the body");
    char ch = *r->s.p;
    if (ch == '[')
        return read_array(r, "inputs[0].data", in, data_item);
    if (ch == '"') {
        if (in->n_values)
            return srv_seterr(r->err, r->errlen, NN_EINVAL,
                              "inputs[0].data mixes numbers and strings");
        in->strings = 1;
        return data_string(r, in);
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        double d;
        if (in->strings)
            return srv_seterr(r->err, r->errlen, NN_EINVAL,
                              "inputs[0].data mixes numbers and strings");
        if (srv_jscan_number(&r->s, &d) != 0)
            return syntax(r, "bad number");
        return push_value(r, in, (float)d);
    }
    return srv_seterr(r->err, r->errlen, NN_EINVAL,
                      "inputs[0].data must hold numbers (FP32, UINT8) or base64 strings "
                      "(BYTES)");
}

static int data_item(struct rd *r, size_t i, void *ctx)
{
    (void)i;
    return data_value(r, ctx);
}

/* --- inputs, outputs, parameters ------------------------------------------------------------ */

static int shape_item(struct rd *r, size_t i, void *ctx)
{
    struct infer *in = ctx;
    double d;
    srv_jscan_ws(&r->s);
    if (i >= OIP_MAX_RANK)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "inputs[0].shape has more than %d dimensions; %s", OIP_MAX_RANK,
                          inputs_help);
    if (srv_jscan_number(&r->s, &d) != 0 || d != floor(d) || d < 0 || d > 1e15)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "inputs[0].shape must be an array of non-negative integers");
    in->shape[i] = (long long)d;
    in->rank = (int)i + 1;
    return 0;
}

static int input_params(struct rd *r, const char *key, void *ctx)
{
    struct infer *in = ctx;
    if (!strcmp(key, "binary_data_size")) {
        double d;
        srv_jscan_ws(&r->s);
        if (srv_jscan_number(&r->s, &d) != 0 || d != floor(d) || d < 0 || d > 1e15)
            return srv_seterr(r->err, r->errlen, NN_EINVAL,
                              "inputs[0].parameters.binary_data_size must be a non-negative "
                              "integer");
        in->bin_size = (long long)d;
        return 0;
    }
    return skip_value(r); /* other parameters are not ours */
}

static int input_field(struct rd *r, const char *key, void *ctx)
{
    struct infer *in = ctx;
    char name[OIP_NAME_MAX];
    if (!strcmp(key, "name"))
        return read_string(r, name, sizeof name, "inputs[0].name");
    if (!strcmp(key, "datatype"))
        return read_string(r, in->dtype, sizeof in->dtype, "inputs[0].datatype");
    if (!strcmp(key, "shape")) {
        in->has_shape = 1;
        in->rank = 0;
        return read_array(r, "inputs[0].shape", in, shape_item);
    }
    if (!strcmp(key, "parameters"))
        return read_object(r, "inputs[0].parameters", in, input_params);
    if (!strcmp(key, "data")) {
        in->has_data = 1;
        return data_value(r, in);
    }
    return skip_value(r);
}

static int input_item(struct rd *r, size_t i, void *ctx)
{
    struct infer *in = ctx;
    if (i >= 1)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "inputs has more than one tensor; this model takes %s", inputs_help);
    in->n_inputs = 1;
    return read_object(r, "inputs[0]", in, input_field);
}

struct out_ctx {
    struct infer *in;
    size_t i;
    char name[OIP_NAME_MAX];
    int binary; /* -1 not said */
};

static int output_params(struct rd *r, const char *key, void *ctx)
{
    struct out_ctx *o = ctx;
    if (!strcmp(key, "binary_data"))
        return read_bool(r, &o->binary, "outputs[].parameters.binary_data");
    return skip_value(r);
}

static int output_field(struct rd *r, const char *key, void *ctx)
{
    struct out_ctx *o = ctx;
    if (!strcmp(key, "name"))
        return read_string(r, o->name, sizeof o->name, "outputs[].name");
    if (!strcmp(key, "parameters"))
        return read_object(r, "outputs[].parameters", o, output_params);
    return skip_value(r);
}

static int output_item(struct rd *r, size_t i, void *ctx)
{
    struct infer *in = ctx;
    struct out_ctx o = {.in = in, .i = i, .binary = -1};
    int rc = read_object(r, "outputs[]", &o, output_field);
    if (rc)
        return rc;
    int kind = !strcmp(o.name, "probabilities") ? OIP_OUT_PROBS
               : !strcmp(o.name, "prediction")  ? OIP_OUT_PRED
                                                : -1;
    if (kind < 0)
        return srv_seterr(r->err, r->errlen, NN_EINVAL,
                          "outputs[%zu]: unknown output \"%.63s\"; this model has "
                          "\"probabilities\" and \"prediction\"",
                          i, o.name);
    for (int k = 0; k < in->n_outputs; k++)
        if (in->out_kind[k] == kind)
            return srv_seterr(r->err, r->errlen, NN_EINVAL, "outputs[%zu]: \"%s\" is asked twice",
                              i, o.name);
    in->out_kind[in->n_outputs] = kind;
    in->out_binary[in->n_outputs] = o.binary;
    in->n_outputs++;
    return 0;
}

static int request_params(struct rd *r, const char *key, void *ctx)
{
    struct infer *in = ctx;
    if (!strcmp(key, "binary_data_output"))
        return read_bool(r, &in->binary_all, "parameters.binary_data_output");
    return skip_value(r);
}

static int request_field(struct rd *r, const char *key, void *ctx)
{
    struct infer *in = ctx;
    if (!strcmp(key, "id")) {
        in->has_id = 1;
        return read_string(r, in->id, sizeof in->id, "id");
    }
    if (!strcmp(key, "inputs"))
        return read_array(r, "inputs", in, input_item);
    if (!strcmp(key, "outputs")) {
        in->has_outputs = 1;
        return read_array(r, "outputs", in, output_item);
    }
    if (!strcmp(key, "parameters"))
        return read_object(r, "parameters", in, request_params);
    return skip_value(r); /* "model_name" (Triton's clients send it), and anything to come */
}

/* The JSON part of the body into *in. */
static int read_request(struct infer *in, const char *json, size_t len, char *err, size_t errlen)
{
    struct rd r = {.s = {.p = json, .end = json + len}, .body = json, .err = err,
                   .errlen = errlen};
    in->bin_size = -1;
    if (len >= 3 && !memcmp(json, "\xef\xbb\xbf", 3))
        r.s.p += 3;
    srv_jscan_ws(&r.s);
    int rc = read_object(&r, "the body", in, request_field);
    if (rc)
        return rc;
    srv_jscan_ws(&r.s);
    if (r.s.p != r.s.end)
        return syntax(&r, "unexpected data after the object");
    for (size_t i = 0; i < in->n_blobs; i++) /* offsets into decoded become pointers */
        in->blobs[i].p = in->decoded + (uintptr_t)in->blobs[i].p;
    return 0;
}

/* --- the tensor to images ----------------------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Checks the input against its datatype and shape and fills req: raw images for pixels,
 * decoded files for BYTES. bin/bin_len: the binary part of the body (may be empty). */
static int to_images(struct srv_request *req, struct infer *in, const unsigned char *bin,
                     size_t bin_len, char *err, size_t errlen)
{
    if (in->n_inputs != 1)
        return srv_seterr(err, errlen, NN_EINVAL, "inputs is missing or empty; this model takes %s",
                          inputs_help);
    if (!in->dtype[0] || !in->has_shape)
        return srv_seterr(err, errlen, NN_EINVAL, "inputs[0] needs a datatype and a shape");
    const int fp32 = !strcmp(in->dtype, "FP32"), u8 = !strcmp(in->dtype, "UINT8"),
              bytes = !strcmp(in->dtype, "BYTES");
    if (!fp32 && !u8 && !bytes)
        return srv_seterr(err, errlen, NN_EINVAL,
                          "inputs[0].datatype \"%s\" is not taken; this model takes %s",
                          in->dtype, inputs_help);
    const long long *sh = in->shape;
    long long n = in->rank ? sh[0] : 0;
    int shape_ok = bytes ? (in->rank == 1 || (in->rank == 2 && sh[1] == 1))
                         : ((in->rank == 2 && sh[1] == 784) ||
                            (in->rank == 3 && sh[1] == 28 && sh[2] == 28) ||
                            (in->rank == 4 && sh[1] == 1 && sh[2] == 28 && sh[3] == 28));
    if (!shape_ok || n < 1)
        return srv_seterr(err, errlen, NN_EINVAL,
                          "inputs[0].shape does not fit %s: this model takes %s", in->dtype,
                          inputs_help);
    if (n > SRV_MAX_IMAGES)
        return srv_seterr(err, errlen, NN_EINVAL,
                          "inputs[0].shape has %lld images; at most %d per request", n,
                          SRV_MAX_IMAGES);
    if (in->has_data == (in->bin_size >= 0))
        return srv_seterr(err, errlen, NN_EINVAL,
                          in->has_data ? "inputs[0] has both data and binary_data_size; send one"
                                       : "inputs[0] has no data (or binary_data_size with the "
                                         "Inference-Header-Content-Length header)");
    const size_t count = bytes ? (size_t)n : (size_t)n * NN_MNIST_PIXELS;
    if (in->bin_size >= 0) {
        if ((size_t)in->bin_size != bin_len)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "inputs[0].parameters.binary_data_size is %lld but %zu bytes "
                              "follow the JSON",
                              in->bin_size, bin_len);
        if (bytes) {
            size_t at = 0;
            free(in->blobs);
            in->n_blobs = 0;
            in->blobs = malloc((size_t)n * sizeof *in->blobs);
            if (!in->blobs)
                return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
            while (at < bin_len) {
                if (bin_len - at < 4 || le32(bin + at) > bin_len - at - 4)
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "inputs[0]: BYTES element %zu runs past the binary data "
                                      "(each is a 4-byte little-endian length, then the bytes)",
                                      in->n_blobs);
                size_t k = le32(bin + at);
                if (in->n_blobs >= (size_t)n)
                    return srv_seterr(err, errlen, NN_EINVAL,
                                      "inputs[0]: the binary data holds more than the %lld "
                                      "elements of the shape",
                                      n);
                in->blobs[in->n_blobs++] = (struct blob){bin + at + 4, k};
                at += 4 + k;
            }
        } else {
            size_t esize = fp32 ? 4 : 1;
            if (bin_len != count * esize)
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "inputs[0]: %zu bytes of binary data, but shape and %s need "
                                  "%zu",
                                  bin_len, in->dtype, count * esize);
        }
    }
    if (bytes) {
        if (in->bin_size < 0 && !in->strings && in->n_values)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "inputs[0]: BYTES data must be strings (base64 image files)");
        if (in->n_blobs != (size_t)n)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "inputs[0]: %zu BYTES elements, but the shape says %lld",
                              in->n_blobs, n);
    } else if (in->bin_size < 0) {
        if (in->strings)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "inputs[0]: %s data must be numbers, not strings", in->dtype);
        if (in->n_values != count)
            return srv_seterr(err, errlen, NN_EINVAL,
                              "inputs[0].data has %zu numbers, but shape [%lld,...] needs %zu",
                              in->n_values, n, count);
    }

    memset(req, 0, sizeof *req);
    req->batch = 1;
    req->images = calloc((size_t)n, sizeof *req->images);
    if (!req->images)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
    req->n = (int)n;
    for (long long i = 0; i < n; i++) {
        struct srv_image *im = &req->images[i];
        if (bytes) {
            char derr[400];
            int rc = srv_image_decode(&im->pixels, &im->width, &im->height, in->blobs[i].p,
                                      in->blobs[i].n, derr, sizeof derr);
            if (rc != 0)
                return srv_seterr(err, errlen, rc, "inputs[0] element %lld: %s", i, derr);
            continue;
        }
        im->raw = 1;
        im->width = im->height = 28;
        im->pixels = malloc(NN_MNIST_PIXELS * sizeof(float));
        if (!im->pixels)
            return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
        for (size_t k = 0; k < NN_MNIST_PIXELS; k++) {
            size_t at = (size_t)i * NN_MNIST_PIXELS + k;
            float v;
            if (in->bin_size >= 0 && fp32) {
                uint32_t u = le32(bin + at * 4);
                memcpy(&v, &u, sizeof v);
            } else if (in->bin_size >= 0) {
                v = (float)bin[at];
            } else {
                v = in->values[at];
            }
            if (u8 && in->bin_size < 0 && !(v >= 0 && v <= 255 && v == floorf(v)))
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "inputs[0].data[%zu] = %g: UINT8 values are integers in "
                                  "0..255",
                                  at, (double)v);
            if (fp32 && !(v >= 0.0f && v <= 1.0f))
                return srv_seterr(err, errlen, NN_EINVAL,
                                  "inputs[0] value %zu = %g is outside [0,1] (FP32 pixels are "
                                  "0 for paper and 1 for ink, as MNIST's); send UINT8 for "
                                  "0..255",
                                  at, (double)v);
            im->pixels[k] = u8 ? v / 255.0f : v;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The answer                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void put_le(struct srv_buf *b, uint64_t v, int bytes)
{
    unsigned char t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    srv_buf_put(b, t, (size_t)bytes);
}

void srv_oip_infer(struct srv_response *res, struct srv_registry *reg,
                   struct srv_metrics *metrics, const struct srv_oip_path *p,
                   const char *json_len_header, const char *body, size_t len)
{
    memset(res, 0, sizeof *res);
    char err[512];
    size_t json_len = len;
    if (json_len_header) {
        char *end = NULL;
        errno = 0;
        unsigned long long h = strtoull(json_len_header, &end, 10);
        if (errno || end == json_len_header || *end || h > len || json_len_header[0] == '-') {
            snprintf(err, sizeof err,
                     "Inference-Header-Content-Length \"%.32s\" is not a length within the "
                     "body's %zu bytes",
                     json_len_header, len);
            srv_response_error(res, 400, err);
            return;
        }
        json_len = (size_t)h;
    }
    struct infer in = {0};
    struct srv_request req = {0};
    struct srv_snapshot *s = srv_registry_acquire(reg);
    struct srv_buf b, bin;
    srv_buf_init(&b);
    srv_buf_init(&bin);
    const struct srv_model *m = find_model(res, s, p);
    if (!m)
        goto done;
    int rc = read_request(&in, body, json_len, err, sizeof err);
    if (rc == 0)
        rc = to_images(&req, &in, (const unsigned char *)body + json_len, len - json_len, err,
                       sizeof err);
    if (rc != 0) {
        srv_response_error(res, rc == NN_ENOMEM ? 500 : 400, err);
        goto done;
    }
    if (!in.has_outputs) {
        in.n_outputs = 2;
        in.out_kind[0] = OIP_OUT_PROBS, in.out_kind[1] = OIP_OUT_PRED;
        in.out_binary[0] = in.out_binary[1] = -1;
    }
    const int n = req.n;
    float(*probs)[10] = calloc((size_t)n, sizeof *probs);
    int64_t *pred = calloc((size_t)n, sizeof *pred);
    if (!probs || !pred) {
        free(probs);
        free(pred);
        srv_response_error(res, 500, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        float x[NN_MNIST_PIXELS];
        struct srv_prediction pr;
        if (srv_predict_image(&pr, x, s, m, &req.images[i], metrics, res) != 0) {
            free(probs);
            free(pred);
            goto done;
        }
        pred[i] = pr.blank || pr.digit == NN_NOT_A_DIGIT ? -1 : pr.digit;
        for (int k = 0; !pr.blank && k < pr.shown; k++)
            probs[i][k] = pr.p10[k];
    }
    srv_buf_puts(&b, "{\"model_name\":");
    srv_buf_json_string(&b, m->name);
    srv_buf_puts(&b, ",\"model_version\":\"" OIP_VERSION "\"");
    if (in.has_id) {
        srv_buf_puts(&b, ",\"id\":");
        srv_buf_json_string(&b, in.id);
    }
    srv_buf_puts(&b, ",\"outputs\":[");
    for (int o = 0; o < in.n_outputs; o++) {
        const int kind = in.out_kind[o];
        const int binary = in.out_binary[o] >= 0 ? in.out_binary[o] : in.binary_all;
        if (o)
            srv_buf_putc(&b, ',');
        if (kind == OIP_OUT_PROBS)
            srv_buf_printf(&b,
                           "{\"name\":\"probabilities\",\"shape\":[%d,10],\"datatype\":\"FP32\"",
                           n);
        else
            srv_buf_printf(&b, "{\"name\":\"prediction\",\"shape\":[%d],\"datatype\":\"INT64\"",
                           n);
        if (binary) {
            size_t bytes = kind == OIP_OUT_PROBS ? (size_t)n * 10 * 4 : (size_t)n * 8;
            srv_buf_printf(&b, ",\"parameters\":{\"binary_data_size\":%zu}}", bytes);
            for (int i = 0; i < n; i++) {
                if (kind == OIP_OUT_PRED) {
                    put_le(&bin, (uint64_t)pred[i], 8);
                    continue;
                }
                for (int k = 0; k < 10; k++) {
                    uint32_t u;
                    memcpy(&u, &probs[i][k], sizeof u);
                    put_le(&bin, u, 4);
                }
            }
            continue;
        }
        srv_buf_puts(&b, ",\"data\":[");
        for (int i = 0; i < n; i++) {
            if (kind == OIP_OUT_PRED) {
                if (i)
                    srv_buf_putc(&b, ',');
                srv_buf_i64(&b, pred[i]);
                continue;
            }
            for (int k = 0; k < 10; k++) {
                if (i || k)
                    srv_buf_putc(&b, ',');
                srv_buf_num(&b, probs[i][k]);
            }
        }
        srv_buf_puts(&b, "]}");
    }
    srv_buf_puts(&b, "]}");
    free(probs);
    free(pred);
    if (bin.len) {
        res->has_json_len = 1;
        res->json_len = b.len;
        srv_buf_put(&b, bin.data, bin.len);
    } else {
        srv_buf_putc(&b, '\n');
    }
    respond(res, &b, 200);
    if (bin.len && res->status == 200)
        res->content_type = binary_type;
done:
    srv_buf_free(&b);
    srv_buf_free(&bin);
    srv_request_free(&req);
    infer_free(&in);
    srv_snapshot_release(s);
}
