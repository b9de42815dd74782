/*
 * train.c - mini-batch training: batch assembly from bytes, forward/backward with gradient
 * accumulation, optimisers (SGD with momentum/Nesterov, Adam, AdamW, RMSprop), learning-rate
 * schedules.
 *
 * Design: a logical batch is processed in chunks of at most `chunk` samples whose gradients
 * accumulate, so full-batch gradient descent streams the byte dataset through cache-sized
 * float buffers instead of converting 60,000 images at once. Every random choice is a pure
 * function of (seed, epoch, sample) or (seed, step): shuffles, augmentation and dropout do not
 * depend on the thread count or on where a run was resumed.
 */
#include "nn_impl.h"
#include "fullbatch.h"
#include "net.h"

#include "atomic_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct nn_trainer {
    nn_model *model;
    struct nn_train_config cfg;
    struct nn_net net;
    int chunk, classes;
    size_t n_train, steps_per_epoch;
    int64_t step, total_steps;
    int epoch; /* epochs completed */
    /* the epoch in progress: position and running sums, so it can stop and resume */
    size_t pos, seen, correct;
    double loss_sum;
    float last_lr;
    float *grads, *m1, *m2; /* n_params each; m1/m2 optimiser moments */
    float *io_tmp;          /* room to transpose the first layer's weights; NULL when that
                             * layer is not kept transposed during epochs (see set_first_io) */
    int bytes;              /* the first layer reads the dataset bytes in place */
    /* full batch on a model that nn_fullbatch supports: steps take its fused pass over a
     * sparse copy of the dataset, made at the first epoch from the images and labels at
     * fb_images and fb_labels (made again if an epoch is given another dataset) */
    int fused;
    nn_fullbatch *fb;
    const uint8_t *fb_images, *fb_labels;
    uint32_t *perm;
    uint8_t *ybuf;
};

void nn_train_config_default(struct nn_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch = 32;
    cfg->epochs = 10;
    cfg->lr = 0.1f;
    cfg->optimizer = NN_OPT_SGD;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    cfg->schedule = NN_SCHED_CONSTANT;
    cfg->step_epochs = 10;
    cfg->step_gamma = 0.1f;
    cfg->seed = 1;
    cfg->threads = 1;
}

static int has_conv(const struct nn_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].spec.kind == NN_LAYER_CONV2D)
            return 1;
    return 0;
}

int nn_trainer_new(nn_trainer **out, nn_model *model, const struct nn_train_config *cfg,
                   size_t train_size, char *err, size_t errlen)
{
    nn_trainer *tr = NULL;
    int rc = NN_ENOMEM;
    *out = NULL;

    if (cfg->batch < 1)
        return nn_seterr(err, errlen, NN_EINVAL, "batch size %d must be at least 1", cfg->batch);
    if (cfg->epochs < 1 && cfg->iterations < 1)
        return nn_seterr(err, errlen, NN_EINVAL, "need at least one epoch or iteration");
    if (!(cfg->lr > 0.0f) || !isfinite(cfg->lr))
        return nn_seterr(err, errlen, NN_EINVAL, "learning rate %g must be positive",
                         (double)cfg->lr);
    if (cfg->threads < 1 || cfg->threads > 256)
        return nn_seterr(err, errlen, NN_EINVAL, "threads %d outside 1..256", cfg->threads);
    if (cfg->momentum < 0.0f || cfg->momentum >= 1.0f || cfg->beta1 < 0.0f || cfg->beta1 >= 1.0f ||
        cfg->beta2 < 0.0f || cfg->beta2 >= 1.0f || cfg->weight_decay < 0.0f)
        return nn_seterr(err, errlen, NN_EINVAL, "momentum/betas must be in [0,1), decay >= 0");
    if (train_size == 0 || train_size > UINT32_MAX)
        return nn_seterr(err, errlen, NN_EINVAL, "training set of %zu samples", train_size);

    tr = calloc(1, sizeof *tr);
    if (!tr)
        goto fail;
    tr->model = model;
    tr->cfg = *cfg;
    tr->classes = nn_model_classes(model);
    tr->n_train = train_size;
    if ((size_t)tr->cfg.batch > train_size)
        tr->cfg.batch = (int)train_size;
    tr->steps_per_epoch = (train_size + tr->cfg.batch - 1) / tr->cfg.batch;
    tr->total_steps =
        cfg->iterations > 0 ? cfg->iterations : (int64_t)cfg->epochs * (int64_t)tr->steps_per_epoch;
    int max_chunk = has_conv(model) ? 128 : 1024;
    tr->chunk = tr->cfg.batch < max_chunk ? tr->cfg.batch : max_chunk;
    if (nn_net_init(&tr->net, model, tr->chunk, cfg->threads, 1))
        goto fail;
    size_t np = model->n_params;
    tr->grads = calloc(np, sizeof(float));
    tr->m1 = calloc(np, sizeof(float));
    tr->m2 = calloc(np, sizeof(float));
    tr->perm = malloc(train_size * sizeof *tr->perm);
    tr->ybuf = malloc((size_t)tr->chunk);
    if (!tr->grads || !tr->m1 || !tr->m2 || !tr->perm || !tr->ybuf)
        goto fail;
    /* a first dense layer with few outputs reads the bytes in place (same bits); any other
     * is kept transposed during epochs, to skip zero inputs */
    tr->bytes = !nn_augment_enabled(&tr->cfg) && nn_net_byte_input(model);
    tr->fused = !nn_augment_enabled(&tr->cfg) && (size_t)tr->cfg.batch == train_size &&
                nn_fullbatch_supported(model);
    if (!tr->bytes && nn_net_first_io_possible(model)) {
        tr->io_tmp = malloc(model->layers[0].n_w * sizeof *tr->io_tmp);
        if (!tr->io_tmp || nn_net_first_io_init(&tr->net, model))
            goto fail;
    }
    *out = tr;
    return NN_OK;
fail:
    nn_trainer_free(tr);
    return nn_seterr(err, errlen, rc, "out of memory for training buffers");
}

