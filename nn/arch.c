/*
 * arch.c - the architecture spec string: "conv:32:5,pool:2,dense:256,dropout:0.3,dense:10".
 *
 * Design: the string is only a front end. It parses into an explicit struct nn_layer_spec list
 * (activations inserted), and that list, not the string, is what models and files carry.
 */
#include "nn_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(enum nn_layer_kind kind)
{
    switch (kind) {
    case NN_LAYER_DENSE: return "dense";
    case NN_LAYER_RELU: return "relu";
    case NN_LAYER_SIGMOID: return "sigmoid";
    case NN_LAYER_TANH: return "tanh";
    case NN_LAYER_CONV2D: return "conv";
    case NN_LAYER_MAXPOOL: return "pool";
    case NN_LAYER_DROPOUT: return "dropout";
    case NN_LAYER_FLATTEN: return "flatten";
    }
    return "?";
}

static int is_activation(enum nn_layer_kind kind)
{
    return kind == NN_LAYER_RELU || kind == NN_LAYER_SIGMOID || kind == NN_LAYER_TANH;
}

/* Parses up to max colon-separated integers after the token name into v; returns how many,
 * or -1 on junk. */
static int parse_ints(const char *s, int *v, int max)
{
    int n = 0;
    while (*s == ':') {
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        long x = strtol(s + 1, &end, 10);
        if (end == s + 1 || errno || x < 0 || x > NN_MAX_UNITS)
            return -1;
        v[n++] = (int)x;
        s = end;
    }
    return *s ? -1 : n;
}

static int parse_token(struct nn_layer_spec *l, const char *tok, char *err, size_t errlen)
{
    int v[4] = {0};
    int n;
    memset(l, 0, sizeof *l);
    if (!strcmp(tok, "relu") || !strcmp(tok, "sigmoid") || !strcmp(tok, "tanh")) {
        l->kind = tok[0] == 'r' ? NN_LAYER_RELU : tok[0] == 's' ? NN_LAYER_SIGMOID : NN_LAYER_TANH;
        return NN_OK;
    }
    if (!strcmp(tok, "flatten")) {
        l->kind = NN_LAYER_FLATTEN;
        return NN_OK;
    }
    if (!strncmp(tok, "dense", 5) && (n = parse_ints(tok + 5, v, 1)) == 1 && v[0] > 0) {
        l->kind = NN_LAYER_DENSE;
        l->units = v[0];
        return NN_OK;
    }
    if (!strncmp(tok, "conv", 4) && (n = parse_ints(tok + 4, v, 4)) >= 2 && v[0] > 0 && v[1] > 0) {
        l->kind = NN_LAYER_CONV2D;
        l->units = v[0];
        l->kernel = v[1];
        l->stride = n > 2 ? v[2] : 1;
        l->pad = n > 3 ? v[3] : v[1] / 2; /* default "same" padding for odd kernels */
        if (l->stride > 0)
            return NN_OK;
    }
    if (!strncmp(tok, "pool", 4) && (n = parse_ints(tok + 4, v, 2)) >= 1 && v[0] > 0) {
        l->kind = NN_LAYER_MAXPOOL;
        l->kernel = v[0];
        l->stride = n > 1 ? v[1] : v[0];
        if (l->stride > 0)
            return NN_OK;
    }
    if (!strncmp(tok, "dropout:", 8)) {
        char *end;
        float r = strtof(tok + 8, &end);
        if (end != tok + 8 && !*end && r >= 0.0f && r < 1.0f) {
            l->kind = NN_LAYER_DROPOUT;
            l->rate = r;
            return NN_OK;
        }
    }
    return nn_seterr(err, errlen, NN_EINVAL,
                     "bad layer '%s' (expected dense:N, conv:F:K[:S[:P]], pool:K[:S], "
                     "dropout:R with 0<=R<1, flatten, relu, sigmoid or tanh)",
                     tok);
}

int nn_arch_parse(struct nn_layer_spec *layers, int max_layers, int *n, const char *spec,
                  enum nn_layer_kind default_act, char *err, size_t errlen)
{
    struct nn_layer_spec parsed[NN_MAX_LAYERS];
    int count = 0, has_act = 0;
    char tok[64];

    *n = 0;
    if (!spec || !*spec)
        return nn_seterr(err, errlen, NN_EINVAL, "empty architecture");
    if (!is_activation(default_act))
        return nn_seterr(err, errlen, NN_EINVAL,
                         "default activation must be relu, sigmoid or tanh");
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof tok)
            return nn_seterr(err, errlen, NN_EINVAL, "bad layer list '%s'", spec);
        if (count == NN_MAX_LAYERS)
            return nn_seterr(err, errlen, NN_EINVAL, "more than %d layers", NN_MAX_LAYERS);
        memcpy(tok, p, len);
        tok[len] = '\0';
        int rc = parse_token(&parsed[count], tok, err, errlen);
        if (rc)
            return rc;
        has_act |= is_activation(parsed[count].kind);
        count++;
        p += len;
        if (*p == ',' && !*++p)
            return nn_seterr(err, errlen, NN_EINVAL, "trailing comma in '%s'", spec);
    }
    if (parsed[count - 1].kind != NN_LAYER_DENSE)
        return nn_seterr(err, errlen, NN_EINVAL, "the last layer must be dense (the classes)");

    int out = 0;
    for (int i = 0; i < count; i++) {
        if (out == max_layers)
            return nn_seterr(err, errlen, NN_EINVAL, "more than %d layers", max_layers);
        layers[out++] = parsed[i];
        enum nn_layer_kind k = parsed[i].kind;
        if (!has_act && i != count - 1 && (k == NN_LAYER_DENSE || k == NN_LAYER_CONV2D)) {
            if (out == max_layers)
                return nn_seterr(err, errlen, NN_EINVAL, "more than %d layers", max_layers);
            memset(&layers[out], 0, sizeof layers[out]);
            layers[out++].kind = default_act;
        }
    }
    *n = out;
    return NN_OK;
}

int nn_arch_format(char *buf, size_t len, const struct nn_layer_spec *layers, int n)
{
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const struct nn_layer_spec *l = &layers[i];
        char one[64];
        switch (l->kind) {
        case NN_LAYER_DENSE: snprintf(one, sizeof one, "dense:%d", l->units); break;
        case NN_LAYER_CONV2D:
            snprintf(one, sizeof one, "conv:%d:%d:%d:%d", l->units, l->kernel, l->stride, l->pad);
            break;
        case NN_LAYER_MAXPOOL: snprintf(one, sizeof one, "pool:%d:%d", l->kernel, l->stride); break;
        case NN_LAYER_DROPOUT: snprintf(one, sizeof one, "dropout:%g", (double)l->rate); break;
        default: snprintf(one, sizeof one, "%s", kind_name(l->kind)); break;
        }
        int w = snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0, "%s%s",
                         i ? "," : "", one);
        used += (size_t)w;
    }
    if (n == 0 && len > 0)
        buf[0] = '\0';
    return (int)used;
}
