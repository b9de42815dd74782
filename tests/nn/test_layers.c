/*
 * test_layers.c - forward values and finite-difference gradient checks for every layer,
 * activation and the fused softmax cross-entropy, through the public nn_model_loss_grad.
 */
#include "nn/nn.h"
#include "nn/nn_impl.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Builds a model from a spec on a c x h x w input with seeded weights (and random biases so
 * bias gradients are exercised off zero). */
static nn_model *build(const char *spec, int c, int h, int w, enum nn_layer_kind act)
{
    struct nn_layer_spec layers[NN_MAX_LAYERS];
    int n;
    char err[256] = "";
    struct nn_rng rng;
    nn_model *m = NULL;
    cr_assert_eq(nn_arch_parse(layers, NN_MAX_LAYERS, &n, spec, act, err, sizeof err), NN_OK,
                 "%s: %s", spec, err);
    nn_rng_seed(&rng, 7);
    cr_assert_eq(nn_model_new(&m, c, h, w, layers, n, &rng, err, sizeof err), NN_OK, "%s", err);
    float *p = nn_model_params(m);
    for (size_t i = 0; i < nn_model_param_count(m); i++)
        p[i] += 0.05f * nn_rng_normal(&rng);
    return m;
}

/*
 * Compares the analytic gradient with central differences in double-checked float: for every
 * parameter (or a strided sample of them) |analytic - numeric| <= atol + rtol * |numeric|.
 */
