/*
 * make_sets.c - make-sets: writes our own evaluation sets (issue 18) and the committed ink
 * fixtures, deterministically: the same flags and seed give the same bytes.
 */
#include "sets.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "make-sets";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --fixtures DIR [--seed N]\n"
            "Writes the ink fixtures (tests/fixtures/ink/) deterministically.\n"
            "\n"
            "  --fixtures DIR  write the fixtures, their masks and MANIFEST.tsv to DIR\n"
            "  --seed N        seed (default 18)\n"
            "  --help\n",
            prog);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"fixtures", required_argument, 0, 'f'},
        {"seed", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *fixtures = NULL;
    uint64_t seed = 18;
    char err[1024];
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'f': fixtures = optarg; break;
        case 'S':
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "%s: --seed: bad value '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !fixtures) {
        usage(stderr);
        return 2;
    }
    if (make_fixtures(fixtures, seed, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    return 0;
}
