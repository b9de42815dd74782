/*
 * model.c - building a model: shape resolution, parameter layout and initialisation,
 * accessors, and metadata ownership.
 *
 * Design: all parameters live in one float array split by per-layer offsets (llm.c style), so
 * the optimiser, the model file and checkpoints treat them as a single flat vector.
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS ((size_t)1 << 28) /* 1 GiB of float32: far beyond any digit model */

static const char *layer_name(enum nn_layer_kind kind)
{
    switch (kind) {
    case NN_LAYER_DENSE: return "dense";
    case NN_LAYER_CONV2D: return "conv";
    case NN_LAYER_MAXPOOL: return "pool";
    default: return "layer";
    }
}

int nn_model_layout(struct nn_model *m, char *err, size_t errlen)
{
    int c = m->in_c, h = m->in_h, w = m->in_w;
    size_t off = 0;

    if (c < 1 || h < 1 || w < 1 || c > 64 || h > NN_IMAGE_MAX_SIDE || w > NN_IMAGE_MAX_SIDE)
        return nn_seterr(err, errlen, NN_ERANGE, "input shape %dx%dx%d out of range", c, h, w);
    if (m->n_layers < 1 || m->n_layers > NN_MAX_LAYERS)
        return nn_seterr(err, errlen, NN_ERANGE, "%d layers (expected 1..%d)", m->n_layers,
                         NN_MAX_LAYERS);
    for (int i = 0; i < m->n_layers; i++) {
        struct nn_layer *L = &m->layers[i];
        const struct nn_layer_spec *s = &m->specs[i];
        memset(L, 0, sizeof *L);
        L->spec = *s;
        L->in_c = c, L->in_h = h, L->in_w = w;
        L->in_size = (size_t)c * h * w;
        switch (s->kind) {
        case NN_LAYER_DENSE:
            if (s->units < 1 || s->units > NN_MAX_UNITS)
                return nn_seterr(err, errlen, NN_ERANGE, "layer %d: dense with %d units", i + 1,
                                 s->units);
            c = s->units, h = 1, w = 1;
            L->n_w = (size_t)s->units * L->in_size;
            L->n_b = (size_t)s->units;
            break;
        case NN_LAYER_CONV2D:
            if (s->units < 1 || s->units > 4096 || s->kernel < 1 || s->kernel > 32 ||
                s->stride < 1 || s->stride > 32 || s->pad < 0 || s->pad >= s->kernel ||
                h + 2 * s->pad < s->kernel || w + 2 * s->pad < s->kernel)
                return nn_seterr(err, errlen, NN_ERANGE,
                                 "layer %d: conv %d filters %dx%d stride %d pad %d does not fit "
                                 "a %dx%dx%d input",
                                 i + 1, s->units, s->kernel, s->kernel, s->stride, s->pad, c, h, w);
            L->n_w = (size_t)s->units * c * s->kernel * s->kernel;
            L->n_b = (size_t)s->units;
            h = (h + 2 * s->pad - s->kernel) / s->stride + 1;
            w = (w + 2 * s->pad - s->kernel) / s->stride + 1;
            c = s->units;
            break;
        case NN_LAYER_MAXPOOL:
            if (s->kernel < 1 || s->kernel > 32 || s->stride < 1 || s->stride > 32 ||
                h < s->kernel || w < s->kernel)
                return nn_seterr(err, errlen, NN_ERANGE,
                                 "layer %d: pool %d stride %d does not fit a %dx%d input", i + 1,
                                 s->kernel, s->stride, h, w);
            h = (h - s->kernel) / s->stride + 1;
            w = (w - s->kernel) / s->stride + 1;
            break;
        case NN_LAYER_FLATTEN: c = c * h * w, h = 1, w = 1; break;
        case NN_LAYER_DROPOUT:
            if (!(s->rate >= 0.0f && s->rate < 1.0f))
                return nn_seterr(err, errlen, NN_ERANGE, "layer %d: dropout rate %g", i + 1,
                                 (double)s->rate);
            break;
        case NN_LAYER_RELU:
        case NN_LAYER_SIGMOID:
        case NN_LAYER_TANH: break;
        default:
            return nn_seterr(err, errlen, NN_EFORMAT, "layer %d: unknown kind %d", i + 1,
                             (int)s->kind);
        }
        L->out_c = c, L->out_h = h, L->out_w = w;
        L->out_size = (size_t)c * h * w;
        L->w_off = off;
        L->b_off = off + L->n_w;
        off += L->n_w + L->n_b;
        if (off > MAX_PARAMS || L->out_size > MAX_PARAMS)
            return nn_seterr(err, errlen, NN_ERANGE, "layer %d: %s too large (%zu parameters)",
                             i + 1, layer_name(s->kind), off);
    }
    if (m->specs[m->n_layers - 1].kind != NN_LAYER_DENSE)
        return nn_seterr(err, errlen, NN_EINVAL, "the last layer must be dense");
    if (m->layers[m->n_layers - 1].out_size > NN_OUTPUTS_MAX)
        return nn_seterr(err, errlen, NN_ERANGE, "%zu classes (at most %d)",
                         m->layers[m->n_layers - 1].out_size, NN_OUTPUTS_MAX);
    m->n_params = off;
    return NN_OK;
}

