/*
 * main.c - digits-server: flags, signals, start and graceful stop.
 *
 * Signals are blocked before the daemon's threads start (they inherit the mask) and taken
 * synchronously by the main thread with sigwaitinfo, so no code runs in a signal handler:
 * SIGHUP reloads the models here; SIGINT/SIGTERM first drain for --drain-seconds (health
 * checks say not ready, everything else is served), then stop accepting, let the requests in
 * flight finish and exit 0.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "http.h"
#include "metrics.h"
#include "models.h"
#include "static.h"

#include "nn/nn.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef DIGITS_VERSION
#define DIGITS_VERSION NN_VERSION
#endif

#ifndef DIGITS_DATADIR
#define DIGITS_DATADIR "/usr/local/share/digits"
#endif

static const char usage[] =
    "usage: digits-server [options]\n"
    "\n"
    "Serves handwritten-digit predictions over HTTP (see server/API.md).\n"
    "\n"
    "  --model FILE        model to serve; repeat for several, the first is the default.\n"
    "                      With neither --model nor --web, the server takes the models/*.model\n"
    "                      and web/ beside it (a build in a clone), or where make install put\n"
    "                      them (" DIGITS_DATADIR "), and says which\n"
    "  --port N            TCP port (default 8080; 0 picks a free one)\n"
    "  --bind ADDR         IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
    "  --web DIR           serve the page and its files from DIR (GET /)\n"
    "  --threads N         worker threads (default: number of cores)\n"
    "  --max-body BYTES    largest request body (default 33554432; suffixes k, M)\n"
    "  --max-connections N concurrent connections (default 1024)\n"
    "  --max-connections-per-ip N  from one client address (default 128; 0: no limit)\n"
    "  --max-body-memory BYTES  all bodies being received at once (default 256M), then 503\n"
    "  --timeout SECONDS   idle connection timeout, and the longest a request may take to\n"
    "                      arrive (bodies: at least 1 KiB/s after that) (default 30)\n"
    "  --max-large-decodes N  threads for expensive requests: images over 1 MP, JSON bodies\n"
    "                      over 1 MiB (default: threads / 2, >= 1)\n"
    "  --large-decode-wait MS how long such a request may wait for one, then 503 (default\n"
    "                      2000; 0: no waiting)\n"
    "  --drain-seconds S   on SIGTERM/SIGINT, first answer 503 \"draining\" on /healthz and\n"
    "                      /v2/health/ready for S seconds while serving everything else, so\n"
    "                      that a load balancer stops sending requests (default 0, at most\n"
    "                      300; a second signal ends the drain)\n"
    "  --cors ORIGIN       let pages from ORIGIN (https://host[:port], or * for any) call this\n"
    "                      server from a browser: CORS headers and preflights (default off)\n"
    "  --log-format F      access log lines: text (default) or json (one object a line, with\n"
    "                      the request id that X-Request-Id carries)\n"
    "  --samples FILE      keep the samples people correct on the page in this SQLite\n"
    "                      database (created if missing; /samples routes; default off)\n"
    "  --samples-max BYTES cap on the database's size (default 1G; suffixes k, M, G)\n"
    "  --samples-rate N    writes a second one client address may make, twice that at\n"
    "                      once, then 429 (default 10; 0: no limit)\n"
    "  --allow-remote-writes  take /samples writes from clients not on this machine\n"
    "                      (default: 403 for them)\n"
    "  --quiet             no access log\n"
    "  --help              this text\n"
    "  --version           version\n"
    "\n"
    "Signals: SIGHUP reloads the model files (a file that fails to load leaves the old models\n"
    "serving); SIGINT/SIGTERM, after the --drain-seconds drain, stop accepting connections,\n"
    "answer the requests in flight (with Connection: close), close idle connections and exit 0\n"
    "(at most 10 s; exit 1 after 12 s if a request is still running).\n";

static int is_one_of(const char *a, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        if (!strcmp(a, names[k]))
            return 1;
    return 0;
}

/* The one flag of names that a begins ("--thread" for "--threads"), or NULL. */
static const char *abbreviates(const char *a, const char *const *names)
{
    const char *like = NULL;
    int count = 0;
    size_t n = strlen(a);
    for (int k = 0; names[k] && n > 2; k++)
        if (!strncmp(names[k], a, n))
            like = names[k], count++;
    return count == 1 ? like : NULL;
}