void nn_trainer_free(nn_trainer *tr)
{
    if (!tr)
        return;
    nn_net_free(&tr->net);
    nn_fullbatch_free(tr->fb);
    free(tr->grads);
    free(tr->m1);
    free(tr->m2);
    free(tr->io_tmp);
    free(tr->perm);
    free(tr->ybuf);
    free(tr);
}

int64_t nn_trainer_steps(const nn_trainer *tr) { return tr->step; }
int nn_trainer_epochs_done(const nn_trainer *tr) { return tr->epoch; }
int nn_trainer_finished(const nn_trainer *tr) { return tr->step >= tr->total_steps; }

float nn_trainer_lr(const nn_trainer *tr)
{
    const struct nn_train_config *c = &tr->cfg;
    double t = (double)tr->step, total = (double)tr->total_steps;
    double warm = (double)c->warmup_epochs * (double)tr->steps_per_epoch;
    double lr = c->lr;
    if (c->schedule == NN_SCHED_ONECYCLE && warm <= 0.0)
        warm = 0.25 * total;
    if (warm > total)
        warm = total;
    if (t < warm) {
        /* linear warm-up from lr/25 (one-cycle's start, Smith 2018) */
        double f = (t + 1.0) / warm;
        return (float)(lr / 25.0 + (lr - lr / 25.0) * f);
    }
    switch (c->schedule) {
    case NN_SCHED_STEP: {
        int every = c->step_epochs > 0 ? c->step_epochs : 1;
        int k = (int)(t / (double)tr->steps_per_epoch) / every;
        return (float)(lr * pow(c->step_gamma, k));
    }
    case NN_SCHED_COSINE:
    case NN_SCHED_ONECYCLE: {
        double span = total - warm;
        double f = span > 0.0 ? (t - warm) / span : 1.0;
        return (float)(0.5 * lr * (1.0 + cos(3.141592653589793 * f)));
    }
    case NN_SCHED_CONSTANT:
    default: return (float)lr;
    }
}

/* Plain SGD (no momentum, no decay) on a first layer kept transposed, with the whole batch in
 * one chunk: backward applies the update to the weights itself (nn_net.sgd_w), so the weight
 * gradient, most of it zero (the rows of inputs no sample in the batch uses), is never
 * written, read or cleared. */
static void sgd_in_backward(nn_trainer *tr, float lr, size_t batch)
{
    const struct nn_train_config *c = &tr->cfg;
    tr->net.sgd_w = NULL;
    if (tr->net.first_io && batch <= (size_t)tr->chunk && c->optimizer == NN_OPT_SGD &&
        c->momentum == 0.0f && c->weight_decay == 0.0f) {
        tr->net.sgd_w = tr->model->params + tr->model->layers[0].w_off;
        tr->net.sgd_lr = lr;
    }
}

