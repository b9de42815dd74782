/*
 * test_fullbatch.c - the fused full-batch gradient (nn/fullbatch.c) against the layer-by-layer
 * one (nn_model_loss_grad on the same images as floats), on datasets that cross its sample
 * ranges and blocks, with blank images, for the shapes it takes; bit-identity across thread
 * counts; and what it refuses.
 */
#include "nn/fullbatch.h"
#include "nn/gemm_isa.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int have_avx512(void) { return nn_sgemm_isa_best() == NN_GEMM_AVX512; }

/* dense(in -> hidden) [relu] dense(hidden -> classes) on 1 x side x side images */
static nn_model *two_layers(int side, int hidden, int classes, int relu, uint64_t seed)
{
    struct nn_layer_spec l[3] = {{.kind = NN_LAYER_DENSE, .units = hidden}};
    int n = 1;
    if (relu)
        l[n++] = (struct nn_layer_spec){.kind = NN_LAYER_RELU};
    l[n++] = (struct nn_layer_spec){.kind = NN_LAYER_DENSE, .units = classes};
    struct nn_rng rng;
    nn_rng_seed(&rng, seed);
    nn_model *m = NULL;
    char err[256] = "";
    cr_assert_eq(nn_model_new(&m, 1, side, side, l, n, &rng, err, sizeof err), NN_OK, "%s", err);
    /* nonzero biases, so that they are part of what is checked */
    for (int i = 0; i < m->n_layers; i++)
        for (size_t j = 0; j < m->layers[i].n_b; j++)
            m->params[m->layers[i].b_off + j] = 0.05f * (float)((int)(j % 5) - 2);
    return m;
}

/* n random images, about a third of the pixels inked, every 97th image blank */
static struct nn_dataset random_bytes(size_t n, int side, int classes, uint64_t seed)
{
    struct nn_dataset ds = {.n = n, .rows = side, .cols = side};
    const size_t in = (size_t)side * side;
    ds.images = malloc(n * in);
    ds.labels = malloc(n);
    cr_assert(ds.images && ds.labels);
    struct nn_rng rng;
    nn_rng_seed(&rng, seed);
    for (size_t s = 0; s < n; s++) {
        for (size_t p = 0; p < in; p++) {
            uint32_t r = (uint32_t)(nn_rng_next(&rng) >> 32);
            ds.images[s * in + p] = s % 97 == 5 || r % 3 ? 0 : (uint8_t)(1 + (r >> 8) % 255);
        }
        ds.labels[s] = (uint8_t)nn_rng_below(&rng, (uint32_t)classes);
    }
    return ds;
}

static void free_dataset(struct nn_dataset *ds)
{
    free(ds->images);
    free(ds->labels);
}

static size_t argmax_hits(const nn_model *m, const struct nn_dataset *ds, const float *x)
{
    const int C = nn_model_classes(m);
    float *probs = malloc(ds->n * (size_t)C * sizeof *probs);
    nn_workspace *ws = NULL;
    cr_assert(probs);
    cr_assert_eq(nn_workspace_new(&ws, m, 64), NN_OK);
    cr_assert_eq(nn_model_predict_batch(m, x, (int)ds->n, probs, ws), NN_OK);
    size_t hits = 0;
    for (size_t s = 0; s < ds->n; s++)
        hits += nn_argmax(probs + s * (size_t)C, C) == ds->labels[s];
    nn_workspace_free(ws);
    free(probs);
    return hits;
}

