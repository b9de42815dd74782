/*
 * test_mnist.c - MNIST IDX reading: the real files, gzip, and every way an IDX file can be
 * broken (made in a mkdtemp directory and removed afterwards), plus a table of byte strings
 * for the in-memory parser the fuzz target drives. Tests needing MNIST fail without it.
 */
#include "nn/mnist_impl.h"
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static const char *mnist_dir(void)
{
    const char *dir = getenv("MNIST_DIR");
    return dir && *dir ? dir : "data/mnist";
}

static void load_split(struct nn_dataset *ds, const char *split)
{
    char err[512] = "";
    int st = nn_dataset_load_mnist(ds, mnist_dir(), split, err, sizeof(err));
    cr_assert_eq(st, NN_OK, "MNIST is needed (run `make data` or set MNIST_DIR): %s", err);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/digits-test-mnist-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) {
        return;
    }
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(tmpdir);
}

static char *tmp_path(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *p = bufs[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file: magic bytes 00 00 type ndims, the dims, then `len` bytes of data (`fill` when
 * data is NULL). gz: write it gzip-compressed. */
static void write_idx(const char *path, uint8_t type, int ndims, const uint32_t *dims,
                      const uint8_t *data, size_t len, uint8_t fill, int gz)
{
    size_t hl = 4 + 4 * (size_t)ndims;
    uint8_t *buf = malloc(hl + len + 1);
    cr_assert_not_null(buf);
    buf[0] = buf[1] = 0;
    buf[2] = type;
    buf[3] = (uint8_t)ndims;
    for (int i = 0; i < ndims; i++) {
        put_be32(buf + 4 + 4 * i, dims[i]);
    }
    if (data) {
        memcpy(buf + hl, data, len);
    } else {
        memset(buf + hl, fill, len);
    }
    if (gz) {
        gzFile f = gzopen(path, "wb1");
        cr_assert_not_null(f, "gzopen %s", path);
        cr_assert_eq(gzwrite(f, buf, (unsigned)(hl + len)), (int)(hl + len));
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f, "fopen %s", path);
        cr_assert_eq(fwrite(buf, 1, hl + len, f), hl + len);
        cr_assert_eq(fclose(f), 0);
    }
    free(buf);
}

/* n images of rows x cols (pixel i = i % 251) and n labels (i % 10). */
static void write_images(const char *path, uint32_t n, uint32_t rows, uint32_t cols, int gz)
{
    uint32_t dims[3] = {n, rows, cols};
    size_t len = (size_t)n * rows * cols;
    uint8_t *px = malloc(len + 1);
    cr_assert_not_null(px);
    for (size_t i = 0; i < len; i++) {
        px[i] = (uint8_t)(i % 251);
    }
    write_idx(path, 0x08, 3, dims, px, len, 0, gz);
    free(px);
}

static void write_labels(const char *path, uint32_t n, int gz)
{
    uint32_t dims[1] = {n};
    uint8_t *lb = malloc((size_t)n + 1);
    cr_assert_not_null(lb);
    for (uint32_t i = 0; i < n; i++) {
        lb[i] = (uint8_t)(i % 10);
    }
    write_idx(path, 0x08, 1, dims, lb, n, 0, gz);
    free(lb);
}

static void write_raw(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Loads (images, labels) expecting status `want` and an err that starts with `prefix` and
 * contains `needle`; on failure the dataset must be left zeroed. */
static void expect_load(const char *images, const char *labels, int want, const char *prefix,
                        const char *needle)
{
    struct nn_dataset ds;
    memset(&ds, 0xab, sizeof(ds));
    char err[512] = "";
    int st = nn_dataset_load_idx(&ds, images, labels, err, sizeof(err));
    cr_assert_eq(st, want, "status %d (%s), expected %d; err: %s", st, nn_strerror(st), want, err);
    if (want != NN_OK) {
        cr_expect_null(ds.images);
        cr_expect_null(ds.labels);
        cr_expect_eq(ds.n, 0);
        cr_expect_eq(ds.rows, 0);
        cr_expect_eq(ds.cols, 0);
        if (prefix) {
            cr_expect_eq(strncmp(err, prefix, strlen(prefix)), 0, "err \"%s\" should start with %s",
                         err, prefix);
        }
        if (needle) {
            cr_expect_not_null(strstr(err, needle), "err \"%s\" should contain \"%s\"", err,
                               needle);
        }
    }
    nn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------- */
/* The real MNIST files                                                                      */
/* ---------------------------------------------------------------------------------------- */

Test(mnist, training_set_has_60000_labelled_28x28_digits)
{
    struct nn_dataset ds;
    load_split(&ds, "train");
    cr_expect_eq(ds.n, 60000);
    cr_expect_eq(ds.rows, 28);
    cr_expect_eq(ds.cols, 28);
    cr_expect_eq(ds.labels[0], 5, "the first training digit is a 5");
    cr_expect_eq(ds.labels[1], 0);
    cr_expect_eq(ds.labels[2], 4);
    size_t count[10] = {0};
    for (size_t i = 0; i < ds.n; i++) {
        count[ds.labels[i]]++;
    }
    cr_expect_eq(count[1], 6742, "MNIST has 6742 training ones");
    cr_expect_eq(count[5], 5421, "MNIST has 5421 training fives");
    nn_dataset_free(&ds);
}

Test(mnist, test_set_has_10000_labelled_28x28_digits)
{
    struct nn_dataset ds;
    load_split(&ds, "test");
    cr_expect_eq(ds.n, 10000);
    cr_expect_eq(ds.rows, 28);
    cr_expect_eq(ds.cols, 28);
    cr_expect_eq(ds.labels[0], 7, "the first test digit is a 7");
    cr_expect_eq(ds.labels[1], 2);
    cr_expect_eq(ds.labels[2], 1);
    /* pixels are bytes with 0 background: the corners of the first digit are empty and it has
     * full-intensity ink */
    uint8_t peak = 0;
    for (int i = 0; i < 784; i++) {
        peak = ds.images[i] > peak ? ds.images[i] : peak;
    }
    cr_expect_eq(ds.images[0], 0);
    cr_expect_eq(ds.images[783], 0);
    cr_expect_geq(peak, 250);
    nn_dataset_free(&ds);
}

Test(mnist, unknown_split_is_rejected)
{
    struct nn_dataset ds;
    char err[256] = "";
    cr_expect_eq(nn_dataset_load_mnist(&ds, mnist_dir(), "validation", err, sizeof(err)),
                 NN_EINVAL);
    cr_expect_not_null(strstr(err, "validation"), "err: %s", err);
    cr_expect_null(ds.images);
}

Test(mnist, missing_directory_is_an_io_error_naming_the_file)
{
    struct nn_dataset ds;
    char err[256] = "";
    cr_expect_eq(nn_dataset_load_mnist(&ds, "/nonexistent-digits", "train", err, sizeof(err)),
                 NN_EIO);
    cr_expect_not_null(strstr(err, "/nonexistent-digits/train-images-idx3-ubyte"), "err: %s", err);
    cr_expect_null(ds.images);
}

Test(mnist, free_accepts_null_and_zeroed_datasets)
{
    struct nn_dataset ds;
    memset(&ds, 0, sizeof(ds));
    nn_dataset_free(NULL);
    nn_dataset_free(&ds);
    nn_dataset_free(&ds);
    cr_expect_null(ds.images);
}

/* ---------------------------------------------------------------------------------------- */
/* Files made in a temporary directory                                                       */
/* ---------------------------------------------------------------------------------------- */

TestSuite(idx, .init = make_tmpdir, .fini = remove_tmpdir);

Test(idx, gzip_copy_of_the_test_set_loads_like_the_raw_files)
{
    struct nn_dataset raw, gz;
    load_split(&raw, "test");
    uint32_t idims[3] = {(uint32_t)raw.n, 28, 28}, ldims[1] = {(uint32_t)raw.n};
    /* names without .gz first: gzip is detected from the bytes, not the name */
    write_idx(tmp_path("images"), 0x08, 3, idims, raw.images, raw.n * 784, 0, 1);
    write_idx(tmp_path("labels"), 0x08, 1, ldims, raw.labels, raw.n, 0, 1);
    char err[512] = "";
    cr_assert_eq(nn_dataset_load_idx(&gz, tmp_path("images"), tmp_path("labels"), err, sizeof(err)),
                 NN_OK, "%s", err);
    cr_expect_eq(gz.n, raw.n);
    cr_expect_eq(memcmp(gz.images, raw.images, raw.n * 784), 0);
    cr_expect_eq(memcmp(gz.labels, raw.labels, raw.n), 0);
    nn_dataset_free(&gz);

    /* and nn_dataset_load_mnist finds the .gz names when the raw ones are absent */
    cr_assert_eq(rename(tmp_path("images"), tmp_path("t10k-images-idx3-ubyte.gz")), 0);
    cr_assert_eq(rename(tmp_path("labels"), tmp_path("t10k-labels-idx1-ubyte.gz")), 0);
    cr_assert_eq(nn_dataset_load_mnist(&gz, tmpdir, "test", err, sizeof(err)), NN_OK, "%s", err);
    cr_expect_eq(gz.n, raw.n);
    cr_expect_eq(memcmp(gz.images, raw.images, raw.n * 784), 0);
    nn_dataset_free(&gz);
    nn_dataset_free(&raw);
}

Test(idx, small_raw_files_round_trip)
{
    write_images(tmp_path("i"), 7, 3, 5, 0);
    write_labels(tmp_path("l"), 7, 0);
    struct nn_dataset ds;
    char err[256] = "";
    cr_assert_eq(nn_dataset_load_idx(&ds, tmp_path("i"), tmp_path("l"), err, sizeof(err)), NN_OK,
                 "%s", err);
    cr_expect_eq(ds.n, 7);
    cr_expect_eq(ds.rows, 3);
    cr_expect_eq(ds.cols, 5);
    for (size_t i = 0; i < 7 * 15; i++) {
        cr_assert_eq(ds.images[i], i % 251);
    }
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(ds.labels[i], i % 10);
    }
    nn_dataset_free(&ds);
    cr_expect_null(ds.images);
}

/* Bigger than the loader's first 1 MiB buffer, so the doubling path is exercised. */
Test(idx, files_larger_than_the_first_read_buffer_load_whole)
{
    write_images(tmp_path("i"), 3000, 28, 28, 0);
    write_labels(tmp_path("l"), 3000, 1);
    struct nn_dataset ds;
    char err[256] = "";
    cr_assert_eq(nn_dataset_load_idx(&ds, tmp_path("i"), tmp_path("l"), err, sizeof(err)), NN_OK,
                 "%s", err);
    cr_expect_eq(ds.n, 3000);
    size_t len = 3000 * 784;
    cr_expect_eq(ds.images[len - 1], (len - 1) % 251);
    nn_dataset_free(&ds);
}

Test(idx, truncated_pixels_are_reported_with_both_sizes)
{
    uint32_t dims[3] = {60000, 28, 28};
    write_idx(tmp_path("i"), 0x08, 3, dims, NULL, 1024, 1, 0);
    write_labels(tmp_path("l"), 60000, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("i"),
                ": truncated: expected 47040000 bytes of pixels, got 1024");
}

Test(idx, truncated_gzip_stream_is_reported_as_truncated)
{
    write_images(tmp_path("full.gz"), 500, 28, 28, 1);
    write_labels(tmp_path("l"), 500, 0);
    FILE *f = fopen(tmp_path("full.gz"), "rb");
    cr_assert_not_null(f);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    cr_assert_gt(len, 200);
    write_raw(tmp_path("cut.gz"), buf, len / 2);
    expect_load(tmp_path("cut.gz"), tmp_path("l"), NN_EFORMAT, tmp_path("cut.gz"),
                "truncated: expected 392000 bytes of pixels");
}

Test(idx, corrupt_gzip_data_is_a_format_error)
{
    write_images(tmp_path("i.gz"), 50, 28, 28, 1);
    write_labels(tmp_path("l"), 50, 0);
    FILE *f = fopen(tmp_path("i.gz"), "rb");
    cr_assert_not_null(f);
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    for (size_t i = 20; i < len - 8; i += 7) {
        buf[i] ^= 0x5a; /* scramble the deflate stream, keep the gzip header */
    }
    write_raw(tmp_path("bad.gz"), buf, len);
    expect_load(tmp_path("bad.gz"), tmp_path("l"), NN_EFORMAT, tmp_path("bad.gz"), NULL);
}

Test(idx, header_shorter_than_its_dimensions_is_truncated)
{
    uint8_t bytes[10] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0};
    write_raw(tmp_path("i"), bytes, sizeof(bytes));
    write_labels(tmp_path("l"), 1, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("i"), "16-byte header");
}

Test(idx, wrong_magic_is_rejected)
{
    uint8_t bytes[32] = {'G', 'I', 'F', '8', '9', 'a'};
    write_raw(tmp_path("i"), bytes, sizeof(bytes));
    write_labels(tmp_path("l"), 1, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("i"), "magic 0x47494638");
}

Test(idx, label_file_given_as_images_is_rejected_by_magic)
{
    write_labels(tmp_path("l"), 30, 0);
    expect_load(tmp_path("l"), tmp_path("l"), NN_EFORMAT, tmp_path("l"),
                "not an IDX image file: magic 0x00000801, expected 0x00000803");
}

Test(idx, element_type_other_than_unsigned_byte_is_rejected)
{
    uint32_t dims[3] = {2, 2, 2};
    write_idx(tmp_path("i"), 0x0D /* float */, 3, dims, NULL, 8 * 4, 0, 0);
    write_labels(tmp_path("l"), 2, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("i"),
                "unsupported IDX element type 0x0d");
}

Test(idx, dimensions_disagreeing_with_the_size_are_rejected)
{
    uint32_t dims[3] = {3, 28, 28};
    write_idx(tmp_path("short"), 0x08, 3, dims, NULL, 2 * 784, 9, 0);
    write_idx(tmp_path("long"), 0x08, 3, dims, NULL, 4 * 784, 9, 0);
    write_labels(tmp_path("l"), 3, 0);
    expect_load(tmp_path("short"), tmp_path("l"), NN_EFORMAT, tmp_path("short"),
                "truncated: expected 2352 bytes of pixels, got 1568");
    expect_load(tmp_path("long"), tmp_path("l"), NN_EFORMAT, tmp_path("long"), "trailing bytes");
}

Test(idx, one_trailing_byte_is_rejected_raw_and_gzip)
{
    uint32_t dims[1] = {5};
    uint8_t lb[6] = {1, 2, 3, 4, 5, 6};
    write_images(tmp_path("i"), 5, 2, 2, 0);
    write_idx(tmp_path("l"), 0x08, 1, dims, lb, 6, 0, 0);
    write_idx(tmp_path("l.gz"), 0x08, 1, dims, lb, 6, 0, 1);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("l"),
                "trailing bytes after the 5 bytes of labels");
    expect_load(tmp_path("i"), tmp_path("l.gz"), NN_EFORMAT, tmp_path("l.gz"), "trailing bytes");
}