/* One optimiser update of params from grads (already averaged over the batch), which it
 * leaves zero for the next step (in the same pass, rather than a pass of its own on one
 * thread). Weight decay applies to weights, not biases. Element-wise, so threads cannot
 * change the result. */
static void optimizer_step(nn_trainer *tr, float lr)
{
    const struct nn_train_config *c = &tr->cfg;
    struct nn_model *m = tr->model;
    const int64_t t = tr->step + 1;
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps, mu = c->momentum;
    const float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    nn_model_weights_changed(m);
    for (int li = 0; li < m->n_layers; li++) {
        const struct nn_layer *L = &m->layers[li];
        /* the first layer's weights took a fused update in backward (see sgd_in_backward) */
        for (int part = li == 0 && tr->net.sgd_w; part < 2; part++) {
            size_t off = part ? L->b_off : L->w_off, n = part ? L->n_b : L->n_w;
            float wd = part ? 0.0f : c->weight_decay;
            float *p = m->params + off, *g = tr->grads + off, *v1 = tr->m1 + off,
                  *v2 = tr->m2 + off;
            if (n == 0)
                continue;
            const enum nn_optimizer opt = c->optimizer;
            const int nesterov = c->nesterov, nt = c->threads;
            const int par = nt > 1 && n > 65536;
            if (opt == NN_OPT_SGD && mu == 0.0f) {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
                for (size_t i = 0; i < n; i++) {
                    p[i] -= lr * (g[i] + wd * p[i]);
                    g[i] = 0.0f;
                }
            } else if (opt == NN_OPT_SGD) {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
                for (size_t i = 0; i < n; i++) {
                    float gi = g[i] + wd * p[i];
                    v1[i] = mu * v1[i] + gi;
                    p[i] -= lr * (nesterov ? gi + mu * v1[i] : v1[i]);
                    g[i] = 0.0f;
                }
            } else if (opt == NN_OPT_ADAM || opt == NN_OPT_ADAMW) {
                const float l2 = opt == NN_OPT_ADAMW ? 0.0f : wd;
                const float dec = opt == NN_OPT_ADAMW ? lr * wd : 0.0f;
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
                for (size_t i = 0; i < n; i++) {
                    float gi = g[i] + l2 * p[i];
                    v1[i] = b1 * v1[i] + (1.0f - b1) * gi;
                    v2[i] = b2 * v2[i] + (1.0f - b2) * gi * gi;
                    p[i] -= dec * p[i];
                    p[i] -= lr * (v1[i] / bc1) / (sqrtf(v2[i] / bc2) + eps);
                    g[i] = 0.0f;
                }
            } else {
#pragma omp parallel for simd num_threads(nt) schedule(static) if (par)
                for (size_t i = 0; i < n; i++) {
                    float gi = g[i] + wd * p[i];
                    v2[i] = b2 * v2[i] + (1.0f - b2) * gi * gi;
                    p[i] -= lr * gi / (sqrtf(v2[i]) + eps);
                    g[i] = 0.0f;
                }
            }
        }
    }
}

/* Switches the first layer's weights and optimiser moments between the model's layout (O,I)
 * and the transposed one (I,O) that nn_net's first_io uses; epochs run transposed, and the
 * model is back in its own layout whenever nn_trainer_epoch returns. */
static void set_first_io(nn_trainer *tr, int on)
{
    if (!tr->io_tmp || tr->net.first_io == on)
        return;
    const struct nn_layer *L = &tr->model->layers[0];
    const size_t O = L->out_size, I = L->in_size;
    float *arrays[] = {tr->model->params, tr->m1, tr->m2};
    for (size_t k = 0; k < sizeof arrays / sizeof *arrays; k++) {
        nn_transpose(tr->io_tmp, arrays[k] + L->w_off, on ? O : I, on ? I : O);
        memcpy(arrays[k] + L->w_off, tr->io_tmp, L->n_w * sizeof *tr->io_tmp);
    }
    tr->net.first_io = on;
    nn_model_weights_changed(tr->model);
}

/* Whether a step over the whole of ds can take the fused pass: the sparse copy of ds is made
 * on first use. If that fails (out of memory, say), training goes on layer by layer. */
