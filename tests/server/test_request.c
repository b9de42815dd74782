/*
 * test_request.c - /predict body parsing (server/request.c), the JSON writer (server/buf.c) and
 * static-path rules (server/static.c), without HTTP: tables of input -> expected result.
 */
#include "server/buf.h"
#include "server/decode.h"
#include "server/predict.h"
#include "server/request.h"
#include "server/static.h"

#include "nn/nn.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "{"pixels":[v,v,...]}" with n copies of v (caller frees). */
static char *pixels_body(int n, const char *v, const char *extra)
{
    size_t len = 64 + (size_t)n * (strlen(v) + 1) + strlen(extra);
    char *s = malloc(len);
    cr_assert_not_null(s);
    size_t o = (size_t)sprintf(s, "{%s\"pixels\":[", extra);
    for (int i = 0; i < n; i++)
        o += (size_t)sprintf(s + o, "%s%s", i ? "," : "", v);
    sprintf(s + o, "]}");
    return s;
}

struct parse_case {
    const char *body; /* NULL: use pixels_body(n, v, extra) */
    int n;
    const char *v, *extra;
    int rc;           /* 0 or NN_EINVAL */
    const char *frag; /* in err, or NULL */
    int images, raw, fast;
};

static const struct parse_case parse_cases[] = {
    {NULL, 784, "0", "", 0, NULL, 1, 1, 1},
    {NULL, 784, "0.5", "\"model\":\"m1\",\"return_input\":true,", 0, NULL, 1, 1, 1},
    {NULL, 784, "1e-1", "", 0, NULL, 1, 1, 1},
    {NULL, 784, "0.1234567890123456789", "", 0, NULL, 1, 1, 1}, /* inexact: strtod */
    {NULL, 783, "0", "", NN_EINVAL, "pixels has 783 numbers, expected 784", 0, 0, 0},
    {NULL, 6, "1", "\"width\":3,\"height\":2,", 0, NULL, 1, 0, 1},
    {NULL, 5, "1", "\"width\":3,\"height\":2,", NN_EINVAL, "expected 6", 0, 0, 0},
    {NULL, 784, "1.5", "", NN_EINVAL, "value 1.5 at index 0 is outside [0,1]", 0, 0, 0},
    /* not JSON numbers, though cJSON's strtod would take them */
    {NULL, 784, "01", "", NN_EINVAL, "\"01,01,01,01,01,0\" is not a JSON number", 0, 0, 0},
    {NULL, 784, "00.5", "", NN_EINVAL, "is not a JSON number", 0, 0, 0},
    {NULL, 784, "5.", "", NN_EINVAL, "is not a JSON number", 0, 0, 0},
    {NULL, 784, ".5", "", NN_EINVAL, "invalid JSON", 0, 0, 0},
    {NULL, 784, "+1", "", NN_EINVAL, "invalid JSON", 0, 0, 0},
    {NULL, 784, "1e", "", NN_EINVAL, "is not a JSON number", 0, 0, 0},
    {NULL, 784, "0.000000000000000000000000000000000000000000000000000000000000001", "", NN_EINVAL,
     "is not a JSON number of at most 63 characters", 0, 0, 0},
    /* strings: escapes and UTF-8 are read by the fast path; \u0000 and bad UTF-8 by neither */
    {NULL, 784, "0", "\"model\":\"m\\u0031\\/\",", 0, NULL, 1, 1, 1},
    {NULL, 784, "0", "\"model\":\"\\ud83d\\ude00 \xc3\xa9\",", 0, NULL, 1, 1, 1},
    {NULL, 784, "0", "\"model\":\"mnist-cnn\\u0000x\",", NN_EINVAL,
     "strings must not contain \\u0000", 0, 0, 0},
    {NULL, 784, "0", "\"model\":\"\xff\xfe\",", NN_EINVAL, "not valid UTF-8", 0, 0, 0},
    {NULL, 784, "0", "\"model\":\"\xed\xa0\x80\",", NN_EINVAL, "not valid UTF-8", 0, 0, 0},
    {NULL, 784, "0", "\"model\":\"\\ud800\",", NN_EINVAL, "invalid JSON", 0, 0, 0},
    {NULL, 784, "0", "\"model\":\"a\\x\",", NN_EINVAL, "unknown escape", 0, 0, 0},
    {NULL, 784, "0", "\v", NN_EINVAL, "control character 0x0b outside a string", 0, 0, 0},
    {"\xef\xbb\xbf{\"width\":1,\"height\":1,\"pixels\":[0]}", 0, NULL, NULL, 0, NULL, 1, 0, 1},
    {NULL, 784, "0", "\"x\":1,", NN_EINVAL, "unknown field \"x\"", 0, 0, 0},
    {"", 0, NULL, NULL, NN_EINVAL, "empty body", 0, 0, 0},
    {"   ", 0, NULL, NULL, NN_EINVAL, "invalid JSON", 0, 0, 0},
    {"[]", 0, NULL, NULL, NN_EINVAL, "must be a JSON object", 0, 0, 0},
    {"{}", 0, NULL, NULL, NN_EINVAL, "missing \"pixels\"", 0, 0, 0},
    {"{\"pixels\":[]}", 0, NULL, NULL, NN_EINVAL, "pixels has 0 numbers", 0, 0, 0},
    {"{\"pixels\":[NaN]}", 0, NULL, NULL, NN_EINVAL, "invalid JSON", 0, 0, 0},
    {"{\"pixels\":[1e400]}", 0, NULL, NULL, NN_EINVAL, "not a finite number", 0, 0, 0},
    {"{\"pixels\":[true]}", 0, NULL, NULL, NN_EINVAL, "index 0 is not a number", 0, 0, 0},
    {"{\"width\":0,\"height\":1,\"pixels\":[0]}", 0, NULL, NULL, NN_EINVAL,
     "width must be an integer in 1..2048", 0, 0, 0},
    {"{\"width\":1,\"height\":1,\"pixels\":[0.25]}", 0, NULL, NULL, 0, NULL, 1, 0, 1},
    {"{\"images\":[{\"width\":1,\"height\":1,\"pixels\":[0]},{\"width\":1,\"height\":1,"
     "\"pixels\":[1]}]}",
     0, NULL, NULL, 0, NULL, 2, 0, 1},
    {"{\"images\":[[[[[0]]]]]}", 0, NULL, NULL, NN_EINVAL, "nested deeper than 4", 0, 0, 0},
    {"{\"images\":{}}", 0, NULL, NULL, NN_EINVAL, "images must be an array", 0, 0, 0},
    {"{\"images\":[]}", 0, NULL, NULL, NN_EINVAL, "images is empty", 0, 0, 0},
    {"{\"pixels\":[0]} {}", 0, NULL, NULL, NN_EINVAL, "unexpected data after the value", 0, 0, 0},
    {"{\"model\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"pixels\":[0]}",
     0, NULL, NULL, NN_EINVAL, "model must be a string of at most 63 bytes", 0, 0, 0},
};