static void check_gradients(nn_model *m, int n, size_t stride)
{
    const int in = nn_model_input_size(m);
    const size_t np = nn_model_param_count(m);
    float *x = malloc(sizeof(float) * (size_t)n * in);
    uint8_t *y = malloc((size_t)n);
    float *g = malloc(sizeof(float) * np), *g2 = malloc(sizeof(float) * np);
    struct nn_rng rng;
    double loss, lp, lm;
    nn_rng_seed(&rng, 11);
    for (int i = 0; i < n * in; i++)
        x[i] = nn_rng_uniform(&rng);
    for (int i = 0; i < n; i++)
        y[i] = (uint8_t)nn_rng_below(&rng, (uint32_t)nn_model_classes(m));
    cr_assert_eq(nn_model_loss_grad(m, x, y, n, g, &loss), NN_OK);
    cr_assert(isfinite(loss) && loss > 0.0);
    float *p = nn_model_params(m);
    size_t checked = 0, bad = 0;
    for (size_t i = 0; i < np; i += stride) {
        const float h = 1e-3f;
        float keep = p[i];
        p[i] = keep + h;
        nn_model_loss_grad(m, x, y, n, g2, &lp);
        p[i] = keep - h;
        nn_model_loss_grad(m, x, y, n, g2, &lm);
        p[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double diff = fabs(num - g[i]);
        if (diff > 2e-3 + 2e-2 * fabs(num)) {
            if (bad < 5)
                cr_log_error("param %zu: analytic %.6g numeric %.6g", i, (double)g[i], num);
            bad++;
        }
        checked++;
    }
    cr_expect_gt(checked, 10);
    cr_expect_eq(bad, 0, "%zu of %zu gradients disagree with finite differences", bad, checked);
    free(x), free(y), free(g), free(g2);
}

Test(gradients, dense_relu_matches_finite_differences)
{
    nn_model *m = build("dense:7,dense:5", 1, 3, 4, NN_LAYER_RELU);
    check_gradients(m, 4, 1);
    nn_model_free(m);
}

Test(gradients, dense_sigmoid_matches_finite_differences)
{
    nn_model *m = build("dense:6,dense:4", 1, 2, 5, NN_LAYER_SIGMOID);
    check_gradients(m, 3, 1);
    nn_model_free(m);
}

Test(gradients, dense_tanh_two_hidden_layers_match_finite_differences)
{
    nn_model *m = build("dense:6,dense:5,dense:3", 1, 2, 4, NN_LAYER_TANH);
    check_gradients(m, 3, 1);
    nn_model_free(m);
}

Test(gradients, conv_pool_dense_matches_finite_differences)
{
    nn_model *m = build("conv:3:3,pool:2,dense:4", 2, 6, 6, NN_LAYER_TANH);
    check_gradients(m, 2, 1);
    nn_model_free(m);
}

Test(gradients, strided_unpadded_conv_matches_finite_differences)
{
    nn_model *m = build("conv:2:3:2:0,sigmoid,flatten,dense:3", 1, 7, 7, NN_LAYER_RELU);
    check_gradients(m, 2, 1);
    nn_model_free(m);
}

Test(gradients, dropout_is_identity_outside_training)
{
    nn_model *a = build("dense:6,dropout:0.5,dense:4", 1, 2, 4, NN_LAYER_TANH);
    check_gradients(a, 3, 1);
    nn_model_free(a);
}

Test(softmax, is_stable_for_huge_logits)
{
    float logits[2][3] = {{1000.0f, -1000.0f, 0.0f}, {-1000.0f, -1000.0f, -999.0f}};
    float probs[2][3], d[2][3];
    uint8_t y[2] = {0, 2};
    double loss = nn_softmax_xent(&probs[0][0], &d[0][0], &logits[0][0], y, 2, 3, 1.0f, 1);
    cr_assert(isfinite(loss));
    cr_expect_float_eq(probs[0][0], 1.0f, 1e-6f);
    cr_expect_float_eq(probs[0][1], 0.0f, 1e-6f);
    /* row 2: softmax(0,0,1) */
    double e = exp(1.0), s = 2.0 + e;
    cr_expect_float_eq(probs[1][2], (float)(e / s), 1e-6f);
    cr_expect_float_eq(loss, -log(e / s), 1e-5);
    /* wrong confident label: loss is the logit gap, not inf */
    uint8_t wrong[1] = {1};
    double l2 = nn_softmax_xent(&probs[0][0], NULL, &logits[0][0], wrong, 1, 3, 1.0f, 1);
    cr_expect_float_eq(l2, 2000.0, 1e-3);
    cr_expect_float_eq(d[0][0], 0.0f, 1e-6f);
    cr_expect_float_eq(d[1][2], (float)(e / s) - 1.0f, 1e-6f);
}

/* Large batches split their rows over threads; the probabilities, gradients and the summed
 * loss must be the same bits as with one thread. */
Test(softmax, threads_give_the_same_bits_as_one)
{
    enum { N = 3000, O = 10 };
    float *z = malloc(sizeof(float) * N * O), *p1 = malloc(sizeof(float) * N * O);
    float *p2 = malloc(sizeof(float) * N * O), *d1 = malloc(sizeof(float) * N * O);
    float *d2 = malloc(sizeof(float) * N * O);
    uint8_t *y = malloc(N);
    cr_assert(z && p1 && p2 && d1 && d2 && y);
    struct nn_rng rng;
    nn_rng_seed(&rng, 11);
    for (int i = 0; i < N * O; i++)
        z[i] = 5.0f * nn_rng_normal(&rng);
    for (int n = 0; n < N; n++)
        y[n] = (uint8_t)(nn_rng_next(&rng) % O);
    double l1 = nn_softmax_xent(p1, d1, z, y, N, O, 1.0f / N, 1);
    double l2 = nn_softmax_xent(p2, d2, z, y, N, O, 1.0f / N, 2);
    cr_expect(l1 == l2, "loss %.17g with 1 thread, %.17g with 2", l1, l2);
    cr_expect_eq(memcmp(p1, p2, sizeof(float) * N * O), 0, "probabilities differ");
    cr_expect_eq(memcmp(d1, d2, sizeof(float) * N * O), 0, "gradients differ");
    cr_expect_gt(l1, 0.0);
    free(z), free(p1), free(p2), free(d1), free(d2), free(y);
}

Test(forward, tiny_network_matches_hand_computed_values)
{
    /* input (1,1,2) -> dense:2 -> relu -> dense:2; weights set by hand */
    struct nn_layer_spec l[3] = {{.kind = NN_LAYER_DENSE, .units = 2},
                                 {.kind = NN_LAYER_RELU},
                                 {.kind = NN_LAYER_DENSE, .units = 2}};
    nn_model *m = NULL;
    nn_workspace *ws = NULL;
    cr_assert_eq(nn_model_new(&m, 1, 1, 2, l, 3, NULL, NULL, 0), NN_OK);
    cr_assert_eq(nn_model_param_count(m), 2 * 2 + 2 + 2 * 2 + 2);
    /* W1 = [[1,2],[-3,1]], b1 = [0.5,-1]; W2 = [[1,-1],[2,0.5]], b2 = [0,1] */
    float p[] = {1, 2, -3, 1, 0.5f, -1, 1, -1, 2, 0.5f, 0, 1};
    memcpy(nn_model_params(m), p, sizeof p);
    float x[2] = {1.0f, 0.5f}, probs[2];
    /* h = relu([1+1+0.5, -3+0.5-1]) = [2.5, 0]; z = [2.5, 5+0+1] = [2.5, 6] */
    cr_assert_eq(nn_workspace_new(&ws, m, 1), NN_OK);
    cr_assert_eq(nn_model_predict(m, x, probs, ws), NN_OK);
    double e = exp(2.5 - 6.0);
    cr_expect_float_eq(probs[0], (float)(e / (1.0 + e)), 1e-6f);
    cr_expect_float_eq(probs[1], (float)(1.0 / (1.0 + e)), 1e-6f);
    cr_expect_eq(nn_argmax(probs, 2), 1);
    nn_workspace_free(ws);
    nn_model_free(m);
}

Test(forward, batch_prediction_equals_single_predictions)
{
    nn_model *m = build("conv:4:3,pool:2,dense:8,dense:10", 1, 8, 8, NN_LAYER_RELU);
    nn_workspace *one = NULL, *three = NULL;
    float x[5 * 64], pb[5 * 10], ps[10];
    struct nn_rng rng;
    nn_rng_seed(&rng, 3);
    for (int i = 0; i < 5 * 64; i++)
        x[i] = nn_rng_uniform(&rng);
    cr_assert_eq(nn_workspace_new(&one, m, 1), NN_OK);
    cr_assert_eq(nn_workspace_new(&three, m, 3), NN_OK);
    cr_assert_eq(nn_model_predict_batch(m, x, 5, pb, three), NN_OK); /* chunks of 3 + 2 */
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(nn_model_predict(m, x + i * 64, ps, one), NN_OK);
        float sum = 0;
        for (int k = 0; k < 10; k++) {
            cr_expect_float_eq(pb[i * 10 + k], ps[k], 1e-6f);
            sum += ps[k];
        }
        cr_expect_float_eq(sum, 1.0f, 1e-5f);
    }
    nn_workspace_free(one);
    nn_workspace_free(three);
    nn_model_free(m);
}

