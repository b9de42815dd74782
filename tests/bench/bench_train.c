/*
 * bench_train.c - training and inference speed of libnn on MNIST, one JSON line per figure.
 *
 * Everything goes through the public API (nn.h): nn_trainer_new / nn_trainer_epoch with a
 * progress callback that stops the epoch, nn_evaluate, nn_model_predict. Figures, each with its
 * target from issue 5 and "met":
 *   train_epoch     seed004 preset (784-256-10 sigmoid, SGD batch 32): median of 3 epochs
 *   train_fullbatch seed000 preset (784-10-10 ReLU, full-batch GD): 500 iterations
 *   time_to_acc     an MLP to 98.0% and a CNN to 99.0% test accuracy: seconds of training only
 *                   (the clock stops while the test set is evaluated every `eval_every` steps)
 *   predict         single-image latency, median over 10k in-process calls, one workspace;
 *                   also for models/mnist-{mlp,cnn}.model when run from the source tree
 *   peak_rss        getrusage(RUSAGE_SELF).ru_maxrss at the end
 *
 * Environment: MNIST_DIR (default data/mnist), DIGITS_BENCH_QUICK=1 (short runs: fewer epochs,
 * iterations and calls; targets scaled where the work is), DIGITS_BENCH_THREADS (default 2),
 * DIGITS_BENCH_FILTER=word (only figures whose name contains word); for trying other CNN
 * races: DIGITS_BENCH_CNN_ARCH, _LR, _BATCH, _EPOCHS, _SEED.
 */
#include "nn/nn.h"
#include "tests/bench/bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct bench {
    struct nn_dataset train, test;
    int threads, quick;
    const char *filter;
};

static int wanted(const struct bench *b, const char *name)
{
    return !b->filter || strstr(name, b->filter);
}

static void die(const char *what, int rc, const char *err)
{
    fprintf(stderr, "bench_train: %s: %s%s%s\n", what, nn_strerror(rc), err && *err ? ": " : "",
            err ? err : "");
    exit(1);
}

static nn_model *build(const char *arch, enum nn_layer_kind act, uint64_t seed)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    int n = 0;
    char err[256] = "";
    int rc = nn_arch_parse(l, NN_MAX_LAYERS, &n, arch, act, err, sizeof err);
    if (rc)
        die(arch, rc, err);
    struct nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_model *m = NULL;
    rc = nn_model_new(&m, 1, 28, 28, l, n, &rng, err, sizeof err);
    if (rc)
        die(arch, rc, err);
    return m;
}

static nn_trainer *trainer(nn_model *m, const struct nn_train_config *cfg, size_t n)
{
    char err[256] = "";
    nn_trainer *tr = NULL;
    int rc = nn_trainer_new(&tr, m, cfg, n, err, sizeof err);
    if (rc)
        die("trainer", rc, err);
    return tr;
}

/* ---------------------------------------------------------------------------------------- */
/* Epoch time and full-batch time                                                           */
/* ---------------------------------------------------------------------------------------- */

static void bench_seed004(const struct bench *b)
{
    nn_model *m = build("dense:256,dense:10", NN_LAYER_SIGMOID, 4);
    struct nn_train_config cfg;
    nn_train_config_default(&cfg);
    cfg.batch = 32;
    cfg.lr = 0.1f;
    cfg.epochs = 3;
    cfg.seed = 4;
    cfg.threads = b->threads;
    nn_trainer *tr = trainer(m, &cfg, b->train.n);
    int runs = b->quick ? 1 : 3;
    double t[3];
    struct nn_history_point h;
    for (int e = 0; e < runs; e++) {
        double t0 = bench_now();
        int rc = nn_trainer_epoch(tr, &b->train, NULL, NULL, &h);
        t[e] = bench_now() - t0;
        if (rc)
            die("seed004 epoch", rc, NULL);
    }
    double s = bench_median(t, runs);
    printf("{\"bench\":\"train_epoch\",\"preset\":\"seed004\",\"arch\":\"784-256-10 sigmoid\","
           "\"batch\":32,\"threads\":%d,\"epochs\":%d,\"seconds\":%.3f,\"samples_per_s\":%.0f,"
           "\"train_acc\":%.4f,\"target_s\":0.30,\"met\":%s}\n",
           b->threads, runs, s, (double)b->train.n / s, h.train_acc, s <= 0.30 ? "true" : "false");
    fflush(stdout);
    nn_trainer_free(tr);
    nn_model_free(m);
}

