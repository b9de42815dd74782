/*
 * test_model_file.c - the model file (nn/model_file.c, models/FORMAT.md): round trips, the
 * committed version-1 file, every corruption the loader must refuse, and atomic saves.
 *
 * The models here are tiny (1x4x4 input, dense:4,relu,dense:10: 118 parameters, about 1 KiB on
 * disk) so that the every-length truncation and every-bit flip loops stay well under a second.
 */
#include <criterion/criterion.h>

#include "nn/nn_impl.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define GOLDEN "tests/fuzz/corpus/model/valid-mlp.model"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Recomputes the trailing CRC-32 so that an edit reaches the check it is aimed at. */
static void fix_crc(unsigned char *buf, size_t size)
{
    wr32(buf + size - 4, (uint32_t)crc32(0L, buf, (uInt)(size - 4)));
}

/* Offset of the section header with this tag (sections start at byte 20). */
static size_t find_section(const unsigned char *buf, size_t size, const char *tag)
{
    size_t pos = 20;
    while (pos + 12 <= size - 4) {
        if (!memcmp(buf + pos, tag, 4))
            return pos;
        pos += 12 + rd32(buf + pos + 8);
    }
    cr_assert_fail("section %s not found", tag);
    return 0;
}

/*
 * Replaces del bytes at off with ins[0..n) inside the section at sec_off, then fixes that
 * section's length, the header's total length and the checksum. Returns the new buffer.
 */
static unsigned char *splice(const unsigned char *buf, size_t size, size_t sec_off, size_t off,
                             size_t del, const void *ins, size_t n, size_t *new_size)
{
    size_t ns = size - del + n;
    unsigned char *out = malloc(ns);
    cr_assert_not_null(out);
    memcpy(out, buf, off);
    memcpy(out + off, ins, n);
    memcpy(out + off + n, buf + off + del, size - off - del);
    if (sec_off != (size_t)-1)
        wr32(out + sec_off + 8, (uint32_t)(rd32(out + sec_off + 8) - del + n));
    wr64(out + 12, ns);
    fix_crc(out, ns);
    *new_size = ns;
    return out;
}

static const struct nn_layer_spec MLP[] = {
    {.kind = NN_LAYER_DENSE, .units = 4},
    {.kind = NN_LAYER_RELU},
    {.kind = NN_LAYER_DENSE, .units = 10},
};

/* Every field set to something recognisable; the history has NaN test values, as a trainer
 * writes for epochs it did not evaluate. */
static void fill_meta(struct nn_meta *meta, struct nn_history_point *hist, int n_hist)
{
    memset(meta, 0, sizeof *meta);
    strcpy(meta->name, "tiny-mlp");
    strcpy(meta->dataset, "mnist");
    strcpy(meta->dataset_sha256,
           "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db");
    strcpy(meta->trainer_version, "0.1.0");
    strcpy(meta->optimizer, "sgd");
    strcpy(meta->schedule, "cosine");
    strcpy(meta->augment, "shift 2px, rotate 10deg");
    strcpy(meta->command, "digits-train --arch dense:4,dense:10 --seed 42 --epochs 3");
    meta->seed = 0x0123456789abcdefULL;
    meta->lr = 0.1f, meta->momentum = 0.9f, meta->weight_decay = 5e-4f;
    meta->batch = 32, meta->epochs = 3, meta->threads = 2;
    meta->iterations = 5625;
    meta->train_loss = 0.25f, meta->train_acc = 0.93f;
    meta->test_loss = 0.3f, meta->test_acc = 0.91f;
    for (int t = 0; t < NN_CLASSES_MAX; t++)
        for (int p = 0; p < NN_CLASSES_MAX; p++)
            meta->confusion[t][p] = (uint32_t)(t == p ? 900 + t : t * 10 + p);
    meta->train_seconds = 12.5;
    meta->created_unix = 1700000000;
    for (int i = 0; i < n_hist; i++) {
        hist[i] = (struct nn_history_point){
            .epoch = i + 1,
            .step = 1875LL * (i + 1),
            .lr = 0.1f / (float)(i + 1),
            .train_loss = 1.0f / (float)(i + 2),
            .train_acc = 0.8f + 0.05f * (float)i,
            .test_loss = i == 1 ? NAN : 0.5f,
            .test_acc = i == 1 ? NAN : 0.85f,
            .seconds = 4.0 * (i + 1),
        };
    }
    meta->n_history = n_hist;
    meta->history = n_hist ? hist : NULL;
}

