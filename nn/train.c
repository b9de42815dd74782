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
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nn_trainer {
    nn_model *model;
    struct nn_train_config cfg;
    struct nn_net net;
    int chunk, classes;
    size_t n_train, steps_per_epoch;
    int64_t step, total_steps;
    int epoch;                /* epochs completed */
    float *grads, *m1, *m2;   /* n_params each; m1/m2 optimiser moments */
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
    if (cfg->momentum < 0.0f || cfg->momentum >= 1.0f || cfg->beta1 < 0.0f ||
        cfg->beta1 >= 1.0f || cfg->beta2 < 0.0f || cfg->beta2 >= 1.0f || cfg->weight_decay < 0.0f)
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
    tr->total_steps = cfg->iterations > 0 ? cfg->iterations
                                          : (int64_t)cfg->epochs * (int64_t)tr->steps_per_epoch;
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
    free(tr->grads);
    free(tr->m1);
    free(tr->m2);
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
    default:
        return (float)lr;
    }
}

/* One optimiser update of params from grads (already averaged over the batch). Weight decay
 * applies to weights, not biases. Element-wise, so threads cannot change the result. */
static void optimizer_step(nn_trainer *tr, float lr)
{
    const struct nn_train_config *c = &tr->cfg;
    struct nn_model *m = tr->model;
    const int64_t t = tr->step + 1;
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps, mu = c->momentum;
    const float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    for (int li = 0; li < m->n_layers; li++) {
        const struct nn_layer *L = &m->layers[li];
        for (int part = 0; part < 2; part++) {
            size_t off = part ? L->b_off : L->w_off, n = part ? L->n_b : L->n_w;
            float wd = part ? 0.0f : c->weight_decay;
            float *p = m->params + off, *g = tr->grads + off, *v1 = tr->m1 + off,
                  *v2 = tr->m2 + off;
            if (n == 0)
                continue;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (c->threads > 1 && n > 65536)
            for (size_t i = 0; i < n; i++) {
                float gi = g[i];
                if (c->optimizer != NN_OPT_ADAMW)
                    gi += wd * p[i];
                switch (c->optimizer) {
                case NN_OPT_SGD:
                    if (mu > 0.0f) {
                        v1[i] = mu * v1[i] + gi;
                        gi = c->nesterov ? gi + mu * v1[i] : v1[i];
                    }
                    p[i] -= lr * gi;
                    break;
                case NN_OPT_ADAM:
                case NN_OPT_ADAMW:
                    v1[i] = b1 * v1[i] + (1.0f - b1) * gi;
                    v2[i] = b2 * v2[i] + (1.0f - b2) * gi * gi;
                    if (c->optimizer == NN_OPT_ADAMW)
                        p[i] -= lr * wd * p[i];
                    p[i] -= lr * (v1[i] / bc1) / (sqrtf(v2[i] / bc2) + eps);
                    break;
                case NN_OPT_RMSPROP:
                    v2[i] = b2 * v2[i] + (1.0f - b2) * gi * gi;
                    p[i] -= lr * gi / (sqrtf(v2[i]) + eps);
                    break;
                }
            }
        }
    }
}

/* Fills net input with samples perm[lo..lo+n) (augmented when configured) and their labels. */
static void assemble(nn_trainer *tr, const struct nn_dataset *ds, size_t lo, int n)
{
    const size_t in = (size_t)ds->rows * ds->cols;
    float *x = tr->net.acts[0];
    int aug = nn_augment_enabled(&tr->cfg);
#pragma omp parallel for num_threads(tr->cfg.threads) schedule(static) if (aug && tr->cfg.threads > 1)
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

int nn_trainer_epoch(nn_trainer *tr, const struct nn_dataset *ds, nn_progress_fn cb, void *ctx,
                     struct nn_history_point *out)
{
    const struct nn_model *m = tr->model;
    if (!ds || ds->n != tr->n_train || (size_t)ds->rows * ds->cols != (size_t)nn_model_input_size(m))
        return NN_EINVAL;
    if (nn_trainer_finished(tr))
        return NN_OK;

    /* The epoch's order is a function of (seed, epoch) alone. */
    struct nn_rng rng;
    nn_rng_seed(&rng, nn_hash3(tr->cfg.seed, (uint64_t)tr->epoch, 0x5348554646ULL));
    for (size_t i = 0; i < ds->n; i++)
        tr->perm[i] = (uint32_t)i;
    nn_rng_shuffle(&rng, tr->perm, ds->n);

    double loss_sum = 0.0;
    size_t correct = 0, seen = 0;
    float lr = nn_trainer_lr(tr);
    int stopped = 0;
    for (size_t pos = 0; pos < ds->n && !nn_trainer_finished(tr) && !stopped;) {
        size_t B = ds->n - pos < (size_t)tr->cfg.batch ? ds->n - pos : (size_t)tr->cfg.batch;
        lr = nn_trainer_lr(tr);
        memset(tr->grads, 0, m->n_params * sizeof *tr->grads);
        for (size_t c = 0; c < B; c += (size_t)tr->chunk) {
            int cn = (int)(B - c < (size_t)tr->chunk ? B - c : (size_t)tr->chunk);
            assemble(tr, ds, pos + c, cn);
            const float *logits =
                nn_net_forward(m, &tr->net, cn, nn_hash3(tr->cfg.seed, (uint64_t)tr->step, c));
            loss_sum += nn_softmax_xent(tr->net.probs, tr->net.grad_a, logits, tr->ybuf, cn,
                                        tr->classes, 1.0f / (float)B);
            for (int i = 0; i < cn; i++)
                correct += nn_argmax(tr->net.probs + (size_t)i * tr->classes, tr->classes) ==
                           tr->ybuf[i];
            nn_net_backward(m, &tr->net, tr->net.grad_a, cn, tr->grads);
        }
        optimizer_step(tr, lr);
        tr->step++;
        pos += B;
        seen += B;
        if (cb) {
            struct nn_progress p = {
                .epoch = tr->epoch + 1, .step = tr->step, .seen = seen, .total = ds->n,
                .lr = lr, .loss = loss_sum / (double)seen,
                .accuracy = (double)correct / (double)seen,
            };
            stopped = cb(ctx, &p);
        }
    }
    if (seen == ds->n || !stopped)
        tr->epoch++;
    if (out) {
        memset(out, 0, sizeof *out);
        out->epoch = tr->epoch;
        out->step = tr->step;
        out->lr = lr;
        out->train_loss = seen ? (float)(loss_sum / (double)seen) : NAN;
        out->train_acc = seen ? (float)((double)correct / (double)seen) : NAN;
        out->test_loss = NAN;
        out->test_acc = NAN;
    }
    return stopped ? NN_EINTR : NN_OK;
}