static void check_against_layers(size_t n, int side, int hidden, int classes, int relu)
{
    nn_model *m = two_layers(side, hidden, classes, relu, 11);
    if (!have_avx512()) { /* then the trainer goes layer by layer */
        cr_assert_not(nn_fullbatch_supported(m));
        nn_model_free(m);
        return;
    }
    struct nn_dataset ds = random_bytes(n, side, classes, 12);
    const size_t in = (size_t)side * side, np = m->n_params;
    float *x = malloc(n * in * sizeof *x), *ref = malloc(np * sizeof *ref);
    float *got = calloc(np, sizeof *got);
    cr_assert(x && ref && got);
    nn_bytes_to_float(x, ds.images, n * in);
    double ref_loss;
    cr_assert_eq(nn_model_loss_grad(m, x, ds.labels, (int)n, ref, &ref_loss), NN_OK);

    nn_fullbatch *fb = NULL;
    cr_assert(nn_fullbatch_supported(m));
    cr_assert_eq(nn_fullbatch_new(&fb, m, &ds), NN_OK);
    size_t correct = 0;
    double loss = nn_fullbatch_grad(fb, m, got, 1.0f / (float)n, &correct, 2) / (double)n;

    cr_expect(fabs(loss - ref_loss) <= 1e-5 * fabs(ref_loss), "loss %.9g, layer by layer %.9g",
              loss, ref_loss);
    cr_expect_eq(correct, argmax_hits(m, &ds, x));
    float most = 0.0f;
    for (size_t i = 0; i < np; i++)
        most = fmaxf(most, fabsf(ref[i]));
    cr_assert_gt(most, 0.0f);
    size_t bad = 0;
    for (size_t i = 0; i < np; i++)
        if (!(fabsf(got[i] - ref[i]) <= 2e-5f * most)) {
            if (bad++ < 5)
                cr_log_error("param %zu: %.9g, layer by layer %.9g", i, got[i], ref[i]);
        }
    cr_expect_eq(bad, 0, "%zu of %zu gradients differ (largest %.3g)", bad, np, most);

    nn_fullbatch_free(fb);
    free(x);
    free(ref);
    free(got);
    free_dataset(&ds);
    nn_model_free(m);
}

Test(fullbatch, gradient_matches_layer_by_layer_for_the_seed000_shape)
{
    /* 9000 samples: 32 ranges of 281 or 282, each two blocks of samples */
    check_against_layers(9000, 12, 10, 10, 1);
}

Test(fullbatch, gradient_matches_layer_by_layer_at_sixteen_hidden_units)
{
    check_against_layers(700, 9, 16, 10, 1);
}

Test(fullbatch, gradient_matches_layer_by_layer_without_an_activation)
{
    /* fewer samples than ranges: some ranges are empty */
    check_against_layers(20, 5, 3, 7, 0);
}

Test(fullbatch, result_does_not_depend_on_the_thread_count)
{
    nn_model *m = two_layers(10, 10, 10, 1, 3);
    struct nn_dataset ds = random_bytes(5000, 10, 10, 4);
    nn_fullbatch *fb = NULL;
    if (!have_avx512()) { /* then the trainer goes layer by layer */
        cr_assert_eq(nn_fullbatch_new(&fb, m, &ds), NN_EINVAL);
        free_dataset(&ds);
        nn_model_free(m);
        return;
    }
    cr_assert_eq(nn_fullbatch_new(&fb, m, &ds), NN_OK);
    float *g1 = calloc(m->n_params, sizeof *g1), *g = calloc(m->n_params, sizeof *g);
    cr_assert(g1 && g);
    size_t c1, c;
    double l1 = nn_fullbatch_grad(fb, m, g1, 1e-3f, &c1, 1);
    for (int threads = 2; threads <= 5; threads += 3) {
        memset(g, 0, m->n_params * sizeof *g);
        double l = nn_fullbatch_grad(fb, m, g, 1e-3f, &c, threads);
        cr_expect_eq(memcmp(g, g1, m->n_params * sizeof *g), 0, "threads %d", threads);
        cr_expect_eq(l, l1, "threads %d", threads);
        cr_expect_eq(c, c1, "threads %d", threads);
    }
    /* and it adds to grads rather than overwriting them */
    nn_fullbatch_grad(fb, m, g, 1e-3f, &c, 2);
    for (size_t i = 0; i < m->n_params; i++)
        cr_assert_eq(g[i], g1[i] + g1[i], "param %zu", i);
    nn_fullbatch_free(fb);
    free(g1);
    free(g);
    free_dataset(&ds);
    nn_model_free(m);
}