/* The tiny MLP with exact, machine-independent parameter values and full metadata. */
static nn_model *tiny_model(void)
{
    char err[256] = "";
    nn_model *m = NULL;
    struct nn_meta meta;
    struct nn_history_point hist[3];

    cr_assert_eq(nn_model_new(&m, 1, 4, 4, MLP, 3, NULL, err, sizeof err), NN_OK, "%s", err);
    float *p = nn_model_params(m);
    for (size_t j = 0; j < nn_model_param_count(m); j++)
        p[j] = (float)((int)(j % 17) - 8) / 16.0f;
    fill_meta(&meta, hist, 3);
    cr_assert_eq(nn_model_set_meta(m, &meta), NN_OK);
    nn_model_set_preprocess(m, NN_PREP_MNIST);
    return m;
}

static void save_tiny(unsigned char **buf, size_t *size)
{
    char err[256] = "";
    nn_model *m = tiny_model();
    cr_assert_eq(nn_model_save_buffer(m, (void **)buf, size, err, sizeof err), NN_OK, "%s", err);
    nn_model_free(m);
}

/* Loads buf, expecting failure with `status`; the model pointer must stay NULL. */
static void expect_reject(const void *buf, size_t size, int status, const char *needle)
{
    char err[512] = "";
    nn_model *m = (nn_model *)1;
    int rc = nn_model_load_buffer(&m, buf, size, err, sizeof err);
    cr_assert_eq(rc, status, "expected %s, got %d (%s): %s", nn_strerror(status), rc,
                 nn_strerror(rc), err);
    cr_assert_null(m);
    if (needle)
        cr_assert(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
}

#define FLOAT_SAME(a, b) (memcmp(&(a), &(b), sizeof(a)) == 0)

static void assert_meta_equal(const struct nn_meta *a, const struct nn_meta *b)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_str_eq(a->dataset, b->dataset);
    cr_assert_str_eq(a->dataset_sha256, b->dataset_sha256);
    cr_assert_str_eq(a->trainer_version, b->trainer_version);
    cr_assert_str_eq(a->optimizer, b->optimizer);
    cr_assert_str_eq(a->schedule, b->schedule);
    cr_assert_str_eq(a->augment, b->augment);
    cr_assert_str_eq(a->command, b->command);
    cr_assert_eq(a->seed, b->seed);
    cr_assert(FLOAT_SAME(a->lr, b->lr) && FLOAT_SAME(a->momentum, b->momentum) &&
              FLOAT_SAME(a->weight_decay, b->weight_decay));
    cr_assert(a->batch == b->batch && a->epochs == b->epochs && a->threads == b->threads);
    cr_assert_eq(a->iterations, b->iterations);
    cr_assert(FLOAT_SAME(a->train_loss, b->train_loss) && FLOAT_SAME(a->train_acc, b->train_acc));
    cr_assert(FLOAT_SAME(a->test_loss, b->test_loss) && FLOAT_SAME(a->test_acc, b->test_acc));
    cr_assert(memcmp(a->confusion, b->confusion, sizeof a->confusion) == 0);
    cr_assert(FLOAT_SAME(a->train_seconds, b->train_seconds));
    cr_assert_eq(a->created_unix, b->created_unix);
    cr_assert_eq(a->n_history, b->n_history);
    for (int i = 0; i < a->n_history; i++) {
        const struct nn_history_point *x = &a->history[i], *y = &b->history[i];
        cr_assert(x->epoch == y->epoch && x->step == y->step, "history point %d", i);
        cr_assert(FLOAT_SAME(x->lr, y->lr) && FLOAT_SAME(x->train_loss, y->train_loss) &&
                      FLOAT_SAME(x->train_acc, y->train_acc) &&
                      FLOAT_SAME(x->test_loss, y->test_loss) &&
                      FLOAT_SAME(x->test_acc, y->test_acc) && FLOAT_SAME(x->seconds, y->seconds),
                  "history point %d differs", i);
    }
}

