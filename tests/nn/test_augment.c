/*
 * test_augment.c - the trainer's augmentation (nn_augment_image): aug_clean passes samples
 * through untouched with the asked-for probability and leaves runs without it unchanged, and
 * checkpoints keep it (and still load from version 1 files, which had no such field).
 */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { SIDE = 28, PIX = SIDE * SIDE };

/* A plain synthetic digit: a thick diagonal bar with soft edges, in bytes. */
static void bar(uint8_t *px)
{
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int d = abs((x - 4) - (y - 4) / 2);
            px[y * SIDE + x] = y >= 4 && y < 24 && d < 3 ? (uint8_t)(255 - 60 * d) : 0;
        }
}

/* Whether out is the image as it is, converted as the dataset's bytes always are (times
 * 1/255, which is not always the same float as a division by 255). */
static int is_raw(const float *out, const uint8_t *px)
{
    for (int i = 0; i < PIX; i++)
        if (out[i] != (float)px[i] * (1.0f / 255.0f))
            return 0;
    return 1;
}

static void standard(struct nn_train_config *c)
{
    nn_train_config_default(c);
    c->aug_shift = 2.0f;
    c->aug_rotate = 12.0f;
    c->aug_scale = 0.12f;
    c->aug_shear = 0.2f;
    c->aug_thickness = 0.3f;
}

Test(augment, clean_probability_one_gives_the_image_as_it_is)
{
    uint8_t px[PIX];
    float out[PIX];
    struct nn_train_config c;
    bar(px);
    standard(&c);
    c.aug_clean = 1.0f;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        nn_augment_image(out, px, SIDE, SIDE, &c, seed);
        cr_assert(is_raw(out, px), "seed %llu: not the raw image", (unsigned long long)seed);
    }
}

/* At 0.3, about 30% of the samples come out raw and the rest distorted and normalised; the
 * same seed always gives the same sample. */
Test(augment, clean_fraction_is_as_asked_and_deterministic)
{
    uint8_t px[PIX];
    float a[PIX], b[PIX];
    struct nn_train_config c;
    bar(px);
    standard(&c);
    c.aug_clean = 0.3f;
    int raw = 0;
    const int n = 2000;
    for (uint64_t seed = 1; seed <= (uint64_t)n; seed++) {
        nn_augment_image(a, px, SIDE, SIDE, &c, seed);
        nn_augment_image(b, px, SIDE, SIDE, &c, seed);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "seed %llu: not deterministic",
                     (unsigned long long)seed);
        raw += is_raw(a, px);
    }
    cr_log_info("aug_clean 0.3: %d of %d samples raw", raw, n);
    cr_expect(raw > 0.26 * n && raw < 0.34 * n, "%d of %d samples raw, expected about 30%%", raw,
              n);
}

/* Without aug_clean no sample is raw (the bar is never left as it is by the normalisation),
 * and the random stream is the one runs before aug_clean existed drew: a distortion with the
 * same seed is reproduced by a config whose aug_clean is exactly 0. */
Test(augment, no_clean_draw_when_it_is_off)
{
    uint8_t px[PIX];
    float a[PIX], b[PIX];
    struct nn_train_config c, d;
    bar(px);
    standard(&c);
    d = c;
    d.aug_clean = 1e-9f; /* on, but never firing in practice: it consumes one draw */
    int differ = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        nn_augment_image(a, px, SIDE, SIDE, &c, seed);
        cr_assert(!is_raw(a, px), "seed %llu: raw without aug_clean", (unsigned long long)seed);
        nn_augment_image(b, px, SIDE, SIDE, &d, seed);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    /* the extra draw shifts the stream: if it did not, aug_clean = 0 would draw too */
    cr_expect_gt(differ, 150, "only %d of 200 samples changed when the clean draw was added",
                 differ);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)n);
    cr_assert_not_null(d);
    cr_assert_eq(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return d;
}

