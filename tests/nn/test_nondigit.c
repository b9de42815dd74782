/*
 * test_nondigit.c - "not a digit" (issue 18): the generated non-digits (nn/nondigit.c), the
 * answer of an 11-class model (nn_model_answer, nn/reject.c) and the rejection threshold in
 * the model file's optional REJT section (nn/model_file.c, models/FORMAT.md).
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>

#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* The generator                                                                            */
/* ---------------------------------------------------------------------------------------- */

Test(nondigit, the_same_seed_and_index_give_the_same_bytes_and_others_differ)
{
    uint8_t a[NN_MNIST_PIXELS], b[NN_MNIST_PIXELS], c[NN_MNIST_PIXELS];
    int differ = 0;
    for (uint64_t i = 0; i < 40; i++) {
        cr_assert_eq(nn_nondigit_image(a, 5, i), NN_OK);
        cr_assert_eq(nn_nondigit_image(b, 5, i), NN_OK);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "image %llu is not deterministic",
                     (unsigned long long)i);
        cr_assert_eq(nn_nondigit_image(c, 6, i), NN_OK);
        differ += memcmp(a, c, sizeof a) != 0;
    }
    cr_assert_geq(differ, 38, "another seed gave the same image %d times of 40", 40 - differ);
}

Test(nondigit, fill_is_the_images_one_by_one)
{
    enum { N = 12 };
    uint8_t *all = malloc(N * NN_MNIST_PIXELS), one[NN_MNIST_PIXELS];
    cr_assert_not_null(all);
    cr_assert_eq(nn_nondigit_fill(all, N, 99), NN_OK);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(nn_nondigit_image(one, 99, (uint64_t)i), NN_OK);
        cr_assert_eq(memcmp(all + (size_t)i * NN_MNIST_PIXELS, one, sizeof one), 0, "image %d", i);
    }
    free(all);
}

/* Every image has ink, fits the frame as an MNIST digit does (nothing on the outer 2 px on
 * at least most images) and the images are not all alike. */
Test(nondigit, images_have_ink_in_an_mnist_sized_box_and_vary)
{
    enum { N = 300 };
    uint8_t img[NN_MNIST_PIXELS];
    int framed = 0;
    double mean_ink = 0.0, sq = 0.0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(nn_nondigit_image(img, 11, (uint64_t)i), NN_OK);
        int ink = 0, edge = 0;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int on = img[y * 28 + x] > 63;
                ink += on;
                edge += on && (x < 2 || y < 2 || x > 25 || y > 25);
            }
        cr_assert_geq(ink, 5, "image %d has %d ink pixels", i, ink);
        framed += edge == 0;
        mean_ink += ink, sq += (double)ink * ink;
    }
    mean_ink /= N;
    double sd = sqrt(sq / N - mean_ink * mean_ink);
    cr_assert_geq(framed, N * 8 / 10, "only %d of %d images inside the 24x24 centre", framed, N);
    cr_assert_gt(sd, 10.0, "ink per image hardly varies (sd %.1f px)", sd);
}

/* ---------------------------------------------------------------------------------------- */
/* nn_model_answer and the threshold                                                        */
/* ---------------------------------------------------------------------------------------- */

static nn_model *dense_model(int classes)
{
    const struct nn_layer_spec spec[] = {{.kind = NN_LAYER_DENSE, .units = classes}};
    nn_model *m = NULL;
    char err[256] = "";
    struct nn_rng rng;
    nn_rng_seed(&rng, 3);
    cr_assert_eq(nn_model_new(&m, 1, 28, 28, spec, 1, &rng, err, sizeof err), NN_OK, "%s", err);
    return m;
}

Test(answer, a_ten_class_model_answers_its_argmax_with_its_probabilities_as_they_are)
{
    nn_model *m = dense_model(10);
    float probs[10] = {0.01f, 0.02f, 0.03f, 0.5f, 0.04f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f};
    float p10[10], reject = -1.0f;
    cr_assert_eq(nn_model_reject_threshold(m), 0.0f);
    cr_assert_eq(nn_model_answer(m, probs, p10, &reject), 3);
    cr_assert_eq(memcmp(p10, probs, sizeof p10), 0, "a 10-class answer must be bit for bit");
    cr_assert_eq(reject, 0.0f);
    cr_assert_eq(nn_model_set_reject_threshold(m, 0.5f), NN_EINVAL,
                 "a threshold needs an 11th class");
    nn_model_free(m);
}