static void assert_models_equal(const nn_model *a, const nn_model *b)
{
    const struct nn_layer_spec *la, *lb;
    int ca, ha, wa, cb, hb, wb;
    int na = nn_model_layers(a, &la), nb = nn_model_layers(b, &lb);

    nn_model_input_shape(a, &ca, &ha, &wa);
    nn_model_input_shape(b, &cb, &hb, &wb);
    cr_assert(ca == cb && ha == hb && wa == wb, "input shape");
    cr_assert_eq(na, nb);
    for (int i = 0; i < na; i++) {
        cr_assert(la[i].kind == lb[i].kind && la[i].units == lb[i].units &&
                      la[i].kernel == lb[i].kernel && la[i].stride == lb[i].stride &&
                      la[i].pad == lb[i].pad && FLOAT_SAME(la[i].rate, lb[i].rate),
                  "layer %d differs", i + 1);
    }
    cr_assert_eq(nn_model_preprocess(a), nn_model_preprocess(b));
    cr_assert_eq(nn_model_param_count(a), nn_model_param_count(b));
    cr_assert(memcmp(nn_model_params_const(a), nn_model_params_const(b),
                     nn_model_param_count(a) * sizeof(float)) == 0,
              "parameters differ");
    assert_meta_equal(nn_model_meta(a), nn_model_meta(b));
}

