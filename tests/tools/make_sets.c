/*
 * make_sets.c - make-sets: writes our own evaluation sets (issue 18) and the committed ink
 * fixtures, deterministically: the same flags and seed give the same bytes, whatever the
 * thread count.
 */
#include "sets.h"
#include "nn/bin/flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "make-sets";

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: %s [options] --out DIR\n"
        "       %s --fixtures DIR [--seed N]\n"
        "Writes the evaluation sets of issue 18 (or the committed ink fixtures), the same\n"
        "bytes for the same flags and seed.\n"
        "\n"
        "Sets, each a folder DIR/NAME with the images, labels.tsv (file<TAB>label: the digit,\n"
        "the whole number as a string, or - for a non-digit) and conditions.tsv (how each\n"
        "image was made, e.g. paper's source index, upright size WxH, JPEG quality, EXIF\n"
        "orientation, paper, ink, lines and shadow; header line first, like labels.tsv):\n"
        "  paper      one image per MNIST digit of the source range, dark on grey, cream,\n"
        "             white or tinted paper; black, blue or pencil ink; gradients, shadows\n"
        "             (1 in 4), blur, ruled or squared lines (1 in 3), rotation +-10 deg,\n"
        "             JPEG quality 50-95, long side log-uniform 100-1200 px and every\n"
        "             --big-every'th image 4032x3024 (12 MP); every third image (0, 3, ...)\n"
        "             stored rotated with an EXIF Orientation tag 2..8 in turn (applying the\n"
        "             tag makes it upright). Digits upscaled bicubically with a soft threshold.\n"
        "  numbers    2-8 digits drawn at random from the source range: gaps of 2-10 px at\n"
        "             MNIST scale, a quarter (items 0,1 of every 8) with neighbours touching\n"
        "             (overlapping 1-3 px), baseline jitter +-2 px, slant; even items on paper\n"
        "             (JPEG), odd ones clean white-on-black or black-on-white (PNG)\n"
        "  nondigits  letters A-Z a-z of the DejaVu fonts (not O o I l), scribbles, squares,\n"
        "             circles, X, crosses and triangles (filled or outlined), noise and blobs;\n"
        "             a third on paper (JPEG), the rest clean (PNG)\n"
        "\n"
        "  --out DIR         where the sets go (e.g. data/sets)\n"
        "  --sets LIST       comma-separated subset of paper,numbers,nondigits (default all)\n"
        "  --source NAME     test (default) or train: MNIST images to build from. Tune on\n"
        "                    train (data/sets-dev), report on test (data/sets)\n"
        "  --first N         first image of the source range (default 0)\n"
        "  --count K         images in the range (default: to the end of the source); paper\n"
        "                    has one item per image, numbers draw their digits from it\n"
        "  --numbers K       numbers to write (default 2000)\n"
        "  --nondigits K     non-digits to write (default 2000)\n"
        "  --big-every N     every Nth paper image is 12 MP, at item N/2, N/2+N, ...\n"
        "                    (default 100; 0 = none)\n"
        "  --mnist DIR       MNIST IDX files (default data/mnist)\n"
        "  --fonts DIR       DejaVu TTF files (default /usr/share/fonts/truetype/dejavu)\n"
        "  --seed N          seed (default 18)\n"
        "  --threads N       worker threads (default 2); the output does not depend on it\n"
        "  --fixtures DIR    instead of sets: the ink fixtures of tests/fixtures/ink/ (one or\n"
        "                    two images per photo/scan case, drawn from built-in stroke\n"
        "                    skeletons, never MNIST pixels), each with <name>.mask.png (the\n"
        "                    pen's coverage before paper, light and noise: 255 = ink) and\n"
        "                    MANIFEST.tsv (file<TAB>digit<TAB>case<TAB>note)\n"
        "  --exif-probes DIR instead: probe-1.jpg .. probe-8.jpg, one 48x32 image (quadrants\n"
        "                    red, green / blue, white) stored for each EXIF Orientation, to\n"
        "                    check a viewer (or the server's decoder) against\n"
        "  --help\n",
        prog, prog);
}

/* --exif-probes DIR: probe-1.jpg .. probe-8.jpg, one upright 48x32 image (top left red, top
 * right green, bottom left blue, bottom right white) stored for each Orientation, so that a
 * viewer that applies the tag (a browser) can be checked to show it upright. */
