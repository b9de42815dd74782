/* test_samples.c - the samples database (server/samples.h) without HTTP: round trips, order,
 * filters, deletion, the size cap, schema versions and the stored image's scaling. */
#include "server/samples.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/digits-test-samples-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static struct srv_samples *open_db(const char *name, int64_t max)
{
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct srv_samples *s = NULL;
    cr_assert_eq(srv_samples_open(&s, path, max, err, sizeof err), SRV_SAMPLES_OK, "%s", err);
    return s;
}

static struct srv_sample sample(int label, float mark)
{
    struct srv_sample sm;
    memset(&sm, 0, sizeof sm);
    sm.label = label;
    sm.prediction = (label + 1) % 10;
    sm.has_probabilities = 1;
    for (int k = 0; k < 10; k++)
        sm.probabilities[k] = k == sm.prediction ? 0.91f : 0.01f;
    for (int k = 0; k < 784; k++)
        sm.input[k] = (float)(k % 7) / 6.0f * mark;
    snprintf(sm.model, sizeof sm.model, "mnist-cnn");
    return sm;
}

TestSuite(samples, .init = make_dir, .fini = remove_dir);

Test(samples, a_sample_reads_back_exactly_and_survives_reopening)
{
    char err[512];
    struct srv_samples *s = open_db("a.db", 0);
    struct srv_sample in = sample(3, 0.5f), out;
    int64_t id = 0;
    cr_assert_eq(srv_samples_add(s, &in, "PNGDATA", 7, &id, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(id, 1);
    srv_samples_close(s);
    s = open_db("a.db", 0);
    cr_assert_eq(srv_samples_get(s, id, &out, err, sizeof err), SRV_SAMPLES_OK, "%s", err);
    cr_expect_eq(out.label, 3);
    cr_expect_eq(out.prediction, 4);
    cr_expect_eq(memcmp(out.input, in.input, sizeof in.input), 0, "the 784 floats bit for bit");
    cr_expect_eq(memcmp(out.probabilities, in.probabilities, sizeof in.probabilities), 0);
    cr_expect_str_eq(out.model, "mnist-cnn");
    cr_expect_str_eq(out.route, "/samples");
    cr_expect_gt(out.created_unix, 1700000000);
    void *png = NULL;
    size_t len = 0;
    cr_assert_eq(srv_samples_original(s, id, &png, &len, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(len, 7);
    cr_expect_eq(memcmp(png, "PNGDATA", 7), 0);
    free(png);
    cr_expect_eq(srv_samples_get(s, 2, &out, err, sizeof err), SRV_SAMPLES_NOT_FOUND);
    cr_expect_str_eq(err, "no sample 2");
    srv_samples_close(s);
}

struct seen {
    int64_t ids[16];
    int n;
};

static int collect(void *ctx, const struct srv_sample *sm)
{
    struct seen *v = ctx;
    v->ids[v->n++] = sm->id;
    return 0;
}

Test(samples, lists_are_in_id_order_filtered_and_paged_and_deletion_is_final)
{
    char err[512];
    struct srv_samples *s = open_db("b.db", 0);
    int64_t id;
    for (int i = 0; i < 8; i++) {
        struct srv_sample sm = sample(i % 2, 1.0f);
        cr_assert_eq(srv_samples_add(s, &sm, NULL, 0, &id, err, sizeof err), SRV_SAMPLES_OK);
    }
    int64_t total = 0;
    cr_assert_eq(srv_samples_count(s, 1, &total, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(total, 4);
    struct seen v = {{0}, 0};
    cr_assert_eq(srv_samples_list(s, 1, 2, 1, collect, &v, err, sizeof err), SRV_SAMPLES_OK);
    cr_assert_eq(v.n, 2);
    cr_expect(v.ids[0] == 4 && v.ids[1] == 6, "%lld %lld", (long long)v.ids[0], (long long)v.ids[1]);
    cr_expect_eq(srv_samples_delete(s, 4, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(srv_samples_delete(s, 4, err, sizeof err), SRV_SAMPLES_NOT_FOUND);
    cr_assert_eq(srv_samples_count(s, -1, &total, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(total, 7);
    void *png = (void *)1;
    size_t len = 1;
    cr_expect_eq(srv_samples_original(s, 2, &png, &len, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect(png == NULL && len == 0, "no image stored");
    srv_samples_close(s);
}

Test(samples, the_size_cap_refuses_writes_past_it)
{
    char err[512];
    struct srv_samples *s = open_db("c.db", 64 * 1024);
    int rc = SRV_SAMPLES_OK, n = 0;
    int64_t id;
    while (rc == SRV_SAMPLES_OK && n < 100) {
        struct srv_sample sm = sample(n % 10, 1.0f);
        rc = srv_samples_add(s, &sm, NULL, 0, &id, err, sizeof err);
        n += rc == SRV_SAMPLES_OK;
    }
    cr_expect_eq(rc, SRV_SAMPLES_FULL, "%s", err);
    cr_expect(n > 5 && n < 20, "%d samples fit in 64 KiB", n);
    cr_expect_not_null(strstr(err, "--samples-max"), "%s", err);
    srv_samples_close(s);
}

Test(samples, a_newer_schema_is_refused_and_an_empty_file_is_made_current)
{
    char path[128], err[512];
    struct srv_samples *s = open_db("d.db", 0);
    srv_samples_close(s);
    snprintf(path, sizeof path, "sqlite3 '%s/d.db' 'PRAGMA user_version = 7'", dir);
    cr_assert_eq(system(path), 0);
    snprintf(path, sizeof path, "%s/d.db", dir);
    s = (struct srv_samples *)1;
    cr_expect_eq(srv_samples_open(&s, path, 0, err, sizeof err), SRV_SAMPLES_ERROR);
    cr_expect_null(s);
    cr_expect_not_null(strstr(err, "schema version 7 was written by a newer digits-server"), "%s",
                       err);
    snprintf(path, sizeof path, "%s/e.db", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    s = open_db("e.db", 0);
    int64_t total = -1;
    cr_expect_eq(srv_samples_count(s, -1, &total, err, sizeof err), SRV_SAMPLES_OK);
    cr_expect_eq(total, 0);
    srv_samples_close(s);
}

Test(samples, the_stored_image_is_box_averaged_to_at_most_280_pixels)
{
    int w = 1000, h = 30;
    float *ink = calloc((size_t)w * (size_t)h, sizeof *ink);
    cr_assert_not_null(ink);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < 4; x++)
            ink[(size_t)y * (size_t)w + (size_t)x] = 1.0f; /* the first whole block is ink */
    size_t len = 0;
    unsigned char *png = srv_samples_png(ink, w, h, &len);
    cr_assert_not_null(png);
    cr_assert_gt(len, 33);
    cr_expect_eq(memcmp(png + 1, "PNG", 3), 0);
    unsigned ow = (unsigned)png[16] << 24 | (unsigned)png[17] << 16 | png[18] << 8 | png[19];
    unsigned oh = (unsigned)png[20] << 24 | (unsigned)png[21] << 16 | png[22] << 8 | png[23];
    cr_expect_eq(ow, 250, "1000 / 4");
    cr_expect_eq(oh, 8, "ceil(30 / 4)");
    free(png);
    png = srv_samples_png(ink, 28, 28, &len);
    cr_assert_not_null(png);
    cr_expect_eq(png[19], 28, "small images keep their size");
    free(png);
    free(ink);
}