static void read_whole(const char *path, unsigned char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    *buf = malloc((size_t)n + 1);
    cr_assert_not_null(*buf);
    cr_assert_eq(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
}

static void write_whole(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(buf, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

/* Entries of dir other than . and .., so a test can say no temp file was left behind. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/digits-model-file-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

/* Removes the temp dir and everything in it (one level, plus empty subdirectories). */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(model_file);

/* ---------------------------------------------------------------------------------------- */
/* Round trips                                                                              */
/* ---------------------------------------------------------------------------------------- */

Test(model_file, save_then_load_gives_identical_parameters_metadata_and_predictions,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    char err[512] = "", path[128];
    nn_model *a = tiny_model(), *b = NULL;

    snprintf(path, sizeof path, "%s/tiny.model", tmpdir);
    cr_assert_eq(nn_model_save(a, path, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_model_load(&b, path, err, sizeof err), NN_OK, "%s", err);
    assert_models_equal(a, b);
    cr_assert(isnan(nn_model_meta(b)->history[1].test_loss), "NaN history survives");

    /* Same weights must mean the same answers, bit for bit. */
    nn_workspace *wa = NULL, *wb = NULL;
    float x[16], pa[10], pb[10];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i / 15.0f;
    cr_assert_eq(nn_workspace_new(&wa, a, 1), NN_OK);
    cr_assert_eq(nn_workspace_new(&wb, b, 1), NN_OK);
    cr_assert_eq(nn_model_predict(a, x, pa, wa), NN_OK);
    cr_assert_eq(nn_model_predict(b, x, pb, wb), NN_OK);
    cr_assert(memcmp(pa, pb, sizeof pa) == 0, "predictions differ");
    nn_workspace_free(wa);
    nn_workspace_free(wb);
    nn_model_free(a);
    nn_model_free(b);
}

Test(model_file, every_layer_kind_and_setting_survives_a_round_trip)
{
    static const struct nn_layer_spec cnn[] = {
        {.kind = NN_LAYER_CONV2D, .units = 2, .kernel = 3, .stride = 1, .pad = 1},
        {.kind = NN_LAYER_TANH},
        {.kind = NN_LAYER_MAXPOOL, .kernel = 2, .stride = 2},
        {.kind = NN_LAYER_FLATTEN},
        {.kind = NN_LAYER_DROPOUT, .rate = 0.25f},
        {.kind = NN_LAYER_DENSE, .units = 5},
        {.kind = NN_LAYER_SIGMOID},
        {.kind = NN_LAYER_DENSE, .units = 3},
    };
    char err[256] = "";
    nn_model *a = NULL, *b = NULL;
    struct nn_rng rng;
    void *buf = NULL;
    size_t size = 0;

    nn_rng_seed(&rng, 7);
    cr_assert_eq(nn_model_new(&a, 2, 6, 6, cnn, 8, &rng, err, sizeof err), NN_OK, "%s", err);
    nn_model_set_preprocess(a, NN_PREP_NONE); /* the default is MNIST: prove NONE is kept */
    cr_assert_eq(nn_model_save_buffer(a, &buf, &size, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(nn_model_load_buffer(&b, buf, size, err, sizeof err), NN_OK, "%s", err);
    assert_models_equal(a, b);
    cr_assert_eq(nn_model_preprocess(b), NN_PREP_NONE);
    cr_assert_eq(nn_model_meta(b)->n_history, 0);
    cr_assert_null(nn_model_meta(b)->history);
    free(buf);
    nn_model_free(a);
    nn_model_free(b);
}

Test(model_file, saving_the_same_model_twice_gives_the_same_bytes)
{
    unsigned char *a, *b;
    size_t na, nb;
    save_tiny(&a, &na);
    save_tiny(&b, &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na) == 0);
    free(a);
    free(b);
}

/* The committed file pins format version 1: if this fails, either the writer changed the
 * bytes by accident, or the format changed and needs a new version (models/FORMAT.md). */
Test(model_file, the_committed_version_1_file_loads_and_matches_what_we_write_today)
{
    unsigned char *golden, *now;
    size_t ng, nn;
    char err[512] = "";
    nn_model *m = NULL, *ref = tiny_model();

    read_whole(GOLDEN, &golden, &ng);
    cr_assert_eq(nn_model_load(&m, GOLDEN, err, sizeof err), NN_OK, "%s", err);
    assert_models_equal(m, ref);
    save_tiny(&now, &nn);
    cr_assert(nn == ng && memcmp(now, golden, ng) == 0, "the writer no longer produces " GOLDEN);
    free(golden);
    free(now);
    nn_model_free(m);
    nn_model_free(ref);
}

/* ---------------------------------------------------------------------------------------- */
/* Corrupt files                                                                            */
/* ---------------------------------------------------------------------------------------- */

Test(model_file, a_file_with_bad_magic_is_rejected_as_not_a_model)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    expect_reject(buf, size, NN_EFORMAT, "bad magic");
    expect_reject("DIGITSNX", 8, NN_EFORMAT, "bad magic");
    expect_reject("hello", 5, NN_EFORMAT, "bad magic");
    free(buf);
}

Test(model_file, every_version_but_the_current_one_is_rejected_with_eversion)
{
    static const uint32_t versions[] = {0, 2, 3, 100, 0x01000000u, 0xffffffffu};
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    cr_assert_eq(rd32(buf + 8), 1u, "the current version is 1");
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        wr32(buf + 8, versions[i]);
        fix_crc(buf, size); /* so that it is the version, not the checksum, that is refused */
        expect_reject(buf, size, NN_EVERSION, "version");
    }
    free(buf);
}

Test(model_file, truncation_at_every_length_is_rejected_as_truncated)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    for (size_t n = 0; n < size; n++) {
        char err[512] = "";
        nn_model *m = NULL;
        /* A copy of exactly n bytes, so that ASan sees any read past the end. */
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        int rc = nn_model_load_buffer(&m, cut, n, err, sizeof err);
        cr_assert_eq(rc, NN_EFORMAT, "length %zu: %d %s", n, rc, err);
        cr_assert_null(m);
        cr_assert(strstr(err, "truncated"), "length %zu: \"%s\"", n, err);
        free(cut);
    }
    free(buf);
}

Test(model_file, truncation_inside_the_parameters_names_the_layer_and_the_sizes)
{
    unsigned char *buf;
    size_t size, parm;
    save_tiny(&buf, &size);
    parm = find_section(buf, size, "PARM") + 12 + 8;
    /* Layer 1 is dense 16->4 (64 weights, 4 biases), layer 3 dense 4->10: its weights start
     * at value 68. Cut 3 values (12 bytes) into them. */
    expect_reject(buf, parm + (68 + 3) * 4, NN_EFORMAT,
                  "truncated in parameters (layer 3 weights): expected 160 bytes, got 12");
    expect_reject(buf, parm + 64 * 4 + 2, NN_EFORMAT,
                  "truncated in parameters (layer 1 biases): expected 16 bytes, got 2");
    expect_reject(buf, size - 1, NN_EFORMAT, "truncated in checksum: expected 4 bytes, got 3");
    expect_reject(buf, find_section(buf, size, "META") + 20, NN_EFORMAT,
                  "truncated in metadata: expected");
    free(buf);
}

Test(model_file, a_bit_flip_anywhere_is_rejected)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    for (size_t i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char err[512] = "";
            nn_model *m = NULL;
            buf[i] ^= (unsigned char)(1u << bit);
            int rc = nn_model_load_buffer(&m, buf, size, err, sizeof err);
            buf[i] ^= (unsigned char)(1u << bit);
            /* The header fields are checked before the checksum; CRC-32 catches every single
             * bit error elsewhere. */
            int want = i < 8    ? NN_EFORMAT
                       : i < 12 ? NN_EVERSION
                       : i < 20 ? NN_EFORMAT
                                : NN_ECHECKSUM;
            cr_assert_eq(rc, want, "byte %zu bit %d: %d %s", i, bit, rc, err);
            cr_assert_null(m);
        }
    }
    free(buf);
}