static int write_probes(const char *dir, char *err, size_t errlen)
{
    enum { PW = 48, PH = 32 };
    static const uint8_t colours[4][3] = {
        {220, 30, 30}, {30, 200, 30}, {30, 30, 220}, {250, 250, 250}};
    uint8_t px[PW * PH * 3];
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++)
            memcpy(&px[(y * PW + x) * 3], colours[(y >= PH / 2) * 2 + (x >= PW / 2)], 3);
    if (make_dirs(dir, err, errlen) != 0)
        return -1;
    for (int o = 1; o <= 8; o++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/probe-%d.jpg", dir, o);
        if (write_jpeg(path, px, PW, PH, 3, 95, o, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int parse_size(const char *flag, const char *s, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v > max) {
        fprintf(stderr, "%s: %s: bad value '%s' (expected 0..%zu)\n", prog, flag, s, max);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"sets", required_argument, 0, 's'},
        {"source", required_argument, 0, 'r'},
        {"first", required_argument, 0, 'F'},
        {"count", required_argument, 0, 'c'},
        {"numbers", required_argument, 0, 'n'},
        {"nondigits", required_argument, 0, 'N'},
        {"big-every", required_argument, 0, 'b'},
        {"mnist", required_argument, 0, 'm'},
        {"fonts", required_argument, 0, 'T'},
        {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'},
        {"fixtures", required_argument, 0, 'f'},
        {"exif-probes", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct set_opts o = {
        .mnist = "data/mnist",
        .fonts = "/usr/share/fonts/truetype/dejavu",
        .n_numbers = 2000,
        .n_nondigits = 2000,
        .paper = 1,
        .numbers = 1,
        .nondigits = 1,
        .big_every = 100,
        .seed = 18,
        .threads = 2,
    };
    const char *fixtures = NULL, *probes = NULL;
    char err[1024];
    size_t v;
    int opt;
    if (flags_exact(argc, argv, opts, "make-sets") != 0)
        return 2;
    while ((opt = flags_next(argc, argv, "h", opts, NULL, "make-sets")) != -1) {
        switch (opt) {
        case 'o': o.out = optarg; break;
        case 'm': o.mnist = optarg; break;
        case 'T': o.fonts = optarg; break;
        case 'f': fixtures = optarg; break;
        case 'P': probes = optarg; break;
        case 's': {
            o.paper = o.numbers = o.nondigits = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "paper"))
                    o.paper = 1;
                else if (!strcmp(t, "numbers"))
                    o.numbers = 1;
                else if (!strcmp(t, "nondigits"))
                    o.nondigits = 1;
                else {
                    fprintf(stderr, "%s: --sets: unknown set '%s' (paper, numbers, nondigits)\n",
                            prog, t);
                    return 2;
                }
            }
            break;
        }
        case 'r':
            if (strcmp(optarg, "test") && strcmp(optarg, "train")) {
                fprintf(stderr, "%s: --source: '%s' (expected test or train)\n", prog, optarg);
                return 2;
            }
            o.train = !strcmp(optarg, "train");
            break;
        case 'F':
            if (parse_size("--first", optarg, 1000000, &o.first) != 0)
                return 2;
            break;
        case 'c':
            if (parse_size("--count", optarg, 1000000, &o.count) != 0)
                return 2;
            break;
        case 'n':
        case 'N':
        case 'b':
        case 't':
            if (parse_size(opt == 'n'   ? "--numbers"
                           : opt == 'N' ? "--nondigits"
                           : opt == 'b' ? "--big-every"
                                        : "--threads",
                           optarg, opt == 't' ? 64 : 1000000, &v) != 0)
                return 2;
            if (opt == 't' && v == 0) {
                fprintf(stderr, "%s: --threads: at least 1\n", prog);
                return 2;
            }
            *(opt == 'n'   ? &o.n_numbers
              : opt == 'N' ? &o.n_nondigits
              : opt == 'b' ? &o.big_every
                           : &o.threads) = (int)v;
            break;
        case 'S':
            if (parse_size("--seed", optarg, (size_t)-1, &v) != 0)
                return 2;
            o.seed = v;
            break;
        case 'h': usage(stdout); return 0;
        default: return 2; /* flags_next said why */
        }
    }
    if (probes && optind == argc && !fixtures && !o.out) {
        if (write_probes(probes, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", prog, err);
            return 1;
        }
        return 0;
    }
    if (optind != argc || (!fixtures == !o.out)) {
        fprintf(stderr, "%s: give --out DIR or --fixtures DIR (see --help)\n", prog);
        return 2;
    }
    int rc = fixtures ? make_fixtures(fixtures, o.seed, err, sizeof err)
                      : make_sets(&o, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    return 0;
}
