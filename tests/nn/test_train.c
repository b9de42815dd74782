/*
 * test_train.c - training on a slice of MNIST: the loss falls and accuracy beats chance by
 * far; the same seed gives bit-identical weights, for any thread count on an MLP.
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mnist_dir(void)
{
    const char *d = getenv("MNIST_DIR");
    return d && *d ? d : "data/mnist";
}

/* Loads a split and keeps its first n images; fails the test loudly without MNIST. */
static void load_slice(struct nn_dataset *ds, const char *split, size_t n)
{
    char err[512] = "";
    int rc = nn_dataset_load_mnist(ds, mnist_dir(), split, err, sizeof err);
    cr_assert_eq(rc, NN_OK, "MNIST is needed (run `make data`): %s", err);
    if (ds->n > n)
        ds->n = n;
}

/* A ReLU MLP on 28x28 input with weights drawn from seed. */
static nn_model *new_mlp(const char *arch, uint64_t seed)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    int n;
    struct nn_rng rng;
    nn_model *m = NULL;
    cr_assert_eq(nn_arch_parse(l, NN_MAX_LAYERS, &n, arch, NN_LAYER_RELU, NULL, 0), NN_OK);
    nn_rng_seed(&rng, seed);
    cr_assert_eq(nn_model_new(&m, 1, 28, 28, l, n, &rng, NULL, 0), NN_OK);
    return m;
}

/* train_mlp's network and plain SGD trainer: dense:32, batch 32, lr 0.1, seed 99; for
 * epochs, or for that many steps when iterations > 0 */
static nn_trainer *mlp_trainer(nn_model **m, const struct nn_dataset *train, int threads,
                               int epochs, int64_t iterations)
{
    struct nn_train_config cfg;
    nn_trainer *tr = NULL;
    *m = new_mlp("dense:32,dense:10", 99);
    nn_train_config_default(&cfg);
    cfg.batch = 32;
    cfg.lr = 0.1f;
    cfg.seed = 99;
    cfg.threads = threads;
    cfg.epochs = epochs;
    cfg.iterations = iterations;
    cr_assert_eq(nn_trainer_new(&tr, *m, &cfg, train->n, NULL, 0), NN_OK);
    return tr;
}

static nn_model *train_mlp(const struct nn_dataset *train, int threads, int epochs,
                           struct nn_history_point *last)
{
    nn_model *m = NULL;
    nn_trainer *tr = mlp_trainer(&m, train, threads, epochs, 0);
    for (int e = 0; e < epochs; e++)
        cr_assert_eq(nn_trainer_epoch(tr, train, NULL, NULL, last), NN_OK);
    cr_expect(nn_trainer_finished(tr));
    nn_trainer_free(tr);
    return m;
}

Test(train, small_run_lowers_the_loss_and_beats_chance_by_far)
{
    struct nn_dataset train = {0}, test = {0};
    struct nn_eval before, after;
    struct nn_history_point last;
    load_slice(&train, "train", 3000);
    load_slice(&test, "test", 1000);

    nn_model *fresh = new_mlp("dense:32,dense:10", 99); /* train_mlp's starting point */
    cr_assert_eq(nn_evaluate(fresh, &test, 1, &before, NULL), NN_OK);

    nn_model *m = train_mlp(&train, 1, 3, &last);
    cr_assert_eq(nn_evaluate(m, &test, 2, &after, NULL), NN_OK);
    cr_expect_lt(after.loss, 0.5 * before.loss, "loss %.3f -> %.3f", before.loss, after.loss);
    cr_expect_gt(after.accuracy, 0.80, "accuracy %.3f after 3 epochs on 3000 images",
                 after.accuracy);
    cr_expect(last.train_loss < 1.0f && last.epoch == 3 && last.step == 3 * 94);
    nn_model_free(fresh);
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
}

Test(train, same_seed_gives_bit_identical_weights_for_any_thread_count)
{
    struct nn_dataset train = {0};
    load_slice(&train, "train", 2000);
    nn_model *a = train_mlp(&train, 1, 2, NULL);
    nn_model *b = train_mlp(&train, 1, 2, NULL);
    nn_model *c = train_mlp(&train, 2, 2, NULL);
    size_t np = nn_model_param_count(a);
    cr_expect_eq(memcmp(nn_model_params(a), nn_model_params(b), np * sizeof(float)), 0);
    cr_expect_eq(memcmp(nn_model_params(a), nn_model_params(c), np * sizeof(float)), 0,
                 "2 threads must give the same bits as 1");
    nn_model_free(a);
    nn_model_free(b);
    nn_model_free(c);
    nn_dataset_free(&train);
}