Test(model_file, a_trailing_byte_is_rejected)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, buf, size);
    longer[size] = 0;
    expect_reject(longer, size + 1, NN_EFORMAT, "1 trailing byte after the end of the model");
    free(longer);
    free(buf);
}

Test(model_file, an_absurd_layer_count_is_caught_by_the_size_check_not_the_checksum)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t arch = find_section(buf, size, "ARCH") + 12;
    wr32(buf + arch + 12, 1000000);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "1000000 layers");
    wr32(buf + arch + 12, 0);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "0 layers");
    free(buf);
}

Test(model_file, absurd_units_and_input_shapes_are_out_of_range)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t arch = find_section(buf, size, "ARCH") + 12;
    wr32(buf + arch + 16 + 4, 0x7fffffff); /* layer 1 units */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "layer 1: dense with 2147483647 units");
    free(buf);

    save_tiny(&buf, &size);
    wr32(buf + arch + 4, 100000); /* input height */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "input shape");
    free(buf);
}

Test(model_file, an_architecture_the_builder_refuses_is_rejected_with_its_reason)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t arch = find_section(buf, size, "ARCH") + 12;
    wr32(buf + arch + 16 + 2 * 24, NN_LAYER_RELU); /* last layer: dense -> relu */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "architecture: the last layer must be dense");
    wr32(buf + arch + 16 + 2 * 24, 99);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "unknown kind 99");
    free(buf);
}

Test(model_file, a_parameter_count_that_does_not_match_the_architecture_is_out_of_range)
{
    unsigned char *buf, *out;
    size_t size, ns;
    save_tiny(&buf, &size);
    size_t parm = find_section(buf, size, "PARM");
    /* Drop the last value and say so consistently: only the layout check can catch it. */
    unsigned char count[8];
    wr64(count, 117);
    out = splice(buf, size, parm, parm + 12, 8, count, 8, &ns);
    unsigned char *shorter = splice(out, ns, parm, ns - 8, 4, "", 0, &ns);
    expect_reject(shorter, ns, NN_ERANGE, "the file holds 117, the architecture needs 118");
    free(shorter);
    free(out);
    free(buf);
}