static int fused_ready(nn_trainer *tr, const struct nn_dataset *ds)
{
    if (!tr->fused)
        return 0;
    if (tr->fb && tr->fb_images == ds->images && tr->fb_labels == ds->labels)
        return 1;
    nn_fullbatch_free(tr->fb);
    tr->fb = NULL;
    if (nn_fullbatch_new(&tr->fb, tr->model, ds) != NN_OK) {
        tr->fused = 0;
        return 0;
    }
    tr->fb_images = ds->images;
    tr->fb_labels = ds->labels;
    return 1;
}

/* Fills net input with samples perm[lo..lo+n) (augmented when configured) and their labels. */
static void assemble(nn_trainer *tr, const struct nn_dataset *ds, size_t lo, int n)
{
    const size_t in = (size_t)ds->rows * ds->cols;
    float *x = tr->net.acts[0];
    int aug = nn_augment_enabled(&tr->cfg);
#pragma omp parallel for num_threads(tr->cfg.threads)                                              \
    schedule(static) if (aug && tr->cfg.threads > 1)
    for (int i = 0; i < n; i++) {
        uint32_t idx = tr->perm[lo + (size_t)i];
        const uint8_t *src = ds->images + (size_t)idx * in;
        if (aug)
            nn_augment_image(x + (size_t)i * in, src, ds->rows, ds->cols, &tr->cfg,
                             nn_hash3(tr->cfg.seed, (uint64_t)tr->epoch, idx));
        else
            nn_bytes_to_float(x + (size_t)i * in, src, in);
        tr->ybuf[i] = ds->labels[idx];
    }
}

/* The gradient of the B samples from tr->pos, layer by layer in chunks, into tr->grads (plain
 * SGD may update the first layer's weights inside backward: see sgd_in_backward). */
static int batch_by_layers(nn_trainer *tr, const struct nn_dataset *ds, size_t B, float lr)
{
    const struct nn_model *m = tr->model;
    sgd_in_backward(tr, lr, B);
    for (size_t c = 0; c < B; c += (size_t)tr->chunk) {
        int cn = (int)(B - c < (size_t)tr->chunk ? B - c : (size_t)tr->chunk);
        const uint64_t seed = nn_hash3(tr->cfg.seed, (uint64_t)tr->step, c);
        const uint32_t *idx = tr->perm + tr->pos + c;
        const float *logits;
        if (tr->bytes) {
            for (int i = 0; i < cn; i++)
                tr->ybuf[i] = ds->labels[idx[i]];
            logits = nn_net_forward_u8(m, &tr->net, ds->images, idx, cn, seed);
            if (!logits)
                return NN_ENOMEM;
        } else {
            assemble(tr, ds, tr->pos + c, cn);
            logits = nn_net_forward(m, &tr->net, cn, seed);
        }
        tr->loss_sum += nn_softmax_xent(tr->net.probs, tr->net.grad_a, logits, tr->ybuf, cn,
                                        tr->classes, 1.0f / (float)B, tr->cfg.threads);
        for (int i = 0; i < cn; i++)
            tr->correct +=
                nn_argmax(tr->net.probs + (size_t)i * tr->classes, tr->classes) == tr->ybuf[i];
        if (tr->bytes) {
            if (nn_net_backward_u8(m, &tr->net, tr->net.grad_a, ds->images, idx, cn, tr->grads))
                return NN_ENOMEM;
        } else {
            nn_net_backward(m, &tr->net, tr->net.grad_a, cn, tr->grads);
        }
    }
    return NN_OK;
}

int nn_trainer_epoch(nn_trainer *tr, const struct nn_dataset *ds, nn_progress_fn cb, void *ctx,
                     struct nn_history_point *out)
{
    const struct nn_model *m = tr->model;
    if (!ds || ds->n != tr->n_train ||
        (size_t)ds->rows * ds->cols != (size_t)nn_model_input_size(m))
        return NN_EINVAL;
    if (nn_trainer_finished(tr))
        return NN_OK;

    /* The epoch's order is a function of (seed, epoch) alone, so an epoch resumed at tr->pos
     * sees exactly the samples an uninterrupted one would. */
    if (!fused_ready(tr, ds)) { /* the fused pass takes every sample in dataset order */
        struct nn_rng rng;
        nn_rng_seed(&rng, nn_hash3(tr->cfg.seed, (uint64_t)tr->epoch, 0x5348554646ULL));
        for (size_t i = 0; i < ds->n; i++)
            tr->perm[i] = (uint32_t)i;
        nn_rng_shuffle(&rng, tr->perm, ds->n);
    }
    if (tr->pos == 0) {
        tr->seen = tr->correct = 0;
        tr->loss_sum = 0.0;
        tr->last_lr = nn_trainer_lr(tr);
    }