Test(init, he_for_relu_and_glorot_for_sigmoid_have_the_right_spread)
{
    struct nn_layer_spec l[3] = {{.kind = NN_LAYER_DENSE, .units = 400},
                                 {.kind = NN_LAYER_RELU},
                                 {.kind = NN_LAYER_DENSE, .units = 10}};
    struct nn_rng rng;
    nn_model *m = NULL;
    nn_rng_seed(&rng, 5);
    cr_assert_eq(nn_model_new(&m, 1, 28, 28, l, 3, &rng, NULL, 0), NN_OK);
    const float *p = nn_model_params_const(m);
    double ss = 0;
    size_t nw = 400 * 784;
    for (size_t i = 0; i < nw; i++)
        ss += (double)p[i] * p[i];
    cr_expect_float_eq(sqrt(ss / nw), sqrt(2.0 / 784), 0.02 * sqrt(2.0 / 784));
    for (size_t i = nw; i < nw + 400; i++)
        cr_expect_eq(p[i], 0.0f, "biases start at zero");
    /* output layer: Glorot uniform, variance 2/(fan_in+fan_out) */
    ss = 0;
    for (size_t i = nw + 400; i < nw + 400 + 4000; i++)
        ss += (double)p[i] * p[i];
    cr_expect_float_eq(sqrt(ss / 4000), sqrt(2.0 / 410), 0.05 * sqrt(2.0 / 410));
    nn_model_free(m);
}