Test(model_file, a_nan_or_infinite_weight_is_rejected_naming_the_layer)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t vals = find_section(buf, size, "PARM") + 12 + 8;
    wr32(buf + vals + 70 * 4, 0x7fc00000u); /* NaN in layer 3 weights */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "layer 3 weights: value 70 is NaN");
    free(buf);

    save_tiny(&buf, &size);
    wr32(buf + vals + 65 * 4, 0xff800000u); /* -Inf in layer 1 biases */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "layer 1 biases: value 65 is infinite");
    free(buf);
}

Test(model_file, saving_a_model_with_a_nan_weight_is_refused)
{
    char err[256] = "";
    void *buf = NULL;
    size_t size = 0;
    nn_model *m = tiny_model();
    nn_model_params(m)[3] = NAN;
    cr_assert_eq(nn_model_save_buffer(m, &buf, &size, err, sizeof err), NN_ERANGE);
    cr_assert_null(buf);
    cr_assert(strstr(err, "layer 1 weights: value 3 is NaN"), "%s", err);
    nn_model_free(m);
}

Test(model_file, an_absurd_history_length_is_out_of_range)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t hist = find_section(buf, size, "HIST") + 12;
    wr32(buf + hist, 100001);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "history: 100001 points (at most 100000)");
    wr32(buf + hist, 4); /* plausible, but the section holds 3 */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "4 points need a 164-byte section, it has 124");
    free(buf);
}

Test(model_file, a_string_longer_than_its_field_is_out_of_range)
{
    unsigned char *buf, *out;
    size_t size, ns;
    char name[4 + 64];
    save_tiny(&buf, &size);
    size_t meta = find_section(buf, size, "META");
    uint32_t old = rd32(buf + meta + 12);
    wr32((unsigned char *)name, 64);
    memset(name + 4, 'x', 64); /* the field is char[64]: 63 bytes and the NUL */
    out = splice(buf, size, meta, meta + 12, 4 + old, name, sizeof name, &ns);
    expect_reject(out, ns, NN_ERANGE, "metadata name: 64 bytes (at most 63)");
    free(out);

    /* 63 is the most that fits, and is accepted. */
    wr32((unsigned char *)name, 63);
    out = splice(buf, size, meta, meta + 12, 4 + old, name, 4 + 63, &ns);
    nn_model *m = NULL;
    char err[256] = "";
    cr_assert_eq(nn_model_load_buffer(&m, out, ns, err, sizeof err), NN_OK, "%s", err);
    cr_assert_eq(strlen(nn_model_meta(m)->name), 63);
    nn_model_free(m);
    free(out);

    /* An absurd length is refused before anything is read. */
    wr32(buf + meta + 12 + 4 + old + 0, 0xffffffffu); /* dataset length */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_ERANGE, "metadata dataset: 4294967295 bytes (at most 63)");
    free(buf);
}

Test(model_file, a_string_with_an_embedded_nul_is_rejected)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    size_t meta = find_section(buf, size, "META");
    buf[meta + 12 + 4 + 2] = '\0'; /* "ti\0y-mlp" */
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "metadata name: contains a NUL byte");
    free(buf);
}

Test(model_file, an_unknown_preprocessing_is_rejected)
{
    unsigned char *buf;
    size_t size;
    save_tiny(&buf, &size);
    wr32(buf + find_section(buf, size, "PREP") + 12, 7);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "preprocessing: unknown kind 7");
    free(buf);
}

Test(model_file, an_unknown_optional_section_is_skipped_and_a_required_one_refused)
{
    unsigned char *buf, *out;
    size_t size, ns;
    unsigned char extra[12 + 5] = {'N', 'O', 'T', 'E', 0,   0,   0,   0,  5,
                                   0,   0,   0,   'h', 'e', 'l', 'l', 'o'};
    char err[256] = "";
    nn_model *m = NULL;

    save_tiny(&buf, &size);
    out = splice(buf, size, (size_t)-1, size - 4, 0, extra, sizeof extra, &ns);
    cr_assert_eq(nn_model_load_buffer(&m, out, ns, err, sizeof err), NN_OK, "%s", err);
    nn_model_free(m);
    free(out);

    extra[4] = 1; /* required */
    out = splice(buf, size, (size_t)-1, size - 4, 0, extra, sizeof extra, &ns);
    expect_reject(out, ns, NN_EVERSION, "section 'NOTE' is marked required");
    free(out);

    extra[4] = 2; /* a reserved flag */
    out = splice(buf, size, (size_t)-1, size - 4, 0, extra, sizeof extra, &ns);
    expect_reject(out, ns, NN_EFORMAT, "reserved flag bits");
    free(out);
    free(buf);
}