Test(request, table_of_bodies_gives_the_expected_result_and_message)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const struct parse_case *c = &parse_cases[i];
        char *owned = c->body ? NULL : pixels_body(c->n, c->v, c->extra);
        const char *body = c->body ? c->body : owned;
        struct srv_request req;
        char err[512] = "";
        int rc = srv_request_parse_json(&req, body, strlen(body), 0, err, sizeof err);
        cr_expect_eq(rc, c->rc, "case %zu: rc %d, want %d (%s)", i, rc, c->rc, err);
        if (c->frag)
            cr_expect(strstr(err, c->frag) != NULL, "case %zu: error \"%s\" lacks \"%s\"", i, err,
                      c->frag);
        if (rc == 0) {
            cr_expect_eq(req.n, c->images, "case %zu: %d images", i, req.n);
            cr_expect_eq(req.images[0].raw, c->raw, "case %zu: raw", i);
            cr_expect_eq(req.fast, c->fast, "case %zu: fast path %d", i, req.fast);
        }
        srv_request_free(&req);
        free(owned);
    }
}

Test(request, defaults_from_the_top_level_apply_to_batch_entries)
{
    const char *body = "{\"model\":\"b\",\"return_input\":true,\"images\":["
                       "{\"width\":1,\"height\":1,\"pixels\":[0]},"
                       "{\"width\":1,\"height\":1,\"pixels\":[1],\"model\":\"c\","
                       "\"return_input\":false}]}";
    for (unsigned flags = 0; flags < 2; flags++) {
        struct srv_request req;
        char err[256];
        cr_assert_eq(srv_request_parse_json(&req, body, strlen(body), flags, err, sizeof err), 0,
                     "%s", err);
        cr_expect(req.batch);
        cr_expect_str_eq(req.images[0].model, "b");
        cr_expect_eq(req.images[0].return_input, 1);
        cr_expect_str_eq(req.images[1].model, "c");
        cr_expect_eq(req.images[1].return_input, 0);
        cr_expect_eq(req.images[1].pixels[0], 1.0f);
        srv_request_free(&req);
    }
}

