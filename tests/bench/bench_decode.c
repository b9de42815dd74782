/*
 * bench_decode.c - phone photos through the server's decoder (server/decode.c, jpeg.c): one
 * JSON line per figure, as the other benchmarks print.
 *
 *   build/bench/bench_decode                 figures on stdout
 *   build/bench/bench_decode --write F.jpg   also writes the 12 MP photo (bench_server.sh
 *                                            posts it to /predict)
 *
 * The photo: 4032x3024 (what a 12 MP phone writes), RGB, 4:2:0, quality 90, baseline; grey
 * paper with a gradient, a dark stroke and noise (tests/server/photo.h). Figures, each the
 * median of 11 runs on one thread: srv_image_decode + nn_image_normalize (the server's whole
 * image path; target < 100 ms), and the decoders alone for the record: TurboJPEG at 1/4 (what
 * the server does), TurboJPEG at full size, stb_image at full size; plus the peak memory of
 * each (max RSS of a child process that decodes once, minus that of a child that does not);
 * and the same photo written progressive, through the server's path.
 * Also the cost that made PNG/BMP/GIF stay at 4 MP: stb_image on a 4096x4096 RGBA PNG.
 */
#define _DEFAULT_SOURCE /* wait4 */
#include "server/decode.h"
#include "server/jpeg.h"
#include "tests/bench/bench_util.h"
#include "tests/server/photo.h"

#include "nn/nn.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* stb's functions are inlined into this file's, so this one stays off for the whole file */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wpedantic"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#define RUNS 11
#define W 4032
#define H 3024

enum which { SERVER, TJ_QUARTER, TJ_FULL, TJ_QUARTER_FASTUP, STB_FULL, STB_PNG, NOTHING };

static const uint8_t *g_data;
static size_t g_len;

/* One decode of g_data the given way; returns 0 on success. */
static int run_once(enum which k)
{
    char err[256];
    if (k == SERVER) {
        float *px = NULL, out[NN_MNIST_PIXELS];
        int w, h;
        if (srv_image_decode(&px, &w, &h, g_data, g_len, err, sizeof err) != 0) {
            fprintf(stderr, "bench_decode: %s\n", err);
            return -1;
        }
        int rc = nn_image_normalize(out, px, w, h);
        free(px);
        return rc == NN_OK ? 0 : -1;
    }
    if (k == STB_FULL || k == STB_PNG) {
        int w, h, c;
        unsigned char *px = stbi_load_from_memory(g_data, (int)g_len, &w, &h, &c, 0);
        stbi_image_free(px);
        return px ? 0 : -1;
    }
    if (k == NOTHING)
        return 0;
    tjhandle tj = tjInitDecompress();
    tjscalingfactor f = k == TJ_FULL ? (tjscalingfactor){1, 1} : (tjscalingfactor){1, 4};
    int sw = TJSCALED(W, f), sh = TJSCALED(H, f);
    uint8_t *px = malloc((size_t)sw * sh * 3);
    int flags = k == TJ_QUARTER_FASTUP ? TJFLAG_FASTUPSAMPLE : 0;
    int rc = tj && px ? tjDecompress2(tj, g_data, g_len, px, sw, sw * 3, sh, TJPF_RGB, flags) : -1;
    free(px);
    tjDestroy(tj);
    return rc;
}

static double median_ms(enum which k)
{
    double t[RUNS];
    if (run_once(k) != 0) /* warm-up, and a check */
        return -1;
    for (int i = 0; i < RUNS; i++) {
        double t0 = bench_now();
        run_once(k);
        t[i] = (bench_now() - t0) * 1e3;
    }
    return bench_median(t, RUNS);
}

/* Max RSS in MiB of a child that runs k once. */
static double child_rss_mb(enum which k)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(run_once(k) == 0 ? 0 : 1);
    int st = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return -1;
    return (double)ru.ru_maxrss / 1024.0;
}