Test(model_file, a_missing_or_repeated_section_is_rejected)
{
    unsigned char *buf, *out;
    size_t size, ns;
    save_tiny(&buf, &size);
    size_t prep = find_section(buf, size, "PREP");
    out = splice(buf, size, (size_t)-1, prep, 16, "", 0, &ns);
    expect_reject(out, ns, NN_EFORMAT, "missing section 'PREP'");
    free(out);
    out = splice(buf, size, (size_t)-1, prep, 0, buf + prep, 16, &ns);
    expect_reject(out, ns, NN_EFORMAT, "section 'PREP' appears twice");
    free(out);
    /* A section length that runs past the checksum. */
    wr32(buf + prep + 8, 0x10000);
    fix_crc(buf, size);
    expect_reject(buf, size, NN_EFORMAT, "overruns the file");
    free(buf);
}

/* ---------------------------------------------------------------------------------------- */
/* Files and atomic saves                                                                   */
/* ---------------------------------------------------------------------------------------- */

Test(model_file, loading_a_missing_file_is_an_io_error_naming_the_path, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char err[512] = "", path[128];
    nn_model *m = NULL;
    snprintf(path, sizeof path, "%s/nope.model", tmpdir);
    cr_assert_eq(nn_model_load(&m, path, err, sizeof err), NN_EIO);
    cr_assert_null(m);
    cr_assert(!strncmp(err, path, strlen(path)), "%s", err);
    cr_assert(strstr(err, strerror(ENOENT)), "%s", err);
    cr_assert_eq(nn_model_load(&m, tmpdir, err, sizeof err), NN_EIO);
    cr_assert(strstr(err, strerror(EISDIR)), "%s", err);
}

/* A model replaced by a FIFO must not block the loader (the server's SIGHUP reload, and with
 * it SIGTERM, would wait for a writer); /dev/zero must not be read up to the 512 MiB cap. */