Test(request, fast_path_and_cjson_give_bit_identical_pixels)
{
    static const char *const values[] = {"0",
                                         "1",
                                         "0.5",
                                         "0.1",
                                         "0.333",
                                         "0.001",
                                         "1e-3",
                                         "1E-3",
                                         "0.9999999",
                                         "-0",
                                         "0.0",
                                         "123e-5",
                                         "0.00000000000000000001",
                                         "0.30000000000000004"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char *body = pixels_body(784, values[i], "");
        struct srv_request a, b;
        char err[256];
        int ra = srv_request_parse_json(&a, body, strlen(body), 0, err, sizeof err);
        int rb = srv_request_parse_json(&b, body, strlen(body), SRV_PARSE_NO_FAST, err, sizeof err);
        cr_assert_eq(ra, 0, "%s: %s", values[i], err);
        cr_assert_eq(rb, 0, "%s: %s", values[i], err);
        cr_expect_eq(memcmp(a.images[0].pixels, b.images[0].pixels, 784 * sizeof(float)), 0,
                     "%s parsed differently", values[i]);
        srv_request_free(&a);
        srv_request_free(&b);
        free(body);
    }
}

/* The model names the fast path decodes are the bytes cJSON decodes. */
Test(request, escaped_model_names_decode_the_same_on_both_paths)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"m\\u0031", "m1"},
        {"\\u00e9\\u20ac", "\xc3\xa9\xe2\x82\xac"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
        {"a\\\"b\\\\c\\/d\\t", "a\"b\\c/d\t"},
        {"\xe2\x82\xac", "\xe2\x82\xac"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[128];
        snprintf(extra, sizeof extra, "\"model\":\"%s\",", cases[i].json);
        char *body = pixels_body(784, "0", extra);
        for (unsigned flags = 0; flags < 2; flags++) {
            struct srv_request req;
            char err[256];
            cr_assert_eq(srv_request_parse_json(&req, body, strlen(body), flags, err, sizeof err),
                         0, "%s: %s", cases[i].json, err);
            cr_expect_str_eq(req.images[0].model, cases[i].want, "case %zu, flags %u", i, flags);
            cr_expect_eq(req.fast, flags == 0, "case %zu: fast %d", i, req.fast);
            srv_request_free(&req);
        }
        free(body);
    }
}

/* Issue 21: a large body the fast path gives up on never reaches cJSON (whose tree of 4 Mi
 * numbers took 400 MB and 1.5 s); the fast path's note is the error. A valid body with a
 * number the fast path used to give up on is read by it. */
Test(request, a_large_invalid_body_is_answered_without_a_tree)
{
    const int n = 1 << 20;
    char *body = pixels_body(n, "1", "\"x\":1,");
    struct srv_request req;
    char err[512];
    int rc = srv_request_parse_json(&req, body, strlen(body), 0, err, sizeof err);
    cr_expect_eq(rc, NN_EINVAL);
    cr_expect(strstr(err, "invalid request at byte 1: an unknown or repeated field \"x\"; "
                          "accepted: pixels") != NULL,
              "%s", err);
    rc = srv_request_parse_json(&req, body, strlen(body), SRV_PARSE_NO_FAST, err, sizeof err);
    cr_expect_eq(rc, NN_EINVAL);
    cr_expect(strstr(err, "an unknown or repeated field \"x\"") != NULL, "%s", err);
    free(body);

    /* 1024 x 1024 pixels, the last one written with more digits than an exact conversion
     * takes: read by the fast path, identically on the general one. */
    body = pixels_body(n, "0.5", "\"width\":1024,\"height\":1024,");
    char *last = strrchr(body, ']');
    size_t at = (size_t)(last - body) - 3;
    memcpy(body + at, "0.1", 3);
    char *big = malloc(strlen(body) + 32);
    cr_assert_not_null(big);
    sprintf(big, "%.*s0.30000000000000004%s", (int)at, body, body + at + 3);
    for (unsigned flags = 0; flags < 2; flags++) {
        rc = srv_request_parse_json(&req, big, strlen(big), flags, err, sizeof err);
        cr_assert_eq(rc, 0, "%s", err);
        cr_expect_eq(req.fast, flags == 0);
        cr_expect_eq(req.images[0].pixels[n - 1], (float)0.30000000000000004);
        cr_expect_eq(req.images[0].pixels[0], 0.5f);
        srv_request_free(&req);
    }
    /* the same with a syntax error at the very end */
    big[strlen(big) - 1] = ']';
    rc = srv_request_parse_json(&req, big, strlen(big), 0, err, sizeof err);
    cr_expect_eq(rc, NN_EINVAL);
    cr_expect(strstr(err, "expected ',' or '}' after a field") != NULL, "%s", err);
    free(big);
    free(body);
}