Test(train, rejects_a_bad_configuration_with_a_message)
{
    struct nn_layer_spec l[1] = {{.kind = NN_LAYER_DENSE, .units = 10}};
    struct nn_train_config cfg;
    nn_model *m = NULL;
    nn_trainer *tr = NULL;
    char err[256] = "";
    cr_assert_eq(nn_model_new(&m, 1, 28, 28, l, 1, NULL, NULL, 0), NN_OK);
    nn_train_config_default(&cfg);
    cfg.lr = -1.0f;
    cr_expect_eq(nn_trainer_new(&tr, m, &cfg, 100, err, sizeof err), NN_EINVAL);
    cr_expect(strstr(err, "learning rate") != NULL, "%s", err);
    cfg.lr = 0.1f;
    cfg.batch = 0;
    cr_expect_eq(nn_trainer_new(&tr, m, &cfg, 100, err, sizeof err), NN_EINVAL);
    cr_expect_null(tr);
    nn_model_free(m);
}

/* Ten blank 2x2 images labelled 0 and a 4-in, 10-out dense model: enough to drive the
 * trainer's bookkeeping (schedules, stopping) without data. */
static uint8_t tiny_images[10 * 4], tiny_labels[10];

static struct nn_dataset tiny_dataset(void)
{
    struct nn_dataset ds = {
        .images = tiny_images, .labels = tiny_labels, .n = 10, .rows = 2, .cols = 2};
    return ds;
}

static nn_model *tiny_model(void)
{
    struct nn_layer_spec l[1] = {{.kind = NN_LAYER_DENSE, .units = 10}};
    nn_model *m = NULL;
    cr_assert_eq(nn_model_new(&m, 1, 2, 2, l, 1, NULL, NULL, 0), NN_OK);
    return m;
}

Test(schedule, warmup_then_cosine_ends_near_zero_and_step_decays)
{
    struct nn_train_config cfg;
    struct nn_dataset ds = tiny_dataset();
    nn_model *m = tiny_model();
    nn_trainer *tr = NULL;
    nn_train_config_default(&cfg);
    cfg.batch = 1, cfg.epochs = 10, cfg.lr = 1.0f, cfg.schedule = NN_SCHED_COSINE;
    cfg.warmup_epochs = 1;
    cr_assert_eq(nn_trainer_new(&tr, m, &cfg, 10, NULL, 0), NN_OK);
    cr_expect_float_eq(nn_trainer_lr(tr), 1.0f / 25 + (1.0f - 1.0f / 25) / 10, 1e-6f);
    float prev = 0;
    for (int e = 0; e < 10; e++) {
        if (e == 1)
            cr_expect_float_eq(nn_trainer_lr(tr), 1.0f, 1e-6f, "peak right after warm-up");
        if (e > 1)
            cr_expect_lt(nn_trainer_lr(tr), prev, "cosine decreases");
        prev = nn_trainer_lr(tr);
        cr_assert_eq(nn_trainer_epoch(tr, &ds, NULL, NULL, NULL), NN_OK);
    }
    cr_expect_lt(prev, 0.05f);
    nn_trainer_free(tr);
    cfg.schedule = NN_SCHED_STEP, cfg.warmup_epochs = 0, cfg.step_epochs = 3, cfg.step_gamma = 0.5f;
    cr_assert_eq(nn_trainer_new(&tr, m, &cfg, 10, NULL, 0), NN_OK);
    for (int e = 0; e < 7; e++)
        cr_assert_eq(nn_trainer_epoch(tr, &ds, NULL, NULL, NULL), NN_OK);
    cr_expect_float_eq(nn_trainer_lr(tr), 0.25f, 1e-6f, "two decays after 6 epochs");
    nn_trainer_free(tr);
    nn_model_free(m);
}

static int stop_after_three(void *ctx, const struct nn_progress *p)
{
    (void)ctx;
    return p->step >= 3;
}

Test(train, progress_callback_can_stop_an_epoch)
{
    struct nn_train_config cfg;
    struct nn_dataset ds = tiny_dataset();
    nn_model *m = tiny_model();
    nn_trainer *tr = NULL;
    nn_train_config_default(&cfg);
    cfg.batch = 1;
    cr_assert_eq(nn_trainer_new(&tr, m, &cfg, 10, NULL, 0), NN_OK);
    cr_expect_eq(nn_trainer_epoch(tr, &ds, stop_after_three, NULL, NULL), NN_EINTR);
    cr_expect_eq(nn_trainer_steps(tr), 3);
    nn_trainer_free(tr);
    nn_model_free(m);
}

/* One step on one batch of all n images moves the weights by -lr times the gradient of
 * nn_model_loss_grad, however the trainer runs the first layer inside the epoch (kept
 * transposed, zero pixels skipped; plain SGD even applied inside backward; or the whole
 * network fused, for dense:10,dense:10): the model comes back in its own layout. Momentum's
 * first step is the same, through the optimiser. */