Test(model_file, a_fifo_or_a_device_is_refused_at_once, .init = make_tmpdir, .fini = remove_tmpdir,
     .timeout = 10)
{
    char err[512] = "", path[128], want[256];
    nn_model *m = NULL;
    struct timespec t0, t1;
    snprintf(path, sizeof path, "%s/x.model", tmpdir);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(nn_model_load(&m, path, err, sizeof err), NN_EIO);
    cr_assert_null(m);
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(nn_model_load(&m, "/dev/zero", err, sizeof err), NN_EIO);
    cr_assert_str_eq(err, "/dev/zero: not a regular file (a character device)");
    cr_assert_null(m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_lt(ms, 500.0, "both refused in %.0f ms", ms);
}

Test(model_file, saving_onto_a_fifo_fails_and_leaves_it_alone, .init = make_tmpdir,
     .fini = remove_tmpdir, .timeout = 10)
{
    char err[512] = "", path[128];
    struct stat st;
    nn_model *m = tiny_model();
    snprintf(path, sizeof path, "%s/fifo.model", tmpdir);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    cr_assert_eq(nn_model_save(m, path, err, sizeof err), NN_EIO, "%s", err);
    cr_assert(strstr(err, "not a regular file (a FIFO)"), "%s", err);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(count_entries(tmpdir), 1, "no temporary file is left");
    nn_model_free(m);
}

Test(model_file, load_errors_start_with_the_path, .init = make_tmpdir, .fini = remove_tmpdir)
{
    unsigned char *buf;
    size_t size;
    char err[512] = "", path[128], want[256];
    nn_model *m = NULL;
    save_tiny(&buf, &size);
    snprintf(path, sizeof path, "%s/cut.model", tmpdir);
    write_whole(path, buf, 100);
    cr_assert_eq(nn_model_load(&m, path, err, sizeof err), NN_EFORMAT);
    snprintf(want, sizeof want, "%s: truncated in ", path);
    cr_assert(!strncmp(err, want, strlen(want)), "%s", err);
    free(buf);
}

Test(model_file, saving_over_an_existing_model_replaces_it, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char err[512] = "", path[128];
    unsigned char *disk, *want;
    size_t nd, nw;
    nn_model *m = tiny_model(), *back = NULL;

    snprintf(path, sizeof path, "%s/model", tmpdir);
    write_whole(path, "old contents", 12);
    cr_assert_eq(nn_model_save(m, path, err, sizeof err), NN_OK, "%s", err);
    read_whole(path, &disk, &nd);
    save_tiny(&want, &nw);
    cr_assert(nd == nw && memcmp(disk, want, nw) == 0);
    cr_assert_eq(count_entries(tmpdir), 1, "no temporary file is left");
    cr_assert_eq(nn_model_load(&back, path, err, sizeof err), NN_OK, "%s", err);
    nn_model_free(back);
    free(disk);
    free(want);
    nn_model_free(m);
}

Test(model_file, saving_into_a_missing_directory_fails_with_eio_and_leaves_nothing,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    char err[512] = "", path[160];
    nn_model *m = tiny_model();
    snprintf(path, sizeof path, "%s/no/such/dir/model", tmpdir);
    cr_assert_eq(nn_model_save(m, path, err, sizeof err), NN_EIO, "%s", err);
    cr_assert(!strncmp(err, path, strlen(path)), "%s", err);
    cr_assert_eq(count_entries(tmpdir), 0);
    nn_model_free(m);
}

Test(model_file, saving_onto_a_directory_fails_and_leaves_it_alone, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char err[512] = "", path[128];
    struct stat st;
    nn_model *m = tiny_model();
    snprintf(path, sizeof path, "%s/dir.model", tmpdir);
    cr_assert_eq(mkdir(path, 0755), 0);
    cr_assert_eq(nn_model_save(m, path, err, sizeof err), NN_EIO, "%s", err);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(count_entries(tmpdir), 1, "no temporary file is left");
    nn_model_free(m);
}

/* A write that fails half-way (here the file size limit, as a full disk would) must leave the
 * previous model byte for byte as it was. */
Test(model_file, a_save_that_fails_mid_write_leaves_the_old_model_intact, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char err[512] = "", path[128];
    unsigned char *old, *disk;
    size_t nold, nd;
    struct rlimit lim = {.rlim_cur = 256, .rlim_max = RLIM_INFINITY};
    nn_model *m = tiny_model();

    snprintf(path, sizeof path, "%s/model", tmpdir);
    save_tiny(&old, &nold);
    old[nold - 1] ^= 0xff; /* make it differ from what the failed save would write */
    write_whole(path, old, nold);

    signal(SIGXFSZ, SIG_IGN); /* get EFBIG from write(2) instead of being killed */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0, "%s", strerror(errno));
    int rc = nn_model_save(m, path, err, sizeof err);
    lim.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &lim);
    cr_assert_eq(rc, NN_EIO, "%d %s", rc, err);
    cr_assert(strstr(err, strerror(EFBIG)), "%s", err);

    read_whole(path, &disk, &nd);
    cr_assert(nd == nold && memcmp(disk, old, nold) == 0, "the old bytes changed");
    cr_assert_eq(count_entries(tmpdir), 1, "no temporary file is left");

    /* A model the writer refuses never touches the file either. */
    nn_model_params(m)[0] = INFINITY;
    cr_assert_eq(nn_model_save(m, path, err, sizeof err), NN_ERANGE);
    free(disk);
    read_whole(path, &disk, &nd);
    cr_assert(nd == nold && memcmp(disk, old, nold) == 0, "the old bytes changed");
    free(disk);
    free(old);
    nn_model_free(m);
}