    int stopped = 0, rc = NN_OK;
    set_first_io(tr, 1);
    while (tr->pos < ds->n && !nn_trainer_finished(tr) && !stopped) {
        size_t B =
            ds->n - tr->pos < (size_t)tr->cfg.batch ? ds->n - tr->pos : (size_t)tr->cfg.batch;
        float lr = tr->last_lr = nn_trainer_lr(tr);
        if (tr->fused) { /* B is the whole dataset */
            size_t ok;
            tr->loss_sum +=
                nn_fullbatch_grad(tr->fb, m, tr->grads, 1.0f / (float)B, &ok, tr->cfg.threads);
            tr->correct += ok;
        } else if ((rc = batch_by_layers(tr, ds, B, lr)) != NN_OK) {
            goto out;
        }
        optimizer_step(tr, lr);
        tr->net.sgd_w = NULL;
        tr->step++;
        tr->pos += B;
        tr->seen += B;
        if (cb) {
            struct nn_progress p = {
                .epoch = tr->epoch + 1,
                .step = tr->step,
                .seen = tr->seen,
                .total = ds->n,
                .lr = lr,
                .loss = tr->loss_sum / (double)tr->seen,
                .accuracy = (double)tr->correct / (double)tr->seen,
            };
            stopped = cb(ctx, &p);
        }
    }
    /* An epoch ends when its data is used up, or when the iteration budget ends the run. */
    int ended = tr->pos >= ds->n || nn_trainer_finished(tr);
    if (out) {
        memset(out, 0, sizeof *out);
        out->epoch = tr->epoch + (ended ? 1 : 0);
        out->step = tr->step;
        out->lr = tr->last_lr;
        out->train_loss = tr->seen ? (float)(tr->loss_sum / (double)tr->seen) : NAN;
        out->train_acc = tr->seen ? (float)((double)tr->correct / (double)tr->seen) : NAN;
        out->test_loss = NAN;
        out->test_acc = NAN;
    }
    if (ended) {
        tr->epoch++;
        tr->pos = 0;
    } else {
        rc = NN_EINTR;
    }
out:
    if (rc == NN_ENOMEM) /* a step given up half way: its gradients must not reach the next */
        memset(tr->grads, 0, m->n_params * sizeof *tr->grads);
    set_first_io(tr, 0);
    return rc;
}

int nn_trainer_in_epoch(const nn_trainer *tr) { return tr->pos > 0; }

/* ---------------------------------------------------------------------------------------- */
/* Checkpoints                                                                               */
/* ---------------------------------------------------------------------------------------- */

/*
 * Layout (all little-endian): "DIGITSCK", u32 version, u64 model length, the model file bytes
 * (nn_model_save_buffer: architecture, weights, metadata with the history so far), the training
 * config, the counters, u64 n_params, the two optimiser moment arrays as float32, and a CRC-32
 * of everything before it. Randomness needs no state: it is a function of (seed, epoch, step).
 */
#define CKPT_MAGIC "DIGITSCK"
#define CKPT_VERSION 3u /* 2: aug_clean, 3: aug_paper; older files still load */
/* A checkpoint holds 12 bytes per parameter (the weight in the model file, two optimiser
 * moments): 1 GiB is a model of about 89 million parameters; the shipped ones have < 0.6 M. */
#define CKPT_MAX_SIZE ((size_t)1 << 30)

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

static void put(struct wbuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(struct wbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}

static void put_u32(struct wbuf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 4);
}

static void put_f32(struct wbuf *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}

static void put_f64(struct wbuf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(b, v);
}

struct rbuf {
    const uint8_t *p;
    size_t len, at;
    int short_read;
};

static const uint8_t *get(struct rbuf *r, size_t n)
{
    if (r->short_read || n > r->len - r->at) {
        r->short_read = 1;
        return NULL;
    }
    r->at += n;
    return r->p + r->at - n;
}

static uint64_t get_u64(struct rbuf *r)
{
    const uint8_t *x = get(r, 8);
    uint64_t v = 0;
    for (int i = 0; x && i < 8; i++)
        v |= (uint64_t)x[i] << (8 * i);
    return v;
}

static uint32_t get_u32(struct rbuf *r)
{
    const uint8_t *x = get(r, 4);
    uint32_t v = 0;
    for (int i = 0; x && i < 4; i++)
        v |= (uint32_t)x[i] << (8 * i);
    return v;
}