static void figure(const char *c, const char *metric, double v, double target)
{
    if (target > 0)
        printf("{\"bench\":\"decode\",\"case\":\"%s\",\"metric\":\"%s\",\"value\":%.2f,"
               "\"target_lt\":%g,\"met\":%s}\n",
               c, metric, v, target, v >= 0 && v < target ? "true" : "false");
    else
        printf("{\"bench\":\"decode\",\"case\":\"%s\",\"metric\":\"%s\",\"value\":%.2f}\n", c,
               metric, v);
    fflush(stdout);
}

struct membuf {
    uint8_t *p;
    size_t n, cap;
};

static void mem_write(void *ctx, void *data, int size)
{
    struct membuf *m = ctx;
    if (m->n + (size_t)size > m->cap) {
        size_t cap = (m->n + (size_t)size) * 2;
        uint8_t *q = realloc(m->p, cap);
        if (!q)
            return;
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

int main(int argc, char **argv)
{
    /* Every large block its own mapping, so that a child's max RSS counts what it allocates
     * (glibc would otherwise raise the threshold and reuse the parent's resident heap). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    uint8_t *jpg = NULL;
    size_t len = 0;
    if (photo_make(&jpg, &len, W, H, 3, 90, 0, 0) != 0) {
        fprintf(stderr, "bench_decode: cannot make the photo\n");
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(jpg, 1, len, f) != len || fclose(f) != 0) {
            perror(argv[2]);
            return 1;
        }
        return 0;
    }
    g_data = jpg;
    g_len = len;
    const char *c = "jpeg_4032x3024_q90";
    fprintf(stderr, "bench_decode: %s: %zu bytes\n", c, len);
    figure(c, "decode_normalize_ms", median_ms(SERVER), 100);
    figure(c, "turbojpeg_quarter_ms", median_ms(TJ_QUARTER), 0);
    figure(c, "turbojpeg_quarter_fastupsample_ms", median_ms(TJ_QUARTER_FASTUP), 0);
    figure(c, "turbojpeg_full_ms", median_ms(TJ_FULL), 0);
    figure(c, "stb_full_ms", median_ms(STB_FULL), 0);
    double base = child_rss_mb(NOTHING);
    figure(c, "server_decode_peak_mb", child_rss_mb(SERVER) - base, 0);
    figure(c, "turbojpeg_quarter_peak_mb", child_rss_mb(TJ_QUARTER) - base, 0);
    figure(c, "turbojpeg_full_peak_mb", child_rss_mb(TJ_FULL) - base, 0);
    figure(c, "stb_full_peak_mb", child_rss_mb(STB_FULL) - base, 0);

    /* the same photo written progressive: libjpeg keeps every coefficient (w*h*1.5*2 bytes) */
    uint8_t *prog = NULL;
    size_t plen = 0;
    if (photo_make(&prog, &plen, W, H, 3, 90, 0, TJFLAG_PROGRESSIVE) != 0)
        return 1;
    g_data = prog;
    g_len = plen;
    c = "jpeg_4032x3024_q90_progressive";
    /* no target: progressive Huffman decoding of every scan costs ~4x baseline's (measured
     * 125 ms vs 32 ms here); phones write baseline */
    figure(c, "decode_normalize_ms", median_ms(SERVER), 0);
    figure(c, "server_decode_peak_mb", child_rss_mb(SERVER) - base, 0);
    free(prog);

    /* 16 MP RGBA PNG through stb: why PNG/BMP/GIF are not taken past 4 MP */
    int pw = 4096, ph = 4096;
    uint8_t *rgba = malloc((size_t)pw * ph * 4);
    struct membuf png = {0};
    if (!rgba)
        return 1;
    for (size_t i = 0; i < (size_t)pw * ph * 4; i++)
        rgba[i] = (uint8_t)(200 + (i * 2654435761u >> 28));
    stbi_write_png_compression_level = 1;
    stbi_write_png_to_func(mem_write, &png, pw, ph, 4, rgba, pw * 4);
    free(rgba);
    g_data = png.p;
    g_len = png.n;
    figure("png_4096x4096_rgba", "stb_full_ms", median_ms(STB_PNG), 0);
    figure("png_4096x4096_rgba", "stb_full_peak_mb", child_rss_mb(STB_PNG) - base, 0);
    free(png.p);
    free(jpg);
    return 0;
}