/* Single images through dense layers skip their zero inputs (transposed weights cached in the
 * model, in half precision): pixels in the first layer, ReLU zeros in the second. A batch of
 * more than a few goes through the dense product in single precision. With weights that are
 * halves already, both must agree to the last bits, for sparse and dense inputs, and the cache
 * must follow writes to the weights. */
static void expect_single_matches_batch(nn_model *m, const float *x, int n, const char *what)
{
    enum { I = 784, CLASSES = 10 };
    nn_workspace *one = NULL, *many = NULL;
    float *pb = malloc((size_t)n * CLASSES * sizeof *pb), ps[CLASSES];
    cr_assert_not_null(pb);
    cr_assert_eq(nn_workspace_new(&one, m, 1), NN_OK);
    cr_assert_eq(nn_workspace_new(&many, m, n), NN_OK);
    cr_assert_eq(nn_model_predict_batch(m, x, n, pb, many), NN_OK);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(nn_model_predict(m, x + (size_t)i * I, ps, one), NN_OK);
        for (int k = 0; k < CLASSES; k++)
            cr_assert_float_eq(ps[k], pb[i * CLASSES + k], 2e-6f, "%s: image %d class %d", what, i,
                               k);
    }
    nn_workspace_free(one);
    nn_workspace_free(many);
    free(pb);
}

/* Rounds every weight of m to the nearest half, as the single-image path reads them. */
static void round_weights_to_half(nn_model *m)
{
    float *p = nn_model_params(m);
    for (int i = 0; i < m->n_layers; i++)
        for (size_t k = 0; k < m->layers[i].n_w; k++)
            p[m->layers[i].w_off + k] =
                nn_float_from_half(nn_half_from_float(p[m->layers[i].w_off + k]));
}

Test(forward, single_image_sparse_path_matches_the_batched_product)
{
    enum { I = 784, N = 8 };
    nn_model *m = build("dense:300,dense:64,dense:10", 1, 28, 28, NN_LAYER_RELU);
    round_weights_to_half(m);
    float *x = calloc((size_t)N * I, sizeof *x);
    struct nn_rng rng;
    nn_rng_seed(&rng, 21);
    cr_assert_not_null(x);
    for (int i = 0; i < N * I; i++) /* ~20% ink like a digit; image 0 stays blank */
        x[i] = i >= I && nn_rng_uniform(&rng) < 0.2f ? nn_rng_uniform(&rng) : 0.0f;
    expect_single_matches_batch(m, x, N, "sparse input");
    for (int i = 0; i < N * I; i++) /* every pixel set: the dense fallback */
        x[i] = 0.05f + 0.9f * nn_rng_uniform(&rng);
    expect_single_matches_batch(m, x, N, "dense input");

    /* the cached transposed weights were built above; a write must not leave them stale */
    float *p = nn_model_params(m);
    for (int i = 0; i < 300 * I; i++)
        p[i] = -p[i];
    for (int i = 0; i < N * I; i++)
        x[i] = nn_rng_uniform(&rng) < 0.2f ? 1.0f : 0.0f;
    expect_single_matches_batch(m, x, N, "after negating the weights");
    free(x);
    nn_model_free(m);
}

/* The trainer's first layer kept transposed (nn_dense_forward_io / _backward_io) against the
 * plain layer on the same weights: mostly-zero input (the zero-skipping path) and dense input
 * (nn_sgemm), a scale of 1 and a fused SGD step (dwt is the weights), one and two threads
 * giving the same bits. */