Test(fullbatch, takes_only_two_dense_layers_of_at_most_sixteen_units)
{
    struct {
        const char *arch;
        enum nn_layer_kind act;
        int ok;
    } cases[] = {
        {"dense:10,dense:10", NN_LAYER_RELU, 1},
        {"dense:16,dense:2", NN_LAYER_RELU, 1},
        {"dense:17,dense:10", NN_LAYER_RELU, 0},
        {"dense:10,dense:10", NN_LAYER_SIGMOID, 0},
        {"dense:10,dense:10,dense:10", NN_LAYER_RELU, 0},
        {"dense:10,dropout:0.5,dense:10", NN_LAYER_RELU, 0},
        {"conv:4:3,dense:10", NN_LAYER_RELU, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct nn_layer_spec l[NN_MAX_LAYERS];
        int n = 0;
        char err[256] = "";
        cr_assert_eq(
            nn_arch_parse(l, NN_MAX_LAYERS, &n, cases[i].arch, cases[i].act, err, sizeof err),
            NN_OK, "%s", err);
        struct nn_rng rng;
        nn_rng_seed(&rng, 1);
        nn_model *m = NULL;
        cr_assert_eq(nn_model_new(&m, 1, 8, 8, l, n, &rng, err, sizeof err), NN_OK, "%s", err);
        cr_expect_eq(nn_fullbatch_supported(m), cases[i].ok && have_avx512(), "%s (%d)",
                     cases[i].arch, (int)cases[i].act);
        nn_model_free(m);
    }
}

Test(fullbatch, refuses_labels_the_model_has_no_output_for)
{
    nn_model *m = two_layers(4, 5, 7, 1, 1);
    struct nn_dataset ds = random_bytes(50, 4, 7, 2);
    nn_fullbatch *fb = NULL;
    if (have_avx512()) {
        cr_assert_eq(nn_fullbatch_new(&fb, m, &ds), NN_OK);
        nn_fullbatch_free(fb);
        fb = NULL;
    }
    ds.labels[31] = 7;
    cr_expect_eq(nn_fullbatch_new(&fb, m, &ds), NN_EINVAL);
    cr_expect_null(fb);
    ds.labels[31] = 6;
    ds.rows = 5; /* 25 pixels for a 16-input model */
    cr_expect_eq(nn_fullbatch_new(&fb, m, &ds), NN_EINVAL);
    free_dataset(&ds);
    nn_model_free(m);
}

Test(fullbatch, the_trainer_takes_the_fused_gradient_for_a_full_batch)
{
    /* plain SGD, batch = the whole set, no augmentation: the step is exactly
     * params - lr * nn_fullbatch_grad's gradient, so this fails if the trainer goes layer by
     * layer instead (other rounding) */
    nn_model *m = two_layers(12, 10, 10, 1, 21);
    struct nn_dataset ds = random_bytes(3000, 12, 10, 22);
    const size_t np = m->n_params;
    if (!have_avx512()) {
        cr_assert_not(nn_fullbatch_supported(m));
        free_dataset(&ds);
        nn_model_free(m);
        return;
    }
    nn_fullbatch *fb = NULL;
    float *g = calloc(np, sizeof *g), *before = malloc(np * sizeof *before);
    cr_assert(g && before);
    cr_assert_eq(nn_fullbatch_new(&fb, m, &ds), NN_OK);
    size_t correct;
    nn_fullbatch_grad(fb, m, g, 1.0f / (float)ds.n, &correct, 2);
    memcpy(before, m->params, np * sizeof *before);

    struct nn_train_config cfg;
    nn_train_config_default(&cfg);
    cfg.batch = (int)ds.n;
    cfg.lr = 0.1f;
    cfg.iterations = 1;
    cfg.threads = 2;
    nn_trainer *tr = NULL;
    cr_assert_eq(nn_trainer_new(&tr, m, &cfg, ds.n, NULL, 0), NN_OK);
    cr_assert_eq(nn_trainer_epoch(tr, &ds, NULL, NULL, NULL), NN_OK);
    size_t moved = 0;
    for (size_t i = 0; i < np; i++) {
        const float want = before[i] - 0.1f * g[i];
        cr_assert_eq(m->params[i], want, "param %zu: %.9g, fused step %.9g", i,
                     (double)m->params[i], (double)want);
        moved += m->params[i] != before[i];
    }
    cr_expect_gt(moved, np / 2, "only %zu of %zu parameters moved", moved, np);
    nn_trainer_free(tr);
    nn_fullbatch_free(fb);
    free(g);
    free(before);
    free_dataset(&ds);
    nn_model_free(m);
}