size_t nn_model_max_activation(const struct nn_model *m)
{
    size_t mx = (size_t)m->in_c * m->in_h * m->in_w;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].out_size > mx)
            mx = m->layers[i].out_size;
    return mx;
}

/* The activation that follows layer i (skipping shape-only layers), or 0 at the output. */
static enum nn_layer_kind next_activation(const struct nn_model *m, int i)
{
    for (int j = i + 1; j < m->n_layers; j++) {
        enum nn_layer_kind k = m->specs[j].kind;
        if (k == NN_LAYER_RELU || k == NN_LAYER_SIGMOID || k == NN_LAYER_TANH)
            return k;
        if (k == NN_LAYER_DENSE || k == NN_LAYER_CONV2D)
            return 0;
    }
    return 0;
}

static void init_params(struct nn_model *m, struct nn_rng *rng)
{
    for (int i = 0; i < m->n_layers; i++) {
        const struct nn_layer *L = &m->layers[i];
        if (!L->n_w)
            continue;
        size_t k2 = L->spec.kind == NN_LAYER_CONV2D ? (size_t)L->spec.kernel * L->spec.kernel : 1;
        double fan_in = (double)(L->n_w / L->n_b);
        double fan_out = (double)L->n_b * k2;
        float *wt = m->params + L->w_off;
        if (next_activation(m, i) == NN_LAYER_RELU) {
            /* He et al. 2015: N(0, 2/fan_in) keeps ReLU activations' variance stable. */
            float sd = (float)sqrt(2.0 / fan_in);
            for (size_t j = 0; j < L->n_w; j++)
                wt[j] = sd * nn_rng_normal(rng);
        } else {
            /* Glorot & Bengio 2010: U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
            float a = (float)sqrt(6.0 / (fan_in + fan_out));
            for (size_t j = 0; j < L->n_w; j++)
                wt[j] = a * (2.0f * nn_rng_uniform(rng) - 1.0f);
        }
        memset(m->params + L->b_off, 0, L->n_b * sizeof(float));
    }
}

int nn_model_new(nn_model **out, int c, int h, int w, const struct nn_layer_spec *layers,
                 int n_layers, struct nn_rng *rng, char *err, size_t errlen)
{
    struct nn_model *m;
    int rc;

    *out = NULL;
    if (n_layers < 1 || n_layers > NN_MAX_LAYERS || !layers)
        return nn_seterr(err, errlen, NN_EINVAL, "%d layers (expected 1..%d)", n_layers,
                         NN_MAX_LAYERS);
    m = calloc(1, sizeof *m);
    if (!m)
        return nn_seterr(err, errlen, NN_ENOMEM, "out of memory");
    m->in_c = c, m->in_h = h, m->in_w = w;
    m->n_layers = n_layers;
    memcpy(m->specs, layers, (size_t)n_layers * sizeof *layers);
    m->prep = NN_PREP_MNIST;
    rc = nn_model_layout(m, err, errlen);
    if (rc)
        goto fail;
    m->params = calloc(m->n_params ? m->n_params : 1, sizeof(float));
    if (!m->params) {
        rc = nn_seterr(err, errlen, NN_ENOMEM, "out of memory for %zu parameters", m->n_params);
        goto fail;
    }
    if (rng)
        init_params(m, rng);
    *out = m;
    return NN_OK;
fail:
    nn_model_free(m);
    return rc;
}

void nn_model_free(nn_model *m)
{
    if (!m)
        return;
    nn_meta_free(&m->meta);
    nn_model_weights_changed(m);
    free(m->params);
    free(m);
}

/* Dense layers: worth it from a few thousand weights on (below that the dense dot is as
 * fast). Conv layers: always (the direct convolution needs them). */
#define DENSE_WT_MIN_WEIGHTS 4096

/* Publishes a freshly built cache in *slot unless another thread was first; returns the one
 * that stays (the loser's copy is freed). */
static void *publish(_Atomic(void *) *slot, void *mine)
{
    void *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(slot, &expected, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    free(mine);
    return expected;
}

void nn_transpose(float *dst, const float *src, size_t rows, size_t cols)
{
    enum { T = 16 }; /* tiles, so that neither side strides through memory a float at a time */
    for (size_t r0 = 0; r0 < rows; r0 += T)
        for (size_t c0 = 0; c0 < cols; c0 += T)
            for (size_t r = r0; r < rows && r < r0 + T; r++)
                for (size_t c = c0; c < cols && c < c0 + T; c++)
                    dst[c * rows + r] = src[r * cols + c];
}

const float *nn_model_weights_t(const struct nn_model *m, int layer)
{
    struct nn_model *mut = (struct nn_model *)m; /* the cache only; weights are not written */
    if (layer < 0 || layer >= m->n_layers)
        return NULL;
    float *wt = atomic_load_explicit(&mut->wt_cache[layer], memory_order_acquire);
    if (wt)
        return wt;
    const struct nn_layer *L = &m->layers[layer];
    if (L->spec.kind != NN_LAYER_CONV2D || L->n_w == 0)
        return NULL;
    const size_t rows = L->n_b, cols = L->n_w / L->n_b; /* (F, C*K*K) */
    wt = malloc(L->n_w * sizeof *wt);
    if (!wt)
        return NULL;
    nn_transpose(wt, m->params + L->w_off, rows, cols);
    return publish(&mut->wt_cache[layer], wt);
}

const uint16_t *nn_model_weights_half(const struct nn_model *m, int layer)
{
    struct nn_model *mut = (struct nn_model *)m; /* the cache only; weights are not written */
    if (layer < 0 || layer >= m->n_layers)
        return NULL;
    uint16_t *wt = atomic_load_explicit(&mut->wt_half_cache[layer], memory_order_acquire);
    if (wt)
        return wt;
    const struct nn_layer *L = &m->layers[layer];
    if (L->spec.kind != NN_LAYER_DENSE || L->n_w < DENSE_WT_MIN_WEIGHTS)
        return NULL;
    const size_t O = L->out_size, I = L->in_size, ld = (size_t)nn_weights_half_ld((int)O);
    wt = calloc(I * ld, sizeof *wt);
    if (!wt)
        return NULL;
    const float *w = m->params + L->w_off;
    for (size_t o = 0; o < O; o++)
        for (size_t i = 0; i < I; i++)
            wt[i * ld + o] = nn_half_from_float(w[o * I + i]);
    return publish(&mut->wt_half_cache[layer], wt);
}

void nn_model_weights_changed(struct nn_model *m)
{
    for (int i = 0; i < NN_MAX_LAYERS; i++) {
        free(atomic_exchange_explicit(&m->wt_cache[i], NULL, memory_order_acq_rel));
        free(atomic_exchange_explicit(&m->wt_half_cache[i], NULL, memory_order_acq_rel));
    }
}

int nn_model_input_size(const nn_model *m) { return m->in_c * m->in_h * m->in_w; }
int nn_model_classes(const nn_model *m) { return (int)m->layers[m->n_layers - 1].out_size; }
size_t nn_model_param_count(const nn_model *m) { return m->n_params; }
enum nn_preprocess nn_model_preprocess(const nn_model *m) { return m->prep; }
void nn_model_set_preprocess(nn_model *m, enum nn_preprocess prep) { m->prep = prep; }
const struct nn_meta *nn_model_meta(const nn_model *m) { return &m->meta; }
float *nn_model_params(nn_model *m)
{
    nn_model_weights_changed(m); /* the caller may write them */
    return m->params;
}
const float *nn_model_params_const(const nn_model *m) { return m->params; }

int nn_model_layers(const nn_model *m, const struct nn_layer_spec **layers)
{
    *layers = m->specs;
    return m->n_layers;
}

void nn_model_input_shape(const nn_model *m, int *c, int *h, int *w)
{
    *c = m->in_c, *h = m->in_h, *w = m->in_w;
}

int nn_model_set_meta(nn_model *m, const struct nn_meta *meta)
{
    struct nn_meta copy;
    int rc = nn_meta_copy(&copy, meta);
    if (rc)
        return rc;
    nn_meta_free(&m->meta);
    m->meta = copy;
    return NN_OK;
}

void nn_meta_free(struct nn_meta *meta)
{
    if (!meta)
        return;
    free(meta->history);
    meta->history = NULL;
    meta->n_history = 0;
}

int nn_meta_copy(struct nn_meta *dst, const struct nn_meta *src)
{
    *dst = *src;
    dst->history = NULL;
    if (src->n_history > 0) {
        dst->history = malloc((size_t)src->n_history * sizeof *dst->history);
        if (!dst->history) {
            dst->n_history = 0;
            return NN_ENOMEM;
        }
        memcpy(dst->history, src->history, (size_t)src->n_history * sizeof *dst->history);
    }
    return NN_OK;
}

int nn_argmax(const float *probs, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (probs[i] > probs[best])
            best = i;
    return best;
}