Test(answer, an_eleven_class_model_renormalises_the_digits_and_rejects_from_its_threshold)
{
    nn_model *m = dense_model(11);
    float probs[11] = {0.02f, 0.02f, 0.02f, 0.02f, 0.02f, 0.2f, 0.02f, 0.02f, 0.02f, 0.04f, 0.6f};
    float p10[10], reject;

    /* no threshold: never rejects, the digit is the best of the ten */
    cr_assert_eq(nn_model_answer(m, probs, p10, &reject), 5);
    cr_assert_float_eq(reject, 0.6f, 1e-7f);
    float sum = 0.0f;
    for (int i = 0; i < 10; i++)
        sum += p10[i];
    cr_assert_float_eq(sum, 1.0f, 1e-6f);
    cr_assert_float_eq(p10[5], 0.2f / 0.4f, 1e-6f);

    cr_assert_eq(nn_model_set_reject_threshold(m, 0.6f), NN_OK);
    cr_assert_eq(nn_model_answer(m, probs, p10, &reject), NN_NOT_A_DIGIT, "0.6 reaches 0.6");
    cr_assert_eq(nn_model_set_reject_threshold(m, 0.61f), NN_OK);
    cr_assert_eq(nn_model_answer(m, probs, p10, &reject), 5, "0.6 is under 0.61");

    float all_out[11] = {0};
    all_out[10] = 1.0f;
    cr_assert_eq(nn_model_answer(m, all_out, p10, &reject), NN_NOT_A_DIGIT);
    for (int i = 0; i < 10; i++)
        cr_assert_float_eq(p10[i], 0.1f, 1e-7f, "no digit more likely than another");

    cr_assert_eq(nn_model_set_reject_threshold(m, 1.5f), NN_EINVAL);
    cr_assert_eq(nn_model_set_reject_threshold(m, -0.1f), NN_EINVAL);
    cr_assert_eq(nn_model_set_reject_threshold(m, NAN), NN_EINVAL);
    nn_model_free(m);
}

