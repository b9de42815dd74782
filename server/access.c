/*
 * access.c - request ids, access-log lines and CORS decisions (see access.h).
 */
#include "access.h"

#include "buf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void srv_ids_init(struct srv_ids *ids)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    /* splitmix64's finaliser: nearby times and pids give unrelated prefixes */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    ids->prefix = (uint32_t)x;
    atomic_init(&ids->next, 1);
}

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
}

void srv_request_id(struct srv_ids *ids, const char *client, char out[SRV_REQUEST_ID_MAX + 1])
{
    if (client) {
        size_t n = 0;
        while (n <= SRV_REQUEST_ID_MAX && client[n] && id_char(client[n]))
            n++;
        if (n > 0 && n <= SRV_REQUEST_ID_MAX && !client[n]) {
            memcpy(out, client, n + 1);
            return;
        }
    }
    unsigned long long k = (unsigned long long)atomic_fetch_add(&ids->next, 1);
    snprintf(out, SRV_REQUEST_ID_MAX + 1, "%08x-%llu", (unsigned)ids->prefix, k);
}

static size_t finish_line(char *out, size_t cap, int n)
{
    if (n < 0 || cap < 2) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    size_t len = (size_t)n < cap ? (size_t)n : cap - 1;
    if (len == 0)
        return 0;
    if (out[len - 1] != '\n') /* cut: still one line */
        out[len - 1] = '\n';
    return len;
}

static size_t text_line(char *out, size_t cap, const struct srv_access *a)
{
    char path[128];
    snprintf(path, sizeof path, "%s", a->path ? a->path : "");
    for (char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ' ')
            *p = '?';
    int n = snprintf(out, cap, "%s %s %d %llu %llu%s\n", a->method, path, a->status,
                     (unsigned long long)a->bytes, (unsigned long long)a->duration_us,
                     a->aborted ? " (aborted)" : "");
    return finish_line(out, cap, n);
}

static size_t json_line(char *out, size_t cap, const struct srv_access *a)
{
    time_t secs = (time_t)(a->unix_ms / 1000);
    struct tm tm;
    char when[80] = "";
    if (gmtime_r(&secs, &tm))
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(a->unix_ms % 1000));
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_printf(&b, "{\"time\":\"%s\",\"request_id\":", when);
    srv_buf_json_string(&b, a->request_id ? a->request_id : "");
    srv_buf_puts(&b, ",\"method\":");
    srv_buf_json_string(&b, a->method ? a->method : "");
    srv_buf_puts(&b, ",\"path\":");
    srv_buf_json_string(&b, a->path ? a->path : "");
    srv_buf_printf(&b, ",\"status\":%d,\"bytes\":%llu,\"duration_us\":%llu,\"remote\":", a->status,
                   (unsigned long long)a->bytes, (unsigned long long)a->duration_us);
    srv_buf_json_string(&b, a->remote ? a->remote : "");
    srv_buf_printf(&b, ",\"aborted\":%s}\n", a->aborted ? "true" : "false");
    int n = -1;
    if (!b.oom && b.len < cap) {
        memcpy(out, b.data, b.len + 1);
        n = (int)b.len;
    }
    srv_buf_free(&b);
    return finish_line(out, cap, n);
}

size_t srv_access_line(char *out, size_t cap, enum srv_log_format f, const struct srv_access *a)
{
    return f == SRV_LOG_JSON ? json_line(out, cap, a) : text_line(out, cap, a);
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
}

int srv_cors_origin_check(const char *origin, char *why, size_t n)
{
    if (!strcmp(origin, "*"))
        return 0;
    const char *p = origin;
    if (!strncasecmp(p, "https://", 8))
        p += 8;
    else if (!strncasecmp(p, "http://", 7))
        p += 7;
    else {
        snprintf(why, n, "not * or an origin such as https://example.org or "
                         "http://localhost:3000 (scheme http or https)");
        return -1;
    }
    const char *host = p;
    if (*p == '[') {
        while (*++p && (host_char(*p) || *p == ':'))
            ;
        if (*p != ']' || p == host + 1) {
            snprintf(why, n, "an IPv6 host must be [address]");
            return -1;
        }
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == host) {
            snprintf(why, n, "no host after the scheme");
            return -1;
        }
    }
    if (*p == ':') {
        const char *digits = ++p;
        long port = 0;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535 || (*p >= '0' && *p <= '9')) {
            snprintf(why, n, "the port is not in 1..65535");
            return -1;
        }
    }
    if (*p) {
        snprintf(why, n, "an origin is scheme://host[:port], with no path or trailing slash");
        return -1;
    }
    return 0;
}

const char *srv_cors_allow(const char *allowed, const char *origin)
{
    if (!allowed)
        return NULL;
    if (!strcmp(allowed, "*"))
        return "*";
    return origin && !strcasecmp(origin, allowed) ? allowed : NULL;
}