Test(request, nothing_is_read_past_the_given_length)
{
    /* The body is cut before its closing bracket: the bytes after len must not be seen. */
    char *body = pixels_body(784, "0", "");
    size_t len = strlen(body) - 2;
    struct srv_request req;
    char err[256];
    cr_expect_eq(srv_request_parse_json(&req, body, len, 0, err, sizeof err), NN_EINVAL);
    free(body);
}

/* ---------------------------------------------------------------------------------------- */

Test(buf, numbers_are_formatted_as_short_valid_json)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {0.5, "0.5"},
        {0.123456789, "0.123457"},
        {0.99999999, "1"},
        {1e-7, "1e-7"},
        {3.14159e-12, "3.14159e-12"},
        {0.000123456, "0.000123456"},
        {NAN, "null"},
        {INFINITY, "null"},
        {2.5, "2.5"},
        {0.1, "0.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct srv_buf b;
        srv_buf_init(&b);
        srv_buf_num(&b, cases[i].v);
        cr_expect_str_eq(b.data, cases[i].want, "%.17g", cases[i].v);
        if (isfinite(cases[i].v) && cases[i].v > 0 && cases[i].v <= 1)
            cr_expect(fabs(strtod(b.data, NULL) - cases[i].v) <= 5e-6 * cases[i].v + 1e-9);
        srv_buf_free(&b);
    }
}

Test(buf, every_probability_round_trips_to_six_digits)
{
    for (int i = 1; i < 200000; i++) {
        double v = (double)i / 200000.0 * ((i % 3) ? 1.0 : 1e-6);
        struct srv_buf b;
        srv_buf_init(&b);
        srv_buf_num(&b, v);
        double back = strtod(b.data, NULL);
        cr_assert(fabs(back - v) <= v * 5.000001e-6, "%.17g -> %s", v, b.data);
        srv_buf_free(&b);
    }
}

Test(buf, inputs_have_three_decimals_and_strings_are_escaped)
{
    struct srv_buf b;
    srv_buf_init(&b);
    const float v[] = {0.0f, 1.0f, 0.5f, 0.125f, 0.1004f, 0.9996f, -1.0f, 2.0f};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        srv_buf_fixed3(&b, v[i]);
        srv_buf_putc(&b, ' ');
    }
    cr_expect_str_eq(b.data, "0 1 0.5 0.125 0.1 1 0 1 ");
    srv_buf_free(&b);
    srv_buf_json_string(&b, "a\"b\\c\n\x01");
    cr_expect_str_eq(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\"");
    srv_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------- */