static void check_one_step(const char *arch, float momentum)
{
    struct nn_dataset train = {0};
    load_slice(&train, "train", 64);
    const int n = (int)train.n, in = 784;
    nn_model *m = new_mlp(arch, 5);
    nn_trainer *tr = NULL;
    const size_t np = nn_model_param_count(m);
    float *x = malloc((size_t)n * in * sizeof *x), *g = malloc(np * sizeof *g);
    float *before = malloc(np * sizeof *before);
    cr_assert(x && g && before);
    for (size_t i = 0; i < (size_t)n * in; i++)
        x[i] = (float)train.images[i] / 255.0f;
    double loss;
    cr_assert_eq(nn_model_loss_grad(m, x, train.labels, n, g, &loss), NN_OK);
    memcpy(before, nn_model_params(m), np * sizeof *before);

    struct nn_train_config cfg;
    nn_train_config_default(&cfg);
    cfg.batch = n;
    cfg.lr = 0.1f;
    cfg.iterations = 1;
    cfg.momentum = momentum;
    cfg.threads = 2;
    cr_assert_eq(nn_trainer_new(&tr, m, &cfg, train.n, NULL, 0), NN_OK);
    cr_assert_eq(nn_trainer_epoch(tr, &train, NULL, NULL, NULL), NN_OK);
    const float *after = nn_model_params(m);
    size_t moved = 0;
    for (size_t i = 0; i < np; i++) {
        float want = before[i] - 0.1f * g[i];
        cr_assert_float_eq(after[i], want, 1e-5f * (1.0f + fabsf(want)),
                           "%s, param %zu: %.7g, want %.7g (momentum %g)", arch, i,
                           (double)after[i], (double)want, (double)momentum);
        moved += after[i] != before[i];
    }
    cr_expect_gt(moved, np / 4, "only %zu of %zu parameters moved", moved, np);
    nn_trainer_free(tr);
    nn_model_free(m);
    free(x), free(g), free(before);
    nn_dataset_free(&train);
}

Test(train, one_sgd_step_is_minus_lr_times_the_gradient)
{
    check_one_step("dense:40,dense:10", 0.0f);
}

Test(train, first_momentum_step_is_minus_lr_times_the_gradient)
{
    check_one_step("dense:40,dense:10", 0.5f);
}

Test(train, one_fused_full_batch_step_is_minus_lr_times_the_gradient)
{
    check_one_step("dense:10,dense:10", 0.0f);
}

static int stop_every_seven(void *ctx, const struct nn_progress *p)
{
    (void)ctx;
    return p->step % 7 == 0;
}

/* An epoch stopped by the callback and continued ends with the weights of one never stopped
 * (the trainer switches the first layer's layout back and forth at every stop), and between
 * the calls the model is in its own layout: at the first stop, bit for bit the model of a run
 * of 7 steps, and it can be evaluated. */
Test(train, an_epoch_stopped_and_continued_gives_the_same_bits)
{
    struct nn_dataset train = {0};
    load_slice(&train, "train", 1000);
    nn_model *whole = train_mlp(&train, 2, 1, NULL), *m = NULL, *seven = NULL;
    nn_trainer *short_run = mlp_trainer(&seven, &train, 2, 1, 7);
    cr_assert_eq(nn_trainer_epoch(short_run, &train, NULL, NULL, NULL), NN_OK);
    cr_assert(nn_trainer_finished(short_run));
    nn_trainer *tr = mlp_trainer(&m, &train, 2, 1, 0);
    int rc, stops = 0;
    while ((rc = nn_trainer_epoch(tr, &train, stop_every_seven, NULL, NULL)) == NN_EINTR) {
        if (stops++ == 0)
            cr_assert_eq(memcmp(nn_model_params(m), nn_model_params(seven),
                                nn_model_param_count(m) * sizeof(float)),
                         0, "at the first stop the model differs from a 7-step run's");
        struct nn_eval ev;
        cr_assert_eq(nn_evaluate(m, &train, 1, &ev, NULL), NN_OK);
    }
    cr_assert_eq(rc, NN_OK);
    cr_expect_geq(stops, 4);
    cr_expect_eq(memcmp(nn_model_params(m), nn_model_params(whole),
                        nn_model_param_count(m) * sizeof(float)),
                 0, "stopped %d times: different weights", stops);
    nn_trainer_free(tr);
    nn_trainer_free(short_run);
    nn_model_free(m);
    nn_model_free(seven);
    nn_model_free(whole);
    nn_dataset_free(&train);
}

/* --resume reads its checkpoint through the same loader as models: a FIFO is refused at once. */
Test(train, a_checkpoint_that_is_a_fifo_is_refused_without_waiting, .timeout = 10)
{
    char dir[] = "/tmp/digits-test-train-XXXXXX", path[128], err[512] = "", want[192];
    nn_trainer *tr = (nn_trainer *)1;
    nn_model *m = (nn_model *)1;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    int rc = nn_trainer_load_checkpoint(&tr, &m, path, 1000, err, sizeof err);
    unlink(path);
    rmdir(dir);
    cr_assert_eq(rc, NN_EIO);
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    cr_assert_str_eq(err, want);
    cr_assert_null(tr);
    cr_assert_null(m);
}
