/* test_access.c - request ids, access-log lines and the CORS origin rules (server/access.h). */
#include "server/access.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(access, a_sane_client_request_id_is_kept_and_anything_else_replaced)
{
    struct srv_ids ids;
    srv_ids_init(&ids);
    char id[SRV_REQUEST_ID_MAX + 1];
    srv_request_id(&ids, "req-42_a.b:c", id);
    cr_expect_str_eq(id, "req-42_a.b:c");
    char long_ok[SRV_REQUEST_ID_MAX + 1];
    memset(long_ok, 'a', SRV_REQUEST_ID_MAX);
    long_ok[SRV_REQUEST_ID_MAX] = '\0';
    srv_request_id(&ids, long_ok, id);
    cr_expect_str_eq(id, long_ok);
    char too_long[SRV_REQUEST_ID_MAX + 2];
    memset(too_long, 'a', SRV_REQUEST_ID_MAX + 1);
    too_long[SRV_REQUEST_ID_MAX + 1] = '\0';
    const char *bad[] = {NULL, "", "a b", "a\r\nSet-Cookie: x", "caf\xc3\xa9", "\"q\"", too_long};
    char first[SRV_REQUEST_ID_MAX + 1] = "";
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        srv_request_id(&ids, bad[i], id);
        unsigned prefix = 0;
        unsigned long long k = 0;
        char tail = 0;
        cr_expect_eq(sscanf(id, "%8x-%llu%c", &prefix, &k, &tail), 2, "'%s' is hex-counter", id);
        cr_expect_eq(strlen(id) > 9 && id[8] == '-', 1, "'%s'", id);
        cr_expect_str_neq(id, first, "ids are not repeated");
        strcpy(first, id);
    }
}

Test(access, text_lines_keep_their_format_and_hide_control_characters)
{
    char line[256];
    struct srv_access a = {.method = "GET", .path = "/a b\n\x01", .status = 404, .bytes = 22,
                           .duration_us = 57, .request_id = "x", .remote = "127.0.0.1"};
    size_t n = srv_access_line(line, sizeof line, SRV_LOG_TEXT, &a);
    cr_expect_str_eq(line, "GET /a?b?? 404 22 57\n");
    cr_expect_eq(n, strlen(line));
    a.aborted = 1;
    a.status = 0;
    srv_access_line(line, sizeof line, SRV_LOG_TEXT, &a);
    cr_expect_str_eq(line, "GET /a?b?? 0 22 57 (aborted)\n");
    /* cut short, still one line */
    n = srv_access_line(line, 8, SRV_LOG_TEXT, &a);
    cr_expect_eq(n, 7);
    cr_expect_eq(line[6], '\n');
}

Test(access, json_lines_are_one_valid_object_with_every_field)
{
    char line[1024];
    char path[128];
    memset(path, 0xff, sizeof path - 1); /* not UTF-8 at all */
    path[0] = '/';
    path[1] = '"';
    path[sizeof path - 1] = '\0';
    struct srv_access a = {.method = "POST", .path = path, .status = 200, .bytes = 123,
                           .duration_us = 4567, .request_id = "r-1", .remote = "::1",
                           .aborted = 1, .unix_ms = 1796428800123LL};
    size_t n = srv_access_line(line, sizeof line, SRV_LOG_JSON, &a);
    cr_assert(n > 0 && line[n - 1] == '\n');
    cr_expect_eq(memchr(line, '\n', n - 1), NULL, "one line");
    cJSON *j = cJSON_ParseWithLength(line, n);
    cr_assert_not_null(j, "%s", line);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "time")->valuestring, "2026-12-05T00:00:00.123Z");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "request_id")->valuestring, "r-1");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "POST");
    cr_expect_eq(strncmp(cJSON_GetObjectItem(j, "path")->valuestring, "/\"", 2), 0);
    cr_expect_eq(cJSON_GetObjectItem(j, "status")->valueint, 200);
    cr_expect_eq(cJSON_GetObjectItem(j, "bytes")->valueint, 123);
    cr_expect_eq(cJSON_GetObjectItem(j, "duration_us")->valueint, 4567);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "remote")->valuestring, "::1");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "aborted")));
    cJSON_Delete(j);
}

Test(access, cors_origins_are_checked_and_matched)
{
    char why[160];
    const char *good[] = {"*", "https://example.org", "http://localhost:3000", "http://[::1]:8080",
                          "HTTPS://Example.ORG:443", "http://a-b.c"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect_eq(srv_cors_origin_check(good[i], why, sizeof why), 0, "%s: %s", good[i], why);
    const char *badv[] = {"", "example.org", "ftp://x", "https://", "https://x/", "https://x/p",
                          "https://x:0", "https://x:65536", "https://x:", "http://[]",
                          "http://a b", "https://x:80x", "null"};
    for (size_t i = 0; i < sizeof badv / sizeof *badv; i++)
        cr_expect_eq(srv_cors_origin_check(badv[i], why, sizeof why), -1, "'%s' refused",
                     badv[i]);
    cr_expect_null(srv_cors_allow(NULL, "https://a"));
    cr_expect_str_eq(srv_cors_allow("*", NULL), "*");
    cr_expect_str_eq(srv_cors_allow("https://a.org", "https://A.org"), "https://a.org");
    cr_expect_null(srv_cors_allow("https://a.org", "https://a.org.evil"));
    cr_expect_null(srv_cors_allow("https://a.org", "http://a.org"));
    cr_expect_null(srv_cors_allow("https://a.org", NULL));
}
