/*
 * eval_main.c - digits-eval: loss, accuracy, confusion matrix and per-class precision/recall
 * of a model file on the MNIST test set; --robust adds accuracy under random distortions
 * passed through the server's normalisation; --json for machine-readable output.
 */
#include "nn.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DIGITS_VERSION
#define DIGITS_VERSION NN_VERSION
#endif

static const char *prog = "digits-eval";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --model FILE [options]\n"
            "Evaluates a model file on the MNIST test set.\n"
            "\n"
            "  --model FILE   model to evaluate (required)\n"
            "  --data DIR     MNIST IDX files, raw or .gz (default data/mnist)\n"
            "  --split NAME   test or train (default test)\n"
            "  --robust       also report accuracy under random shifts (+-4 px), scales\n"
            "                 (0.7-1.3x), rotations (+-15 deg) and stroke thickening/thinning,\n"
            "                 after the server's MNIST normalisation\n"
            "  --seed N       seed for --robust distortions (default 1)\n"
            "  --threads N    worker threads (default: all cores)\n"
            "  --json         print one JSON object instead of text\n"
            "  --help, --version\n",
            prog);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, 's'}, {"robust", no_argument, 0, 'r'},
        {"seed", required_argument, 0, 'S'},  {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},     {0, 0, 0, 0},
    };
    const char *model_path = NULL, *data = "data/mnist", *split = "test";
    int json = 0, robust = 0, opt, status = 1;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t seed = 1;
    char err[512];
    nn_model *model = NULL;
    struct nn_dataset ds = {0};
    struct nn_eval ev;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'm': model_path = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'r': robust = 1; break;
        case 'j': json = 1; break;
        case 'S':
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "%s: --seed: bad value '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 't':
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256) {
                fprintf(stderr, "%s: --threads: bad value '%s' (expected 1..256)\n", prog, optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s %s\n", prog, DIGITS_VERSION); return 0;
        default: fprintf(stderr, "Try '%s --help'.\n", prog); return 2;
        }
    }
    if (!model_path || optind < argc) {
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", prog,
                model_path ? "unexpected argument" : "--model FILE is required", prog);
        return 2;
    }
    if (threads < 1)
        threads = 1;
    if (nn_model_load(&model, model_path, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        goto done;
    }
    if (nn_dataset_load_mnist(&ds, data, split, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n(run 'make data' to fetch MNIST, or pass --data DIR)\n", prog,
                err);
        goto done;
    }
    if (nn_evaluate(model, &ds, (int)threads, &ev, NULL)) {
        fprintf(stderr, "%s: evaluation failed (does the model take %dx%d images?)\n", prog,
                ds.rows, ds.cols);
        goto done;
    }
    double robust_acc = NAN;
    if (robust && nn_evaluate_robust(model, &ds, seed, &robust_acc)) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto done;
    }

    double precision[10], recall[10];
    for (int c = 0; c < 10; c++) {
        double tp = ev.confusion[c][c], col = 0, row = 0;
        for (int k = 0; k < 10; k++)
            col += ev.confusion[k][c], row += ev.confusion[c][k];
        precision[c] = col > 0 ? tp / col : 0.0;
        recall[c] = row > 0 ? tp / row : 0.0;
    }
    const struct nn_meta *meta = nn_model_meta(model);
    if (json) {
        printf("{\"model\":\"%s\",\"name\":\"%s\",\"split\":\"%s\",\"n\":%zu,\"loss\":%.6f,"
               "\"accuracy\":%.6f,",
               model_path, meta->name, split, ev.n, ev.loss, ev.accuracy);
        if (robust)
            printf("\"robust_accuracy\":%.6f,\"robust_seed\":%llu,", robust_acc,
                   (unsigned long long)seed);
        printf("\"precision\":[");
        for (int c = 0; c < 10; c++)
            printf("%s%.6f", c ? "," : "", precision[c]);
        printf("],\"recall\":[");
        for (int c = 0; c < 10; c++)
            printf("%s%.6f", c ? "," : "", recall[c]);
        printf("],\"confusion\":[");
        for (int y = 0; y < 10; y++) {
            printf("%s[", y ? "," : "");
            for (int p = 0; p < 10; p++)
                printf("%s%u", p ? "," : "", ev.confusion[y][p]);
            printf("]");
        }
        printf("]}\n");
    } else {
        printf("%s (%s) on %s %s: %zu images\n", model_path, meta->name, data, split, ev.n);
        printf("loss %.4f, accuracy %.2f%%\n", ev.loss, 100.0 * ev.accuracy);
        if (robust)
            printf("robust accuracy (shift +-4, scale 0.7-1.3, rotate +-15, thickness): %.2f%%\n",
                   100.0 * robust_acc);
        printf("\ndigit  precision  recall\n");
        for (int c = 0; c < 10; c++)
            printf("  %d    %6.2f%%   %6.2f%%\n", c, 100.0 * precision[c], 100.0 * recall[c]);
        char table[2048];
        nn_report_confusion_text(table, sizeof table,
                                 (const uint32_t(*)[NN_CLASSES_MAX])ev.confusion);
        printf("\n%s", table);
    }
    status = 0;
done:
    nn_model_free(model);
    nn_dataset_free(&ds);
    return status;
}