Test(idx, image_and_label_counts_must_agree)
{
    write_images(tmp_path("i"), 6, 4, 4, 0);
    write_labels(tmp_path("l"), 5, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("i"), "has 6 images but");
}

Test(idx, label_above_9_is_rejected_with_its_index)
{
    uint32_t dims[1] = {4};
    uint8_t lb[4] = {0, 9, 10, 3};
    write_images(tmp_path("i"), 4, 2, 2, 0);
    write_idx(tmp_path("l"), 0x08, 1, dims, lb, 4, 0, 0);
    expect_load(tmp_path("i"), tmp_path("l"), NN_EFORMAT, tmp_path("l"),
                "label 10 at index 2 is outside 0..9");
}

Test(idx, absurd_dimensions_are_out_of_range)
{
    uint32_t big_side[3] = {1, 5000, 28}, none[3] = {0, 28, 28}, many[3] = {20000000, 1, 1};
    uint32_t huge[3] = {10000000, 4096, 4096};
    write_labels(tmp_path("l"), 1, 0);
    write_idx(tmp_path("a"), 0x08, 3, big_side, NULL, 0, 0, 0);
    write_idx(tmp_path("b"), 0x08, 3, none, NULL, 0, 0, 0);
    write_idx(tmp_path("c"), 0x08, 3, many, NULL, 0, 0, 0);
    write_idx(tmp_path("d"), 0x08, 3, huge, NULL, 0, 0, 0);
    expect_load(tmp_path("a"), tmp_path("l"), NN_ERANGE, tmp_path("a"), "5000x28");
    expect_load(tmp_path("b"), tmp_path("l"), NN_ERANGE, tmp_path("b"), "0 images");
    expect_load(tmp_path("c"), tmp_path("l"), NN_ERANGE, tmp_path("c"), "20000000 images");
    expect_load(tmp_path("d"), tmp_path("l"), NN_ERANGE, tmp_path("d"), "byte limit");
}