static void write_all(const char *path, const uint8_t *d, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(d, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * A checkpoint keeps aug_clean; a version-1 checkpoint (the same bytes without the field,
 * version 1, checksum redone) still loads, with aug_clean 0. The config is the last of the
 * fixed fields after the model: aug_clean is its last 4 bytes, 100 bytes after its start.
 */
Test(augment, checkpoints_keep_aug_clean_and_aug_paper_and_older_versions_still_load)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    int nl;
    struct nn_rng rng;
    struct nn_train_config c;
    nn_model *m = NULL, *m2 = NULL;
    nn_trainer *tr = NULL, *tr2 = NULL;
    char err[512] = "";
    cr_assert_eq(nn_arch_parse(l, NN_MAX_LAYERS, &nl, "dense:8,dense:10", NN_LAYER_RELU, NULL, 0),
                 NN_OK);
    nn_rng_seed(&rng, 5);
    cr_assert_eq(nn_model_new(&m, 1, SIDE, SIDE, l, nl, &rng, NULL, 0), NN_OK);
    standard(&c);
    c.aug_clean = 0.25f;
    c.aug_paper = 0.125f;
    cr_assert_eq(nn_trainer_new(&tr, m, &c, 1000, err, sizeof err), NN_OK, "%s", err);

    char path[] = "/tmp/digits-ckpt-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(nn_trainer_save_checkpoint(tr, path, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_trainer_load_checkpoint(&tr2, &m2, path, 1000, err, sizeof err), NN_OK, "%s",
                 err);
    cr_expect_eq(nn_trainer_config(tr2)->aug_clean, 0.25f);
    cr_expect_eq(nn_trainer_config(tr2)->aug_paper, 0.125f);
    cr_expect_eq(nn_trainer_config(tr2)->aug_thickness, 0.3f);
    nn_trainer_free(tr2);
    nn_model_free(m2);

    size_t len;
    uint8_t *d = read_all(path, &len);
    const size_t model_len = (size_t)le64(d + 12);
    const size_t at = 8 + 4 + 8 + model_len + 100; /* aug_clean */
    cr_assert_lt(at + 4, len);
    float clean, paper;
    memcpy(&clean, d + at, 4);
    memcpy(&paper, d + at + 4, 4);
    cr_assert_eq(clean, 0.25f, "aug_clean is not where the layout says");
    cr_assert_eq(paper, 0.125f, "aug_paper is not where the layout says");
    /* version 2: no aug_paper */
    memmove(d + at + 4, d + at + 8, len - at - 8);
    len -= 4;
    put_le32(d + 8, 2);
    put_le32(d + len - 4, (uint32_t)crc32(0L, d, (uInt)(len - 4)));
    write_all(path, d, len);
    cr_assert_eq(nn_trainer_load_checkpoint(&tr2, &m2, path, 1000, err, sizeof err), NN_OK,
                 "version 2: %s", err);
    cr_expect_eq(nn_trainer_config(tr2)->aug_clean, 0.25f);
    cr_expect_eq(nn_trainer_config(tr2)->aug_paper, 0.0f);
    nn_trainer_free(tr2);
    nn_model_free(m2);
    /* version 1: no aug_clean either */
    memmove(d + at, d + at + 4, len - at - 4);
    len -= 4;
    put_le32(d + 8, 1);
    put_le32(d + len - 4, (uint32_t)crc32(0L, d, (uInt)(len - 4)));
    write_all(path, d, len);
    free(d);
    cr_assert_eq(nn_trainer_load_checkpoint(&tr2, &m2, path, 1000, err, sizeof err), NN_OK,
                 "version 1: %s", err);
    cr_expect_eq(nn_trainer_config(tr2)->aug_clean, 0.0f);
    cr_expect_eq(nn_trainer_config(tr2)->aug_paper, 0.0f);
    cr_expect_eq(nn_trainer_config(tr2)->aug_thickness, 0.3f);
    unlink(path);
    nn_trainer_free(tr2);
    nn_model_free(m2);
    nn_trainer_free(tr);
    nn_model_free(m);
}

/* aug_paper: the sample goes through nn_image_from_pixels8 on synthetic paper and comes back a
 * normalised digit close to the plain one; the same seed gives the same image. */
Test(augment, paper_samples_come_back_as_the_digit_they_were)
{
    uint8_t px[PIX];
    bar(px);
    struct nn_train_config c;
    nn_train_config_default(&c);
    c.aug_paper = 1.0f;
    cr_assert(nn_augment_enabled(&c), "aug_paper alone turns augmentation on");
    float plain[PIX], ref[PIX], a[PIX], b[PIX];
    for (int i = 0; i < PIX; i++)
        plain[i] = px[i] / 255.0f;
    cr_assert_eq(nn_image_normalize(ref, plain, SIDE, SIDE), NN_OK);
    int differ = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        nn_augment_image(a, px, SIDE, SIDE, &c, seed);
        nn_augment_image(b, px, SIDE, SIDE, &c, seed);
        cr_assert(!memcmp(a, b, sizeof a), "seed %llu is not deterministic",
                  (unsigned long long)seed);
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
        for (int i = 0; i < PIX; i++) {
            cr_assert(a[i] >= 0.0f && a[i] <= 1.0f);
            sa += a[i], sb += ref[i], saa += a[i] * a[i], sbb += ref[i] * ref[i];
            sab += a[i] * ref[i];
        }
        double corr = (sab - sa * sb / PIX) / sqrt((saa - sa * sa / PIX) * (sbb - sb * sb / PIX));
        cr_expect_gt(corr, 0.85, "seed %llu: correlation %.3f with the plain digit",
                     (unsigned long long)seed, corr);
        differ += memcmp(a, ref, sizeof a) != 0;
    }
    cr_expect_gt(differ, 0, "paper never changed a pixel");
}