Test(static_files, path_rules_reject_traversal_and_hidden_names)
{
    static const struct {
        const char *path;
        int ok;
    } cases[] = {
        {"/", 1},          {"/index.html", 1}, {"/sub/", 1},        {"/sub/a.js", 1}, {"", 0},
        {"index.html", 0}, {"/..", 0},         {"/../x", 0},        {"/a/../x", 0},   {"/a/./x", 0},
        {"//x", 0},        {"/a//x", 0},       {"/.git/config", 0}, {"/a\\..\\x", 0}, {"/a\x01", 0},
        {"/.", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(srv_static_path_ok(cases[i].path), cases[i].ok, "%s", cases[i].path);
}

Test(static_files, mime_types_come_from_the_extension)
{
    cr_expect_str_eq(srv_mime_type("/a/index.html"), "text/html; charset=utf-8");
    cr_expect_str_eq(srv_mime_type("x.CSS"), "text/css; charset=utf-8");
    cr_expect_str_eq(srv_mime_type("app.js"), "text/javascript; charset=utf-8");
    cr_expect_str_eq(srv_mime_type("i.svg"), "image/svg+xml");
    cr_expect_str_eq(srv_mime_type("f.ico"), "image/x-icon");
    cr_expect_str_eq(srv_mime_type("noext"), "application/octet-stream");
    cr_expect_str_eq(srv_mime_type("dir.d/noext"), "application/octet-stream");
}

Test(predict, content_types_are_dispatched_by_media_type)
{
    cr_expect_str_eq(srv_predict_body_kind("application/json"), "json");
    cr_expect_str_eq(srv_predict_body_kind("Application/JSON ; charset=utf-8"), "json");
    cr_expect_str_eq(srv_predict_body_kind("image/png"), "image");
    cr_expect_str_eq(srv_predict_body_kind("application/octet-stream"), "image");
    cr_expect_null(srv_predict_body_kind("text/plain"));
    cr_expect_null(srv_predict_body_kind("application/jsonx"));
    cr_expect_null(srv_predict_body_kind(NULL));
}

Test(decode, images_are_checked_before_decoding)
{
    float *px = NULL;
    int w, h;
    char err[256];
    cr_expect_eq(srv_image_decode(&px, &w, &h, "", 0, err, sizeof err), NN_EFORMAT);
    cr_expect_eq(srv_image_decode(&px, &w, &h, "hello", 5, err, sizeof err), NN_EFORMAT);
    /* A BMP header claiming 100000 x 1 pixels: rejected from the header alone. */
    unsigned char bmp[54] = {'B', 'M'};
    bmp[10] = 54;
    bmp[14] = 40;
    bmp[18] = 0xa0, bmp[19] = 0x86, bmp[20] = 0x01; /* width 100000 */
    bmp[22] = 1;                                    /* height 1 */
    bmp[26] = 1;
    bmp[28] = 24;
    int rc = srv_image_decode(&px, &w, &h, bmp, sizeof bmp, err, sizeof err);
    cr_expect(rc == NN_ERANGE || rc == NN_EFORMAT, "rc %d: %s", rc, err);
    cr_expect_null(px);
}

Test(decode, a_jpeg_huffman_table_with_over_256_symbols_is_refused)
{
    /* stb_image 2.27 wrote past its tables on the heap for this (found by fuzz_image); JPEGs
     * now go to libjpeg-turbo, which refuses it too (here: no frame header before the data). */
    static const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x02, 0x11, 0x01,
                                        0x03, 0x11, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x00,
                                        0x00, 0xa2, 0x8a, 0x28, 0x03, 0xff, 0xd9};
    float *px = NULL;
    int w, h;
    char err[256];
    cr_expect_eq(srv_image_decode(&px, &w, &h, jpg, sizeof jpg, err, sizeof err), NN_EFORMAT);
    cr_expect(strstr(err, "jpeg") != NULL, "%s", err);
    cr_expect_null(px);
}

/* Issue 21: a message quoting a client's bytes (an unknown model named in the query) was
 * echoed raw, so invalid UTF-8 made the answer invalid JSON. */
Test(buf, json_strings_keep_utf8_and_replace_anything_else)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "\"plain\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"\xff\xfe" "ab", "\"\\ufffd\\ufffdab\""},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},             /* overlong '/' */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},   /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
        {"cut \xe2\x82", "\"cut \\ufffd\\ufffd\""},      /* a sequence cut by the end */
        {"q\"b\\\x01", "\"q\\\"b\\\\\\u0001\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct srv_buf b;
        srv_buf_init(&b);
        srv_buf_json_string(&b, cases[i].in);
        cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
        srv_buf_free(&b);
    }
    cr_expect_eq(srv_utf8_len("\xe2\x82\xac", 2), 0, "a sequence longer than what is there");
    cr_expect_eq(srv_utf8_len("\xe2\x82\xac", 3), 3);
    cr_expect_eq(srv_utf8_len("", 1), 0);
}