Test(answer, the_threshold_survives_the_model_file_and_a_file_without_it_has_none)
{
    char err[256] = "";
    void *buf = NULL;
    size_t size = 0;
    nn_model *m = dense_model(11), *back = NULL;

    cr_assert_eq(nn_model_save_buffer(m, &buf, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_model_load_buffer(&back, buf, size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_model_reject_threshold(back), 0.0f);
    cr_assert_null(memmem(buf, size, "REJT", 4), "no section without a threshold");
    nn_model_free(back), back = NULL;
    free(buf), buf = NULL;

    cr_assert_eq(nn_model_set_reject_threshold(m, 0.375f), NN_OK);
    cr_assert_eq(nn_model_save_buffer(m, &buf, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_not_null(memmem(buf, size, "REJT", 4));
    cr_assert_eq(nn_model_load_buffer(&back, buf, size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_model_reject_threshold(back), 0.375f);
    cr_assert_eq(nn_model_classes(back), 11);
    nn_model_free(back);
    free(buf);
    nn_model_free(m);
}

/* Pieces of non-digits: deterministic, fill is them one by one, each has ink, and they are
 * not the whole non-digits. */
Test(nondigit, pieces_are_deterministic_have_ink_and_are_not_the_wholes)
{
    enum { N = 16 };
    uint8_t *all = malloc(N * NN_MNIST_PIXELS), one[NN_MNIST_PIXELS], whole[NN_MNIST_PIXELS];
    cr_assert_not_null(all);
    cr_assert_eq(nn_nondigit_piece_fill(all, N, 21), NN_OK);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(nn_nondigit_piece_image(one, 21, (uint64_t)i), NN_OK);
        cr_assert_eq(memcmp(all + (size_t)i * NN_MNIST_PIXELS, one, sizeof one), 0, "piece %d", i);
        int ink = 0;
        for (int k = 0; k < NN_MNIST_PIXELS; k++)
            ink += one[k] >= 128;
        cr_assert_geq(ink, 10, "piece %d has %d ink pixels", i, ink);
        cr_assert_eq(nn_nondigit_image(whole, 21, (uint64_t)i), NN_OK);
        cr_expect_neq(memcmp(whole, one, sizeof one), 0, "piece %d is a whole non-digit", i);
    }
    free(all);
}

/* ---------------------------------------------------------------------------------------- */
/* Touching digits (nn/pairs.c)                                                             */
/* ---------------------------------------------------------------------------------------- */

/* A dataset of one drawn digit: a ring 16 px wide and 20 tall, 2 px of stroke (a 0). */
static uint8_t ring[NN_MNIST_PIXELS];
static struct nn_dataset ring_set(void)
{
    for (int y = 0; y < NN_MNIST_SIDE; y++)
        for (int x = 0; x < NN_MNIST_SIDE; x++) {
            double dx = (x - 13.5) / 8.0, dy = (y - 13.5) / 10.0, r = sqrt(dx * dx + dy * dy);
            ring[y * NN_MNIST_SIDE + x] = fabs(r - 0.9) < 0.12 ? 255 : 0;
        }
    static uint8_t label = 0;
    return (struct nn_dataset){.images = ring, .labels = &label, .n = 1, .rows = 28, .cols = 28};
}

/* Runs of ink (>= 128) along row y. */
static int runs(const uint8_t *img, int y)
{
    int n = 0;
    for (int x = 0; x < NN_MNIST_SIDE; x++)
        n += img[y * NN_MNIST_SIDE + x] >= 128 && (x == 0 || img[y * NN_MNIST_SIDE + x - 1] < 128);
    return n;
}

Test(touching, samples_are_deterministic_and_fill_is_them_one_by_one)
{
    struct nn_dataset ds = ring_set();
    enum { N = 10 };
    uint8_t *all = malloc(N * NN_MNIST_PIXELS), one[NN_MNIST_PIXELS];
    cr_assert_not_null(all);
    cr_assert_eq(nn_touching_fill(all, N, &ds, 3), NN_OK);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(nn_touching_image(one, &ds, 3, (uint64_t)i), NN_OK);
        cr_assert_eq(memcmp(all + (size_t)i * NN_MNIST_PIXELS, one, sizeof one), 0, "sample %d", i);
        differ += i > 0 && memcmp(all + (size_t)i * NN_MNIST_PIXELS, all, sizeof one) != 0;
    }
    cr_assert_geq(differ, 5, "the samples hardly vary (%d of %d differ from the first)", differ,
                  N - 1);
    free(all);
}

/* One ring crosses the middle row twice; two or three rings side by side, normalised as one
 * digit, cross it at least three times, and the sample is wider than tall. */
Test(touching, a_sample_is_two_or_three_digits_side_by_side)
{
    struct nn_dataset ds = ring_set();
    cr_assert_eq(runs(ring, 14), 2);
    uint8_t img[NN_MNIST_PIXELS];
    for (uint64_t i = 0; i < 20; i++) {
        cr_assert_eq(nn_touching_image(img, &ds, 11, i), NN_OK);
        int best = 0, x0 = 28, x1 = -1, y0 = 28, y1 = -1;
        for (int y = 0; y < NN_MNIST_SIDE; y++) {
            int r = runs(img, y);
            best = r > best ? r : best;
            for (int x = 0; x < NN_MNIST_SIDE; x++)
                if (img[y * NN_MNIST_SIDE + x] >= 128) {
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        }
        cr_assert_geq(best, 3, "sample %llu has at most %d strokes across a row",
                      (unsigned long long)i, best);
        cr_assert_gt(x1 - x0, y1 - y0, "sample %llu is %dx%d", (unsigned long long)i,
                     x1 - x0 + 1, y1 - y0 + 1);
    }
}

Test(touching, an_empty_or_foreign_dataset_is_refused)
{
    uint8_t img[NN_MNIST_PIXELS];
    struct nn_dataset ds = ring_set();
    cr_assert_eq(nn_touching_image(img, NULL, 1, 0), NN_EINVAL);
    struct nn_dataset empty = ds;
    empty.n = 0;
    cr_assert_eq(nn_touching_image(img, &empty, 1, 0), NN_EINVAL);
    struct nn_dataset wide = ds;
    wide.cols = 32;
    cr_assert_eq(nn_touching_image(img, &wide, 1, 0), NN_EINVAL);
}