static float get_f32(struct rbuf *r)
{
    uint32_t v = get_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static double get_f64(struct rbuf *r)
{
    uint64_t v = get_u64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static void put_config(struct wbuf *b, const struct nn_train_config *c)
{
    put_u32(b, (uint32_t)c->batch);
    put_u32(b, (uint32_t)c->epochs);
    put_u64(b, (uint64_t)c->iterations);
    put_f32(b, c->lr);
    put_u32(b, (uint32_t)c->optimizer);
    put_f32(b, c->momentum);
    put_u32(b, (uint32_t)c->nesterov);
    put_f32(b, c->beta1);
    put_f32(b, c->beta2);
    put_f32(b, c->eps);
    put_f32(b, c->weight_decay);
    put_u32(b, (uint32_t)c->schedule);
    put_f32(b, c->warmup_epochs);
    put_u32(b, (uint32_t)c->step_epochs);
    put_f32(b, c->step_gamma);
    put_u64(b, c->seed);
    put_u32(b, (uint32_t)c->threads);
    put_f32(b, c->aug_shift);
    put_f32(b, c->aug_rotate);
    put_f32(b, c->aug_scale);
    put_f32(b, c->aug_shear);
    put_f32(b, c->aug_elastic);
    put_f32(b, c->aug_thickness);
    put_f32(b, c->aug_clean);
    put_f32(b, c->aug_paper);
}

static void get_config(struct rbuf *r, struct nn_train_config *c, uint32_t version)
{
    c->batch = (int)get_u32(r);
    c->epochs = (int)get_u32(r);
    c->iterations = (int64_t)get_u64(r);
    c->lr = get_f32(r);
    c->optimizer = (enum nn_optimizer)get_u32(r);
    c->momentum = get_f32(r);
    c->nesterov = (int)get_u32(r);
    c->beta1 = get_f32(r);
    c->beta2 = get_f32(r);
    c->eps = get_f32(r);
    c->weight_decay = get_f32(r);
    c->schedule = (enum nn_schedule)get_u32(r);
    c->warmup_epochs = get_f32(r);
    c->step_epochs = (int)get_u32(r);
    c->step_gamma = get_f32(r);
    c->seed = get_u64(r);
    c->threads = (int)get_u32(r);
    c->aug_shift = get_f32(r);
    c->aug_rotate = get_f32(r);
    c->aug_scale = get_f32(r);
    c->aug_shear = get_f32(r);
    c->aug_elastic = get_f32(r);
    c->aug_thickness = get_f32(r);
    c->aug_clean = version >= 2 ? get_f32(r) : 0.0f;
    c->aug_paper = version >= 3 ? get_f32(r) : 0.0f;
}

int nn_trainer_save_checkpoint(const nn_trainer *tr, const char *path, char *err, size_t errlen)
{
    struct wbuf b = {0};
    void *model = NULL;
    size_t model_len = 0;
    int rc = nn_model_save_buffer(tr->model, &model, &model_len, err, errlen);
    if (rc)
        return rc;
    put(&b, CKPT_MAGIC, 8);
    put_u32(&b, CKPT_VERSION);
    put_u64(&b, model_len);
    put(&b, model, model_len);
    put_config(&b, &tr->cfg);
    put_u64(&b, tr->n_train);
    put_u64(&b, (uint64_t)tr->step);
    put_u32(&b, (uint32_t)tr->epoch);
    put_u64(&b, tr->pos);
    put_u64(&b, tr->seen);
    put_u64(&b, tr->correct);
    put_f64(&b, tr->loss_sum);
    put_f32(&b, tr->last_lr);
    put_u64(&b, tr->model->n_params);
    for (size_t i = 0; i < tr->model->n_params; i++)
        put_f32(&b, tr->m1[i]);
    for (size_t i = 0; i < tr->model->n_params; i++)
        put_f32(&b, tr->m2[i]);
    put_u32(&b, (uint32_t)crc32(0L, b.p, (uInt)b.len));
    if (b.oom)
        rc = nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory for the checkpoint", path);
    else
        rc = nn_atomic_write(path, b.p, b.len, err, errlen);
    free(model);
    free(b.p);
    return rc;
}

/*
 * Reads the checkpoint at path into *data (the caller frees it) and checks its magic, CRC-32 and
 * version; loads the model stored in it into *model, and leaves r just after it (r->len stops
 * before the CRC).
 */
static int read_checkpoint(const char *path, uint8_t **data, struct rbuf *r, uint32_t *version,
                           nn_model **model, char *err, size_t errlen)
{
    size_t len = 0;
    char merr[256] = "";
    int rc;

    *data = NULL, *model = NULL;
    if ((rc = nn_read_file(path, CKPT_MAX_SIZE, (void **)data, &len, err, errlen)))
        return rc;
    const uint8_t *p = *data;
    *r = (struct rbuf){p, len, 0, 0};
    if (len < 16 || memcmp(p, CKPT_MAGIC, 8))
        return nn_seterr(err, errlen, NN_EFORMAT, "%s: not a digits checkpoint (bad magic)", path);
    if ((uint32_t)crc32(0L, p, (uInt)(len - 4)) !=
        (uint32_t)(p[len - 4] | p[len - 3] << 8 | p[len - 2] << 16 | (uint32_t)p[len - 1] << 24))
        return nn_seterr(err, errlen, NN_ECHECKSUM, "%s: checksum mismatch (damaged checkpoint)",
                         path);
    r->len = len - 4;
    get(r, 8);
    *version = get_u32(r);
    if (*version < 1 || *version > CKPT_VERSION)
        return nn_seterr(err, errlen, NN_EVERSION, "%s: checkpoint version %u (this build reads %u)",
                         path, *version, CKPT_VERSION);
    uint64_t model_len = get_u64(r);
    const uint8_t *mb = model_len <= r->len - r->at ? get(r, (size_t)model_len) : NULL;
    if (!mb)
        return nn_seterr(err, errlen, NN_EFORMAT, "%s: truncated in the model", path);
    if ((rc = nn_model_load_buffer(model, mb, (size_t)model_len, merr, sizeof merr)))
        return nn_seterr(err, errlen, rc, "%s: model inside the checkpoint: %s", path, merr);
    return NN_OK;
}

int nn_checkpoint_load_model(nn_model **out, const char *path, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    struct rbuf r;
    uint32_t version;
    int rc = read_checkpoint(path, &data, &r, &version, out, err, errlen);
    if (rc) {
        nn_model_free(*out);
        *out = NULL;
    }
    free(data);
    return rc;
}

int nn_trainer_load_checkpoint(nn_trainer **out, nn_model **model_out, const char *path,
                               size_t train_size, char *err, size_t errlen)
{
    nn_model *model = NULL;
    nn_trainer *tr = NULL;
    struct nn_train_config cfg;
    uint8_t *data = NULL;
    struct rbuf r;
    uint32_t version = 0;
    int rc;

    *out = NULL;
    *model_out = NULL;
    if ((rc = read_checkpoint(path, &data, &r, &version, &model, err, errlen)))
        goto fail;
    get_config(&r, &cfg, version);
    uint64_t n_train = get_u64(&r);
    if (r.short_read || n_train != train_size) {
        rc = nn_seterr(err, errlen, NN_EINVAL,
                       "%s: checkpoint was made on %llu training images, this data has %zu", path,
                       (unsigned long long)n_train, train_size);
        goto fail;
    }
    if ((rc = nn_trainer_new(&tr, model, &cfg, train_size, err, errlen)))
        goto fail;
    tr->step = (int64_t)get_u64(&r);
    tr->epoch = (int)get_u32(&r);
    tr->pos = (size_t)get_u64(&r);
    tr->seen = (size_t)get_u64(&r);
    tr->correct = (size_t)get_u64(&r);
    tr->loss_sum = get_f64(&r);
    tr->last_lr = get_f32(&r);
    uint64_t np = get_u64(&r);
    if (r.short_read || np != model->n_params || r.len - r.at != 8 * np || tr->pos > train_size) {
        rc = nn_seterr(err, errlen, NN_EFORMAT, "%s: optimiser state does not match the model",
                       path);
        goto fail;
    }
    for (size_t i = 0; i < np; i++)
        tr->m1[i] = get_f32(&r);
    for (size_t i = 0; i < np; i++)
        tr->m2[i] = get_f32(&r);
    free(data);
    *out = tr;
    *model_out = model;
    return NN_OK;
fail:
    nn_trainer_free(tr);
    nn_model_free(model);
    free(data);
    return rc;
}

const struct nn_train_config *nn_trainer_config(const nn_trainer *tr) { return &tr->cfg; }