static void bench_seed000(const struct bench *b)
{
    nn_model *m = build("dense:10,dense:10", NN_LAYER_RELU, 0);
    struct nn_train_config cfg;
    nn_train_config_default(&cfg);
    int iters = b->quick ? 50 : 500;
    cfg.batch = (int)b->train.n;
    cfg.lr = 0.1f;
    cfg.iterations = iters;
    cfg.seed = 0;
    cfg.threads = b->threads;
    nn_trainer *tr = trainer(m, &cfg, b->train.n);
    struct nn_history_point h;
    double t0 = bench_now();
    while (!nn_trainer_finished(tr)) {
        int rc = nn_trainer_epoch(tr, &b->train, NULL, NULL, &h);
        if (rc)
            die("seed000 epoch", rc, NULL);
    }
    double s = bench_now() - t0, target = 4.0 * iters / 500.0;
    struct nn_eval ev;
    nn_evaluate(m, &b->test, b->threads, &ev, NULL);
    printf("{\"bench\":\"train_fullbatch\",\"preset\":\"seed000\",\"arch\":\"784-10-10 relu\","
           "\"threads\":%d,\"iterations\":%d,\"seconds\":%.3f,\"samples_per_s\":%.0f,"
           "\"test_acc\":%.4f,\"target_s\":%.2f,\"met\":%s}\n",
           b->threads, iters, s, (double)b->train.n * iters / s, ev.accuracy, target,
           s <= target ? "true" : "false");
    fflush(stdout);
    nn_trainer_free(tr);
    nn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Time to accuracy                                                                          */
/* ---------------------------------------------------------------------------------------- */

struct race {
    const struct bench *b;
    nn_model *model;
    int eval_every;
    double goal, train_s, lap, best;
    int64_t steps, scored_at;
    int reached;
};

/* Called after every step: every eval_every steps it stops the epoch, so that the caller can
 * score the model (a callback must not touch it). */
static int race_step(void *ctx, const struct nn_progress *p)
{
    struct race *r = ctx;
    r->steps = p->step;
    return p->step % r->eval_every == 0;
}

/* The clock stops while the test set is scored. */
static void race_eval(struct race *r)
{
    r->train_s += bench_now() - r->lap;
    struct nn_eval ev;
    if (nn_evaluate(r->model, &r->b->test, r->b->threads, &ev, NULL) == NN_OK &&
        ev.accuracy > r->best)
        r->best = ev.accuracy;
    r->reached = r->best >= r->goal;
    r->scored_at = r->steps;
    r->lap = bench_now();
}

static void race(const struct bench *b, const char *name, const char *arch,
                 const struct nn_train_config *cfg, int eval_every, double goal, double target)
{
    nn_model *m = build(arch, NN_LAYER_RELU, cfg->seed);
    nn_trainer *tr = trainer(m, cfg, b->train.n);
    struct race r = {.b = b, .model = m, .eval_every = eval_every, .goal = goal};
    double budget = b->quick ? target : 6.0 * target; /* give up, reporting met: false */
    r.lap = bench_now();
    while (!r.reached && !nn_trainer_finished(tr) && r.train_s + (bench_now() - r.lap) < budget) {
        struct nn_history_point h;
        int rc = nn_trainer_epoch(tr, &b->train, race_step, &r, &h);
        if (rc && rc != NN_EINTR)
            die(name, rc, NULL);
        /* a stop asked for at an epoch's last step comes back as NN_OK, and the last step of
         * the run is scored whatever its number */
        if (r.steps != r.scored_at && (r.steps % eval_every == 0 || nn_trainer_finished(tr)))
            race_eval(&r);
    }
    if (!r.reached)
        r.train_s += bench_now() - r.lap;
    printf("{\"bench\":\"time_to_acc\",\"model\":\"%s\",\"arch\":\"%s\",\"batch\":%d,"
           "\"threads\":%d,\"goal\":%.3f,\"best_acc\":%.4f,\"steps\":%lld,\"seconds\":%.2f,"
           "\"target_s\":%.1f,\"met\":%s}\n",
           name, arch, cfg->batch, b->threads, goal, r.best, (long long)r.steps, r.train_s, target,
           r.reached && r.train_s <= target ? "true" : "false");
    fflush(stdout);
    nn_trainer_free(tr);
    nn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Inference latency                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Median single-image predict time of m over MNIST test digits; prints one figure. */
static void latency_of(const struct bench *b, nn_model *m, const char *name, const char *arch,
                       double target_us)
{
    nn_workspace *ws = NULL;
    if (nn_workspace_new(&ws, m, 1))
        die("workspace", NN_ENOMEM, NULL);
    int calls = b->quick ? 1000 : 10000;
    float *x = malloc(NN_MNIST_PIXELS * sizeof *x);
    double *t = malloc((size_t)calls * sizeof *t);
    float probs[NN_OUTPUTS_MAX];
    if (!x || !t)
        die("latency", NN_ENOMEM, NULL);
    int sink = 0;
    for (int i = 0; i < calls + 100; i++) {
        const uint8_t *img = b->test.images + (size_t)(i % (int)b->test.n) * NN_MNIST_PIXELS;
        for (int k = 0; k < NN_MNIST_PIXELS; k++)
            x[k] = img[k] / 255.0f;
        double t0 = bench_now();
        nn_model_predict(m, x, probs, ws);
        double dt = bench_now() - t0;
        sink += nn_argmax(probs, nn_model_classes(m));
        if (i >= 100)
            t[i - 100] = dt; /* the first 100 warm the caches */
    }
    double us = 1e6 * bench_median(t, calls);
    if (target_us > 0)
        printf("{\"bench\":\"predict\",\"model\":\"%s\",\"arch\":\"%s\",\"calls\":%d,"
               "\"median_us\":%.2f,\"target_us\":%.0f,\"met\":%s,\"checksum\":%d}\n",
               name, arch, calls, us, target_us, us <= target_us ? "true" : "false", sink);
    else
        printf("{\"bench\":\"predict\",\"model\":\"%s\",\"calls\":%d,\"median_us\":%.2f,"
               "\"checksum\":%d}\n",
               name, calls, us, sink);
    fflush(stdout);
    free(x);
    free(t);
    nn_workspace_free(ws);
}

static void latency(const struct bench *b, const char *name, const char *arch, double target_us)
{
    nn_model *m = build(arch, NN_LAYER_RELU, 7);
    latency_of(b, m, name, arch, target_us);
    nn_model_free(m);
}

/* The shipped models, when run from the source tree (the README quotes these). */
static void latency_shipped(const struct bench *b, const char *path)
{
    nn_model *m = NULL;
    char err[256] = "";
    if (nn_model_load(&m, path, err, sizeof err) != NN_OK) {
        fprintf(stderr, "bench_train: %s: %s (skipped)\n", path, err);
        return;
    }
    latency_of(b, m, path, NULL, 0);
    nn_model_free(m);
}

/* Batch inference throughput: nn_evaluate over the 10k test set. */
static void eval_speed(const struct bench *b, const char *name, const char *arch)
{
    nn_model *m = build(arch, NN_LAYER_RELU, 7);
    double t[3];
    struct nn_eval ev;
    for (int i = 0; i < 3; i++) {
        double t0 = bench_now();
        nn_evaluate(m, &b->test, b->threads, &ev, NULL);
        t[i] = bench_now() - t0;
    }
    double s = bench_median(t, 3);
    printf("{\"bench\":\"evaluate\",\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,"
           "\"images\":%zu,\"seconds\":%.4f,\"images_per_s\":%.0f}\n",
           name, arch, b->threads, b->test.n, s, (double)b->test.n / s);
    fflush(stdout);
    nn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */

#define MLP_ARCH "dense:256,dense:10"
/* LeNet-5-sized (a little wider, 'same' padding): 6 MFLOP per image forward */
#define CNN_ARCH "conv:16:5,pool:2,conv:32:5,pool:2,dense:128,dense:10"
/* The same unpadded, for the race to 99%: 2.2 MFLOP per image forward, and no more steps to
 * get there than CNN_ARCH at twice the time per step; LeNet-5's own sizes
 * (conv:6:5,pool:2,conv:16:5:1:0,pool:2,dense:120,dense:84) needed 1200 steps. */
#define CNN_RACE_ARCH "conv:16:5:1:0,pool:2,conv:32:5:1:0,pool:2,dense:128,dense:10"

int main(void)
{
    struct bench b = {.threads = 2};
    const char *dir = getenv("MNIST_DIR"), *q = getenv("DIGITS_BENCH_QUICK");
    const char *th = getenv("DIGITS_BENCH_THREADS");
    if (!dir || !*dir)
        dir = "data/mnist";
    b.quick = q && *q && strcmp(q, "0") != 0;
    if (th && atoi(th) > 0)
        b.threads = atoi(th);
    b.filter = getenv("DIGITS_BENCH_FILTER");
    if (b.filter && !*b.filter)
        b.filter = NULL;
    char err[512] = "";
    int rc = nn_dataset_load_mnist(&b.train, dir, "train", err, sizeof err);
    if (!rc)
        rc = nn_dataset_load_mnist(&b.test, dir, "test", err, sizeof err);
    if (rc)
        die(dir, rc, err);

    if (wanted(&b, "train_epoch"))
        bench_seed004(&b);
    if (wanted(&b, "train_fullbatch"))
        bench_seed000(&b);
    if (wanted(&b, "train_")) {
        /* the MLP trainers above: the dataset stays bytes (train + test: 55 MB), no float copy
         * of it (that alone would be 188 MB) */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double mib = ru.ru_maxrss / 1024.0;
        printf("{\"bench\":\"peak_rss\",\"program\":\"bench_train\",\"after\":\"seed004+seed000\","
               "\"mib\":%.1f,\"target\":\"dataset kept as bytes (55 MB), no float copy\","
               "\"target_mib\":120,\"met\":%s}\n",
               mib, mib <= 120 ? "true" : "false");
        fflush(stdout);
    }
    if (wanted(&b, "predict")) {
        latency(&b, "mlp", MLP_ARCH, 10.0);
        latency(&b, "cnn", CNN_ARCH, 100.0);
        latency_shipped(&b, "models/mnist-mlp.model");
        latency_shipped(&b, "models/mnist-cnn.model");
    }
    if (wanted(&b, "evaluate")) {
        eval_speed(&b, "mlp", MLP_ARCH);
        eval_speed(&b, "cnn", CNN_ARCH);
    }
    if (wanted(&b, "time_to_acc_mlp")) {
        struct nn_train_config c;
        nn_train_config_default(&c);
        /* tuned for time to 98%: seeds 1-4 get there after 1000-1300 steps (2.1-2.8 epochs);
         * the schedule is planned for 4 epochs so the rate is still high when it matters */
        c.batch = 128;
        c.lr = 0.005f;
        c.optimizer = NN_OPT_ADAM;
        c.schedule = NN_SCHED_COSINE;
        c.epochs = 4;
        c.seed = 1;
        c.threads = b.threads;
        race(&b, "time_to_acc_mlp", MLP_ARCH, &c, 50, 0.98, 3.0);
    }
    if (wanted(&b, "time_to_acc_cnn")) {
        struct nn_train_config c;
        nn_train_config_default(&c);
        c.batch = 128;
        /* Steps to 99% at seeds 1, 2, 3: 550 (99.00% exactly), 650, 650; 700, 650, 650
         * before the first layer trained without columns (other rounding in its weight
         * gradient). Three epochs at lr 0.004 without warm-up: 750, 650, 850; lr 0.002: 1200
         * (seed 1); batch 64 at 0.002: 1450. */
        c.lr = 0.008f;
        c.optimizer = NN_OPT_ADAMW;
        c.weight_decay = 0.01f;
        c.schedule = NN_SCHED_COSINE;
        c.warmup_epochs = 0.2f;
        c.epochs = 2;
        c.seed = 1;
        c.threads = b.threads;
        const char *arch = getenv("DIGITS_BENCH_CNN_ARCH"), *lr = getenv("DIGITS_BENCH_CNN_LR");
        if (lr && atof(lr) > 0)
            c.lr = (float)atof(lr);
        const char *bs = getenv("DIGITS_BENCH_CNN_BATCH"), *ep = getenv("DIGITS_BENCH_CNN_EPOCHS");
        if (bs && atoi(bs) > 0)
            c.batch = atoi(bs);
        if (ep && atoi(ep) > 0)
            c.epochs = atoi(ep);
        const char *seed = getenv("DIGITS_BENCH_CNN_SEED");
        if (seed && atoi(seed) > 0)
            c.seed = (uint64_t)atoi(seed);
        race(&b, "time_to_acc_cnn", arch && *arch ? arch : CNN_RACE_ARCH, &c, 50, 0.99, 10.0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"bench\":\"peak_rss\",\"program\":\"bench_train\",\"after\":\"all\",\"mib\":%.1f}\n",
           ru.ru_maxrss / 1024.0);
    nn_dataset_free(&b.train);
    nn_dataset_free(&b.test);
    return 0;
}