static void check_dense_io(int N, int I, int O, double zeros)
{
    struct nn_rng rng;
    nn_rng_seed(&rng, (uint64_t)(N * 1000 + I * 10 + O));
    const size_t nw = (size_t)I * O;
    float *x = calloc((size_t)N * I, sizeof *x), *w = malloc(nw * sizeof *w);
    float *wt = malloc(nw * sizeof *wt), *b = malloc((size_t)O * sizeof *b);
    float *dout = malloc((size_t)N * O * sizeof *dout);
    float *y = malloc((size_t)N * O * sizeof *y), *y_io = malloc((size_t)N * O * sizeof *y);
    float *dw = calloc(nw, sizeof *dw), *dwt[2], *db = calloc((size_t)O, sizeof *db);
    float *db_io = calloc((size_t)O, sizeof *db), *y_two = malloc((size_t)N * O * sizeof *y);
    struct nn_sparse_rows rows;
    cr_assert_eq(nn_sparse_rows_alloc(&rows, (size_t)N, (size_t)I), NN_OK);
    for (size_t i = 0; i < (size_t)N * I; i++)
        x[i] = nn_rng_uniform(&rng) < zeros ? 0.0f : nn_rng_uniform(&rng);
    for (int o = 0; o < O; o++) {
        b[o] = nn_rng_normal(&rng);
        for (int i = 0; i < I; i++)
            wt[(size_t)i * O + o] = w[(size_t)o * I + i] = nn_rng_normal(&rng);
    }
    for (size_t i = 0; i < (size_t)N * O; i++)
        dout[i] = nn_rng_normal(&rng);

    nn_dense_forward(y, x, w, b, N, I, O, 1);
    nn_dense_backward(NULL, dw, db, dout, x, w, N, I, O, 1);
    for (int threads = 1; threads <= 2; threads++) {
        dwt[threads - 1] = malloc(nw * sizeof(float));
        memcpy(dwt[threads - 1], wt, nw * sizeof(float)); /* a fused step: start from wt */
        memset(db_io, 0, (size_t)O * sizeof *db_io);
        nn_dense_forward_io(threads == 1 ? y_io : y_two, x, wt, b, N, I, O, &rows, threads);
        cr_expect_eq(rows.dense, zeros < 0.5, "dense %d with %.0f%% zeros", rows.dense,
                     100 * zeros);
        nn_dense_backward_io(dwt[threads - 1], -0.5f, db_io, dout, x, N, I, O, &rows,
                             threads);
        for (int o = 0; o < O; o++)
            cr_assert_float_eq(db_io[o], db[o], 1e-5f * (1 + fabsf(db[o])), "db[%d]", o);
    }
    for (size_t i = 0; i < (size_t)N * O; i++)
        cr_assert_float_eq(y_io[i], y[i], 1e-4f * (1 + fabsf(y[i])), "y[%zu] (N=%d I=%d O=%d)", i,
                           N, I, O);
    cr_expect_eq(memcmp(y_io, y_two, (size_t)N * O * sizeof *y), 0, "forward: 2 threads differ");
    cr_expect_eq(memcmp(dwt[0], dwt[1], nw * sizeof(float)), 0, "backward: 2 threads differ");
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) {
            float want = wt[(size_t)i * O + o] - 0.5f * dw[(size_t)o * I + i];
            cr_assert_float_eq(dwt[0][(size_t)i * O + o], want, 1e-4f * (1 + fabsf(want)),
                               "w[%d][%d] after the step (N=%d I=%d O=%d)", o, i, N, I, O);
        }
    free(x), free(w), free(wt), free(b), free(dout), free(y), free(y_io), free(y_two);
    free(dw), free(dwt[0]), free(dwt[1]), free(db), free(db_io);
    nn_sparse_rows_free(&rows);
}

Test(dense_io, transposed_layer_matches_the_plain_one_sparse_and_dense)
{
    check_dense_io(7, 50, 40, 0.8);
    check_dense_io(7, 50, 40, 0.1);
    check_dense_io(33, 784, 256, 0.8);
    check_dense_io(1, 17, 10, 0.9);
    check_dense_io(5, 100, 300, 0.7);
}