/* A FIFO (opening it for reading would wait for a writer) and a device are refused at once. */
Test(idx, a_fifo_or_a_device_is_refused_without_waiting, .timeout = 10)
{
    write_labels(tmp_path("l"), 1, 0);
    cr_assert_eq(mkfifo(tmp_path("fifo"), 0600), 0, "mkfifo: %s", strerror(errno));
    expect_load(tmp_path("fifo"), tmp_path("l"), NN_EIO, tmp_path("fifo"),
                "not a regular file (a FIFO)");
    write_images(tmp_path("i"), 1, 2, 2, 0);
    expect_load(tmp_path("i"), "/dev/zero", NN_EIO, "/dev/zero",
                "not a regular file (a character device)");
}

Test(idx, missing_or_unreadable_files_are_io_errors)
{
    write_labels(tmp_path("l"), 1, 0);
    expect_load(tmp_path("nope"), tmp_path("l"), NN_EIO, tmp_path("nope"), "No such file");
    expect_load(tmpdir, tmp_path("l"), NN_EIO, tmpdir, "directory");
    char err[8];
    struct nn_dataset ds;
    cr_expect_eq(nn_dataset_load_idx(&ds, NULL, tmp_path("l"), err, sizeof(err)), NN_EINVAL);
    cr_expect_eq(nn_dataset_load_idx(NULL, tmp_path("l"), tmp_path("l"), NULL, 0), NN_EINVAL);
}