/* SIGHUP: the model files read again; a failure leaves the old models serving. */
static void reload(struct srv_registry *reg, struct srv_metrics *metrics, int n_models)
{
    char err[1024];
    if (n_models == 0) {
        fprintf(stderr, "digits-server: SIGHUP: no model files to reload\n");
        return;
    }
    if (srv_registry_reload(reg, err, sizeof err) == 0) {
        srv_metrics_reload(metrics, 1);
        fprintf(stderr, "digits-server: SIGHUP: reloaded %d model%s\n", n_models,
                n_models == 1 ? "" : "s");
    } else {
        srv_metrics_reload(metrics, 0);
        fprintf(stderr, "digits-server: SIGHUP: reload failed, old models keep serving: %s\n",
                err);
    }
}

/* What a start without --model and --web found: the page and the models of one place. */
struct found {
    char root[PATH_MAX];
    char web[PATH_MAX + 8];
    char models[SRV_MAX_MODELS][PATH_MAX + 300];
    int n;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The .model files of root/models (in name order, at most SRV_MAX_MODELS) and root/web/index.html. Returns
 * 1 when root has at least one of them. */
static int look_in(const char *root, struct found *f)
{
    char dir[PATH_MAX + 16];
    f->n = 0;
    f->web[0] = '\0';
    snprintf(dir, sizeof dir, "%s/web/index.html", root);
    if (access(dir, R_OK) == 0)
        snprintf(f->web, sizeof f->web, "%s/web", root);
    snprintf(dir, sizeof dir, "%s/models", root);
    DIR *d = opendir(dir);
    if (d) {
        char *names[SRV_MAX_MODELS] = {0};
        int n = 0;
        /* readdir is safe here: one thread, one stream (readdir_r is deprecated by POSIX) */
        // cppcheck-suppress readdirCalled
        for (struct dirent *e; (e = readdir(d)) != NULL && n < SRV_MAX_MODELS;) {
            size_t len = strlen(e->d_name);
            if (len > 6 && !strcmp(e->d_name + len - 6, ".model") && e->d_name[0] != '.' &&
                (names[n] = strdup(e->d_name)) != NULL)
                n++;
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, by_name);
        for (int i = 0; i < n; i++) {
            snprintf(f->models[f->n++], sizeof f->models[0], "%s/%s", dir, names[i]);
            free(names[i]);
        }
    }
    snprintf(f->root, sizeof f->root, "%s", root);
    return f->n > 0 || f->web[0];
}

/* Started without --model and --web: the models and page beside the binary (a build in a
 * clone: build/digits-server, so its parent), where make install put them
 * (PREFIX/bin/digits-server, PREFIX/share/digits), or in DIGITS_DATADIR. */
static int discover(struct found *f)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char roots[4][PATH_MAX + 32];
    int k = 0;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(roots[k++], sizeof roots[0], "%s/..", exe);
            snprintf(roots[k++], sizeof roots[0], "%s/../..", exe);
            snprintf(roots[k++], sizeof roots[0], "%s/../share/digits", exe);
        }
    }
    snprintf(roots[k++], sizeof roots[0], "%s", DIGITS_DATADIR);
    for (int i = 0; i < k; i++) {
        char real[PATH_MAX];
        if (realpath(roots[i], real) && look_in(real, f))
            return 1;
    }
    return 0;
}

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *exit_after_grace(void *arg)
{
    (void)arg;
    struct timespec ts = {12, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    static const char msg[] = "digits-server: a request was still running 12 s after the stop "
                              "signal; exiting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Parses a non-negative integer with an optional k/M/G suffix; -1 on error. */
static long long parse_size(const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024LL * 1024 * 1024, end++;
    if (*end || v > LLONG_MAX / mul)
        return -1;
    return v * mul;
}

int main(int argc, char **argv)
{
    const char *models[SRV_MAX_MODELS];
    int n_models = 0;
    const char *web = NULL;
    int drain_s = 0;
    const char *samples_path = NULL;
    long long samples_max = 1LL << 30;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct srv_config cfg = {
        .bind = "127.0.0.1",
        .port = 8080,
        .threads = cores > 0 ? (int)cores : 1,
        .max_body = 32u << 20,
        .max_connections = 1024,
        .timeout_s = 30,
        .connection_memory = 16 * 1024, /* MHD zeroes the pool per request: keep it small */
        .quiet = 0,
        .max_large_decodes = 0, /* threads / 2 */
        .large_decode_wait_ms = 2000,
        .max_connections_per_ip = 128,
        .max_body_memory = (size_t)256 << 20,
        .write_rate = 10,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
            a = name;
        }
        static const char *const no_value[] = {"--help", "--version", "--quiet",
                                               "--allow-remote-writes", NULL};
        static const char *const with_value[] = {
            "--model",   "--port",     "--bind",    "--web",
            "--threads", "--max-body", "--timeout", "--max-connections",
            "--max-large-decodes", "--large-decode-wait", "--max-connections-per-ip",
            "--max-body-memory", "--drain-seconds", "--cors", "--log-format", "--samples",
            "--samples-max", "--samples-rate", NULL};
        if (val && is_one_of(a, no_value)) {
            fprintf(stderr, "digits-server: %s takes no value (see digits-server --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("digits-server %s (libnn %s)\n", DIGITS_VERSION, NN_VERSION);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            cfg.quiet = 1;
            continue;
        }
        if (!strcmp(a, "--allow-remote-writes")) {
            cfg.allow_remote_writes = 1;
            continue;
        }
        if (!is_one_of(a, with_value)) {
            /* whole names only, as digits-train and digits-eval (nn/bin/flags.h) */
            const char *like = abbreviates(a, with_value);
            if (!like)
                like = abbreviates(a, no_value);
            if (like)
                fprintf(stderr,
                        "digits-server: unknown flag %s (see digits-server --help; did you mean "
                        "%s?)\n",
                        a, like);
            else
                fprintf(stderr, "digits-server: unknown flag %s (see digits-server --help)\n", a);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "digits-server: %s needs a value (see digits-server --help)\n", a);
                return 2;
            }
            val = argv[++i];
        }
        long long v = 0;
        if (!strcmp(a, "--model")) {
            if (n_models == SRV_MAX_MODELS) {
                fprintf(stderr, "digits-server: at most %d --model\n", SRV_MAX_MODELS);
                return 2;
            }
            models[n_models++] = val;
        } else if (!strcmp(a, "--web")) {
            web = val;
        } else if (!strcmp(a, "--samples")) {
            samples_path = val;
        } else if (!strcmp(a, "--bind")) {
            unsigned char addr[16];
            if (inet_pton(AF_INET, val, addr) != 1 && inet_pton(AF_INET6, val, addr) != 1) {
                fprintf(stderr, "digits-server: --bind %s: not an IPv4 or IPv6 address\n", val);
                return 2;
            }
            cfg.bind = val;
        } else if (!strcmp(a, "--cors")) {
            char why[160];
            if (srv_cors_origin_check(val, why, sizeof why) != 0) {
                fprintf(stderr, "digits-server: --cors %s: %s\n", val, why);
                return 2;
            }
            cfg.cors = val;
        } else if (!strcmp(a, "--log-format")) {
            if (strcmp(val, "text") && strcmp(val, "json")) {
                fprintf(stderr, "digits-server: --log-format %s: not text or json\n", val);
                return 2;
            }
            cfg.log_format = strcmp(val, "json") ? SRV_LOG_TEXT : SRV_LOG_JSON;
        } else if ((v = parse_size(val)) < 0) {
            fprintf(stderr, "digits-server: %s %s: not a number\n", a, val);
            return 2;
        } else if (!strcmp(a, "--port")) {
            if (v > 65535) {
                fprintf(stderr, "digits-server: --port %s: not in 0..65535\n", val);
                return 2;
            }
            cfg.port = (int)v;
        } else if (!strcmp(a, "--threads")) {
            if (v < 1 || v > 256) {
                fprintf(stderr, "digits-server: --threads %s: not in 1..256\n", val);
                return 2;
            }
            cfg.threads = (int)v;
        } else if (!strcmp(a, "--max-body")) {
            if (v < 1 || v > (1LL << 30)) {
                fprintf(stderr, "digits-server: --max-body %s: not in 1..1G\n", val);
                return 2;
            }
            cfg.max_body = (size_t)v;
        } else if (!strcmp(a, "--timeout")) {
            if (v < 1 || v > 3600) {
                fprintf(stderr, "digits-server: --timeout %s: not in 1..3600\n", val);
                return 2;
            }
            cfg.timeout_s = (unsigned)v;
        } else if (!strcmp(a, "--max-large-decodes")) {
            if (v < 1 || v > 256) {
                fprintf(stderr, "digits-server: --max-large-decodes %s: not in 1..256\n", val);
                return 2;
            }
            cfg.max_large_decodes = (int)v;
        } else if (!strcmp(a, "--large-decode-wait")) {
            if (v > 60000) {
                fprintf(stderr, "digits-server: --large-decode-wait %s: not in 0..60000\n", val);
                return 2;
            }
            cfg.large_decode_wait_ms = (int)v;
        } else if (!strcmp(a, "--max-connections")) {
            if (v < 1 || v > 65536) {
                fprintf(stderr, "digits-server: --max-connections %s: not in 1..65536\n", val);
                return 2;
            }
            cfg.max_connections = (unsigned)v;
        } else if (!strcmp(a, "--max-connections-per-ip")) {
            if (v > 65536) {
                fprintf(stderr, "digits-server: --max-connections-per-ip %s: not in 0..65536\n",
                        val);
                return 2;
            }
            cfg.max_connections_per_ip = (unsigned)v;
        } else if (!strcmp(a, "--samples-max")) {
            if (v < 65536) {
                fprintf(stderr, "digits-server: --samples-max %s: at least 64k\n", val);
                return 2;
            }
            samples_max = v;
        } else if (!strcmp(a, "--samples-rate")) {
            if (v > 100000) {
                fprintf(stderr, "digits-server: --samples-rate %s: not in 0..100000\n", val);
                return 2;
            }
            cfg.write_rate = (int)v;
        } else if (!strcmp(a, "--drain-seconds")) {
            if (v > 300) {
                fprintf(stderr, "digits-server: --drain-seconds %s: not in 0..300\n", val);
                return 2;
            }
            drain_s = (int)v;
        } else if (!strcmp(a, "--max-body-memory")) {
            if (v < 1 || v > (1LL << 40)) {
                fprintf(stderr, "digits-server: --max-body-memory %s: not in 1..1T\n", val);
                return 2;
            }
            cfg.max_body_memory = (size_t)v;
        }
    }
    if (cfg.max_body_memory < cfg.max_body) {
        fprintf(stderr,
                "digits-server: --max-body-memory (%zu) is less than --max-body (%zu): no "
                "body of the largest size could ever be received\n",
                cfg.max_body_memory, cfg.max_body);
        return 2;
    }

    int status = 1;
    char err[1024];
    struct srv_registry *reg = NULL;
    struct srv_static *st = NULL;
    struct srv_http *http = NULL;
    struct srv_samples *samples = NULL;
    struct srv_metrics *metrics = calloc(1, sizeof *metrics);
    if (!metrics) {
        fprintf(stderr, "digits-server: out of memory\n");
        return 1;
    }
    srv_metrics_init(metrics);
    static struct found found; /* the paths live as long as the server */
    if (n_models == 0 && !web && discover(&found)) {
        for (int i = 0; i < found.n; i++)
            models[n_models++] = found.models[i];
        if (found.web[0])
            web = found.web;
        fprintf(stderr, "digits-server: no --model or --web: serving %s%s%d model%s from %s\n",
                web ? "web/ and " : "", "", n_models, n_models == 1 ? "" : "s", found.root);
    }
    if (n_models == 0)
        fprintf(stderr, "digits-server: warning: no --model given; /predict answers 503\n");
    if (srv_registry_new(&reg, models, n_models, err, sizeof err) != 0) {
        fprintf(stderr, "digits-server: %s\n", err);
        goto fail;
    }
    if (samples_path) {
        if (srv_samples_open(&samples, samples_path, samples_max, err, sizeof err) != 0) {
            fprintf(stderr, "digits-server: --samples %s\n", err);
            goto fail;
        }
        cfg.samples = samples;
    }
    if (web && srv_static_new(&st, web, err, sizeof err) != 0) {
        fprintf(stderr, "digits-server: --web %s\n", err);
        goto fail;
    }

    /* Request bodies and images (up to 32 MiB, 4 bytes a pixel) always get their own mappings,
     * given back to the system when freed: glibc's default threshold rises after the first
     * such free, so that later ones came from the heaps of the worker threads and stayed
     * resident (peak RSS 124 MB with three 8 MB bodies in flight, 75 MB with this). */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);

    /* Block the signals we wait for (and SIGPIPE) before any thread exists. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "digits-server: cannot block signals\n");
        goto fail;
    }

    if (srv_http_start(&http, &cfg, reg, metrics, st, err, sizeof err) != 0) {
        fprintf(stderr, "digits-server: %s\n", err);
        goto fail;
    }
    {
        struct srv_snapshot *s = srv_registry_acquire(reg);
        char hostbuf[80];
        if (strchr(cfg.bind, ':'))
            snprintf(hostbuf, sizeof hostbuf, "[%s]", cfg.bind);
        else
            snprintf(hostbuf, sizeof hostbuf, "%s", cfg.bind);
        fprintf(stderr, "digits-server: listening on http://%s:%d (%d threads, %d model%s%s%s)\n",
                hostbuf, srv_http_port(http), cfg.threads, s->n, s->n == 1 ? "" : "s",
                s->n ? ", default " : "", s->n ? s->models[0].name : "");
        srv_snapshot_release(s);
    }

    long long drain_end = -1; /* monotonic ms while draining */
    for (;;) {
        /* Once a second, connections whose request has taken longer than the timeout to
         * arrive are closed (http.h). */
        struct timespec tick = {1, 0};
        if (drain_end >= 0) {
            long long left = drain_end - monotonic_ms();
            if (left <= 0) {
                fprintf(stderr, "digits-server: drained for %d s; finishing requests in flight\n",
                        drain_s);
                break;
            }
            if (left < 1000)
                tick = (struct timespec){0, (long)(left * 1000000)};
        }
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            if (errno == EAGAIN) {
                srv_http_sweep(http);
                continue;
            }
            if (errno == EINTR)
                continue;
            fprintf(stderr, "digits-server: sigwaitinfo: %s\n", strerror(errno));
            break;
        }
        const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
        if (sig == SIGHUP) {
            reload(reg, metrics, n_models);
            continue;
        }
        if (drain_end < 0 && drain_s > 0) {
            /* Out of the load balancer's rotation first, then the stop (README "Scale-out"). */
            srv_http_drain(http, 1);
            drain_end = monotonic_ms() + drain_s * 1000LL;
            fprintf(stderr,
                    "digits-server: %s: draining for %d s (health checks answer 503, requests "
                    "are served; another signal ends the drain)\n",
                    name, drain_s);
            continue;
        }
        fprintf(stderr, "digits-server: %s: %sfinishing requests in flight\n", name,
                drain_end >= 0 ? "drain ended early; " : "");
        break;
    }
    /* Whatever a request is doing, the process ends: a watchdog exits 1 two seconds after
     * the grace time (srv_http_stop waits for the worker threads, and a decode cannot be
     * interrupted). */
    pthread_t watchdog;
    if (pthread_create(&watchdog, NULL, exit_after_grace, NULL) == 0)
        pthread_detach(watchdog);
    int left = srv_http_stop(http, 10000);
    http = NULL;
    if (left)
        fprintf(stderr, "digits-server: stopped with %d request%s unfinished after 10 s\n", left,
                left == 1 ? "" : "s");
    else
        fprintf(stderr, "digits-server: stopped\n");
    status = 0;
fail:
    srv_http_stop(http, 0);
    srv_static_free(st);
    srv_samples_close(samples);
    srv_registry_free(reg);
    free(metrics);
    return status;
}
