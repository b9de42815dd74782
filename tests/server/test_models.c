/*
 * test_models.c - the MODEL object of GET /models (server/models.c, srv_model_json) for a model
 * built here: floats as the shortest decimal that reads back, the command without the absolute
 * paths of the machine that trained it; and srv_buf_f32/_f64 over many values.
 */
#include "server/buf.h"
#include "server/models.h"

#include "nn/nn.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *f32_text(float v)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_f32(&b, v);
    cr_assert_not_null(b.data);
    return srv_buf_steal(&b, NULL);
}

/* Significant digits of a number's text: "0.0025" 2, "1500000" 2, "1.25e-07" 3. */
static int significant(const char *t)
{
    char m[64];
    snprintf(m, sizeof m, "%.*s", (int)strcspn(t, "e"), t);
    char *s = m + strspn(m, "-0."), *end = s + strlen(s);
    if (!strchr(m, '.'))
        while (end > s && end[-1] == '0') /* trailing zeros of a whole number */
            end--;
    int n = 0;
    for (char *c = s; c < end; c++)
        n += *c >= '0' && *c <= '9';
    return n;
}

Test(buf, a_float_is_written_as_the_shortest_decimal_that_reads_back)
{
    static const struct {
        float v;
        const char *want;
    } cases[] = {
        {0.002f, "0.002"},
        {0.0003f, "0.0003"},
        {0.9f, "0.9"},
        {0.1f, "0.1"},
        {0.9957f, "0.9957"},
        {1.0f / 3.0f, "0.33333334"},
        {16777216.0f, "16777216"},
        {1e-7f, "1e-07"},
        {0.0f, "0"},
        {-2.5f, "-2.5"},
        {10.0f, "10"},
        {1.5e6f, "1500000"},
        {3e9f, "3e+09"},
        {NAN, "null"},
        {-INFINITY, "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = f32_text(cases[i].v);
        cr_expect_str_eq(t, cases[i].want, "%.9g", (double)cases[i].v);
        free(t);
    }
}

/* Over floats of every magnitude: the text reads back to the same float, and one digit fewer
 * would not (but for whole numbers below 10^9, written out in full). */
Test(buf, every_float_round_trips_and_no_shorter_text_would)
{
    uint32_t x = 12345;
    for (int i = 0; i < 100000; i++) {
        x = x * 1664525u + 1013904223u;
        float v;
        uint32_t bits = (x & 0x807fffffu) | ((uint32_t)(1 + (i % 253)) << 23); /* finite */
        memcpy(&v, &bits, sizeof v);
        char *t = f32_text(v), shorter[400];
        cr_assert(strtof(t, NULL) == v, "%a -> %s", (double)v, t);
        cr_assert_eq(t[strspn(t, "-0123456789.e+")], '\0', "%s is a JSON number", t);
        int digits = significant(t);
        if (digits > 1 && strpbrk(t, ".e")) { /* whole numbers are written out in full */
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, (double)v);
            cr_assert(strtof(shorter, NULL) != v, "%s is shorter than %s", shorter, t);
        }
        free(t);
    }
}

Test(buf, a_double_is_written_as_the_shortest_decimal_that_reads_back)
{
    const double v[] = {230.5507890399895, 0.1, 1e300, 2.0 / 3.0};
    const char *want[] = {"230.5507890399895", "0.1", "1e+300", "0.6666666666666666"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct srv_buf b;
        srv_buf_init(&b);
        srv_buf_f64(&b, v[i]);
        cr_expect_str_eq(b.data, want[i]);
        cr_expect(strtod(b.data, NULL) == v[i]);
        srv_buf_free(&b);
    }
}

/* A dense:4,dense:10 model on 28x28 trained "somewhere else": absolute paths in its command. */
static nn_model *model_with_meta(void)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    struct nn_rng rng;
    struct nn_meta meta;
    nn_model *m = NULL;
    int n;
    cr_assert_eq(nn_arch_parse(l, NN_MAX_LAYERS, &n, "dense:4,dense:10", NN_LAYER_RELU, NULL, 0),
                 NN_OK);
    nn_rng_seed(&rng, 1);
    cr_assert_eq(nn_model_new(&m, 1, 28, 28, l, n, &rng, NULL, 0), NN_OK);
    memset(&meta, 0, sizeof meta);
    snprintf(meta.name, sizeof meta.name, "far");
    snprintf(meta.command, sizeof meta.command,
             "/home/alice/digits/build/digits-train --data /home/alice/mnist --lr 0.002 "
             "--init=/home/alice/digits/build/base.model --out '/tmp/a b/far.model'");
    meta.lr = 0.002f, meta.momentum = 0.9f, meta.weight_decay = 0.0005f;
    meta.test_acc = 0.9957f, meta.train_loss = NAN, meta.train_seconds = 12.25;
    cr_assert_eq(nn_model_set_meta(m, &meta), NN_OK);
    return m;
}

Test(models, model_json_has_short_floats_and_no_absolute_paths)
{
    nn_model *m = model_with_meta();
    char *json = NULL;
    size_t len = 0;
    cr_assert_eq(srv_model_json(m, "far", "/srv/models/far.model", &json, &len), 0);
    cr_assert_not_null(json);
    cr_expect(strstr(json, "\"lr\":0.002,"), "%s", json);
    cr_expect(strstr(json, "\"momentum\":0.9,"), "%s", json);
    cr_expect(strstr(json, "\"weight_decay\":0.0005,"), "%s", json);
    cr_expect(strstr(json, "\"test_accuracy\":0.9957"), "%s", json);
    cr_expect(strstr(json, "\"train_loss\":null"), "%s", json);
    cr_expect(strstr(json, "\"train_seconds\":12.25,"), "%s", json);
    cJSON *root = cJSON_ParseWithLength(json, len);
    cr_assert_not_null(root, "valid JSON: %s", json);
    const cJSON *training = cJSON_GetObjectItemCaseSensitive(root, "training");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(training, "command");
    cr_assert(cJSON_IsString(cmd));
    cr_expect_str_eq(cmd->valuestring, "digits-train --data mnist --lr 0.002 --init=base.model "
                                       "--out far.model");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(root, "file")->valuestring, "far.model");
    cJSON_Delete(root);
    free(json);
    nn_model_free(m);
}