/* ---------------------------------------------------------------------------------------- */
/* The in-memory parser, data-driven                                                         */
/* ---------------------------------------------------------------------------------------- */

struct parse_case {
    const char *what;
    int ndims;
    uint8_t bytes[32];
    size_t len;
    int status;
    size_t n;
    int rows, cols;
};

static const struct parse_case parse_cases[] = {
    {"empty input", 3, {0}, 0, NN_EFORMAT, 0, 0, 0},
    {"magic cut short", 1, {0, 0, 8}, 3, NN_EFORMAT, 0, 0, 0},
    {"labels, 2 of them", 1, {0, 0, 8, 1, 0, 0, 0, 2, 7, 9}, 10, NN_OK, 2, 1, 1},
    {"labels, one missing", 1, {0, 0, 8, 1, 0, 0, 0, 2, 7}, 9, NN_EFORMAT, 0, 0, 0},
    {"labels, one extra", 1, {0, 0, 8, 1, 0, 0, 0, 2, 7, 9, 1}, 11, NN_EFORMAT, 0, 0, 0},
    {"label 255", 1, {0, 0, 8, 1, 0, 0, 0, 1, 255}, 9, NN_EFORMAT, 0, 0, 0},
    {"images as labels",
     1,
     {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5},
     17,
     NN_EFORMAT,
     0,
     0,
     0},
    {"one 1x2 image",
     3,
     {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 5, 6},
     18,
     NN_OK,
     1,
     1,
     2},
    {"one 1x2 image, a byte short",
     3,
     {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 5},
     17,
     NN_EFORMAT,
     0,
     0,
     0},
    {"header only", 3, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2}, 16, NN_EFORMAT, 0, 0, 0},
    {"dims cut short", 3, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, 10, NN_EFORMAT, 0, 0, 0},
    {"signed byte type",
     3,
     {0, 0, 9, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5},
     17,
     NN_EFORMAT,
     0,
     0,
     0},
    {"nonzero first byte", 1, {1, 0, 8, 1, 0, 0, 0, 1, 5}, 9, NN_EFORMAT, 0, 0, 0},
    {"rows 0", 3, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, 16, NN_ERANGE, 0, 0, 0},
    {"cols 4097", 3, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x10, 1}, 16, NN_ERANGE, 0, 0, 0},
    {"n 2^32-1", 1, {0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff}, 8, NN_ERANGE, 0, 0, 0},
};

Test(idx, memory_parser_follows_the_table)
{
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct nn_idx_header hdr;
        const uint8_t *data = (const uint8_t *)"x";
        char err[256] = "";
        int st = nn_idx_parse(&hdr, &data, c->bytes, c->len, c->ndims, "mem", err, sizeof(err));
        cr_expect_eq(st, c->status, "%s: status %d, expected %d (%s)", c->what, st, c->status, err);
        if (c->status == NN_OK && st == NN_OK) {
            cr_expect_eq(hdr.n, c->n, "%s", c->what);
            cr_expect_eq(hdr.rows, c->rows, "%s", c->what);
            cr_expect_eq(hdr.cols, c->cols, "%s", c->what);
            cr_expect_eq(data, c->bytes + hdr.header_bytes, "%s", c->what);
        } else {
            cr_expect_null(data, "%s: data pointer must be NULL on failure", c->what);
            cr_expect_eq(strncmp(err, "mem: ", 5), 0, "%s: err \"%s\"", c->what, err);
        }
    }
}
