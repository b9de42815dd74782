/*
 * eval_main.c - digits-eval: loss, accuracy, confusion matrix and per-class precision/recall
 * of a model file on the MNIST test set; --robust adds accuracy under random distortions
 * passed through the server's normalisation; --json for machine-readable output.
 * --set paper|numbers|nondigits evaluates one of our image sets (build/make-sets, issue 18)
 * instead, every file through the server's decoder and normalisation, as /predict reads it.
 */
#include "nn/nn.h"
#include "nn/bin/report.h"
#include "nn/bin/flags.h"
#include "server/decode.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef DIGITS_VERSION
#define DIGITS_VERSION NN_VERSION
#endif


/* s as a JSON string on stdout: a path or a model name may hold quotes, backslashes or
 * control characters (other bytes are copied; they come from our own command line and file). */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

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
            "  --set NAME     instead: one of our image sets (make sets): paper (accuracy,\n"
            "                 confusions, accuracy by condition), nondigits (how many get a\n"
            "                 confident answer) or numbers (exact whole numbers and digits,\n"
            "                 separated and touching, read as POST /read does); each file\n"
            "                 is decoded by the server's decoder and normalised as\n"
            "                 POST /predict does; a JSON line ends the report (--json: only\n"
            "                 that line)\n"
            "  --sets DIR     where the sets are (default data/sets; data/sets-dev is made\n"
            "                 from training images, for tuning)\n"
            "  --misses       list on stderr each image not read right: with --set\n"
            "                 numbers the file, its number, what was read or -, the digit\n"
            "                 boxes; with --set paper the file, its digit, the answer or\n"
            "                 why none, its conditions\n"
            "  --help, --version\n",
            prog);
}

/* ---------------------------------------------------------------------------------------- */
/* Our image sets (make sets): every file through the server's decoder, as /predict reads it */
/* ---------------------------------------------------------------------------------------- */

#define SET_MAX_FILE ((size_t)64 << 20) /* larger than any body the server accepts */
#define SET_MAX_GROUPS 96

/* One row of labels.tsv joined with its row of conditions.tsv. */
struct set_item {
    char *file;  /* owned by the lines buffer */
    char *label; /* "7", "2026", "-" */
    char *cond;  /* the conditions columns after the file name, or "" */
};

/* What the one path every input takes made of a file. */
enum set_result { SET_ANSWERED = 0, SET_REFUSED, SET_BLANK, SET_REJECTED, SET_FAILED };
struct set_outcome {
    enum set_result result;
    int prediction;
    float top; /* highest probability */
    char why[160];
};

struct set_group {
    char key[64];
    int n, correct, refused, low;
};

/* Reads a whole regular file of at most max bytes into *text, NUL-terminated (free() it);
 * else NN_EIO/NN_ERANGE/NN_ENOMEM with "path: reason" in err. Through nn_read_file, so a FIFO
 * or a device is refused at once instead of blocking or being read to the limit. */
static int read_all(char **text, const char *path, size_t *len, size_t max, char *err,
                    size_t errlen)
{
    return nn_read_file(path, max, (void **)text, len, err, errlen);
}

/* Splits a TSV file's text in place into lines; returns the number of data lines (after the
 * header) with *rows pointing at them (free() *rows), or -1 with a message. */
static long tsv_rows(char *text, char ***rows, const char *path, const char *header_start)
{
    size_t cap = 1024, n = 0;
    char **r = malloc(cap * sizeof *r);
    if (!r)
        return -1;
    char *line = text;
    int first = 1;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (first) {
            if (strncmp(line, header_start, strlen(header_start))) {
                fprintf(stderr, "%s: %s: header is not '%s...' (made by make-sets?)\n", prog, path,
                        header_start);
                free(r);
                return -1;
            }
            first = 0;
        } else if (*line) {
            if (n == cap) {
                char **nr = realloc(r, (cap *= 2) * sizeof *r);
                if (!nr) {
                    free(r);
                    return -1;
                }
                r = nr;
            }
            r[n++] = line;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    *rows = r;
    return (long)n;
}

static struct set_group *group_of(struct set_group *g, int *ng, const char *key)
{
    for (int i = 0; i < *ng; i++)
        if (!strcmp(g[i].key, key))
            return &g[i];
    if (*ng == SET_MAX_GROUPS)
        return NULL;
    struct set_group *x = &g[(*ng)++];
    memset(x, 0, sizeof *x);
    snprintf(x->key, sizeof x->key, "%s", key);
    return x;
}

/* The n-th tab-separated field of s (0-based) into out; "" when missing. */
static void field(char *out, size_t len, const char *s, int n)
{
    for (int i = 0; i < n && s; i++) {
        s = strchr(s, '\t');
        s = s ? s + 1 : NULL;
    }
    size_t k = 0;
    while (s && s[k] && s[k] != '\t' && k + 1 < len)
        k++;
    if (s)
        memcpy(out, s, k);
    out[s ? k : 0] = '\0';
}

/* Index of column name in a conditions.tsv header (0 = the first column after file), or -1. */
static int column(const char *header, const char *name)
{
    char f[64];
    for (int i = 0; i < 32; i++) {
        field(f, sizeof f, header, i + 1);
        if (!f[0])
            return -1;
        if (!strcmp(f, name))
            return i;
    }
    return -1;
}

static void classify_file(struct set_outcome *out, const nn_model *model, nn_workspace *ws,
                          const char *path)
{
    size_t len = 0;
    float *px = NULL;
    int w = 0, h = 0;
    memset(out, 0, sizeof *out);
    out->prediction = -1;
    char *bytes = NULL;
    if (read_all(&bytes, path, &len, SET_MAX_FILE, out->why, sizeof out->why)) {
        out->result = SET_FAILED;
        return;
    }
    int rc = srv_image_decode(&px, &w, &h, bytes, len, out->why, sizeof out->why);
    free(bytes);
    if (rc != 0) {
        out->result = rc == NN_ENOMEM ? SET_FAILED : SET_REFUSED; /* a 400 from /predict */
        return;
    }
    float x[NN_MNIST_PIXELS], probs[NN_OUTPUTS_MAX], p10[10], reject;
    rc = nn_image_normalize(x, px, w, h);
    free(px);
    if (rc == NN_EBLANK) {
        out->result = SET_BLANK;
        return;
    }
    if (rc != NN_OK || nn_model_predict(model, x, probs, ws) != NN_OK) {
        out->result = SET_FAILED;
        snprintf(out->why, sizeof out->why, "%.100s: %s", path, nn_strerror(rc ? rc : NN_ENOMEM));
        return;
    }
    int answer = nn_model_answer(model, probs, p10, &reject);
    out->top = p10[nn_argmax(p10, 10)];
    if (answer == NN_NOT_A_DIGIT) { /* /predict's "not_a_digit" */
        out->result = SET_REJECTED;
        return;
    }
    out->prediction = answer;
}

/* "<300", "300-599", ... from a conditions "WxH" field. */
static const char *size_bucket(const char *wxh)
{
    int w = 0, h = 0;
    if (sscanf(wxh, "%dx%d", &w, &h) != 2)
        return "?";
    int l = w > h ? w : h;
    return l >= 4000 ? "12MP" : l < 300 ? "<300" : l < 600 ? "300-599" : "600-1200";
}

static const char *quality_bucket(const char *q)
{
    int v = atoi(q);
    return v < 65 ? "q50-64" : v < 80 ? "q65-79" : "q80-95";
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const struct set_group *)a)->key, ((const struct set_group *)b)->key);
}

static void print_groups(FILE *f, const struct set_group *g, int ng, int digits)
{
    for (int i = 0; i < ng; i++) {
        if (digits)
            fprintf(f, "  %-24s %6d  %6.2f%%  %6d\n", g[i].key, g[i].n,
                    g[i].n ? 100.0 * g[i].correct / g[i].n : 0.0, g[i].refused);
        else
            fprintf(f, "  %-24s %6d  %6.2f%%\n", g[i].key, g[i].n,
                    g[i].n ? 100.0 * g[i].low / g[i].n : 0.0);
    }
}

static void json_groups(const struct set_group *g, int ng, int digits)
{
    printf("{");
    for (int i = 0; i < ng; i++)
        printf("%s\"%s\":[%d,%d]", i ? "," : "", g[i].key, g[i].n,
               digits ? g[i].correct : g[i].low);
    printf("}");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --misses: one line on stderr for a number not read exactly. */
static void print_miss(const char *file, const char *label, int w, int h,
                       const struct nn_read_result *res)
{
    fprintf(stderr, "miss %s %dx%d want %s read ", file, w, h, label);
    for (int k = 0; k < res->n; k++) {
        int p = res->digits[k].prediction;
        fputc(p == NN_NOT_A_DIGIT ? '?' : '0' + p, stderr);
    }
    for (int k = 0; k < res->n; k++) {
        const struct nn_read_digit *d = &res->digits[k];
        fprintf(stderr, " [%d,%d,%d,%d]", d->x, d->y, d->w, d->h);
    }
    fputc('\n', stderr);
}

/* --misses with --set paper: one line on stderr for an image not read right, with its
 * conditions (the rest of its conditions.tsv row). */
static void print_paper_miss(const char *file, int truth, const struct set_outcome *o,
                             const char *cond)
{
    fprintf(stderr, "miss %s want %d read ", file, truth);
    switch (o->result) {
    case SET_ANSWERED: fprintf(stderr, "%d (p %.3f)", o->prediction, (double)o->top); break;
    case SET_REJECTED: fputs("- (not a digit)", stderr); break;
    case SET_BLANK: fputs("- (blank)", stderr); break;
    default: fputs("- (refused)", stderr); break;
    }
    fprintf(stderr, " %s\n", cond);
}

/* digits-eval --set numbers: each image read whole by nn_read_number (the steps POST /read
 * takes), scored as an exact whole-number match and digit by digit (a number read with the
 * wrong count of digits scores none of them), split by whether it has touching neighbours.
 * Returns the exit status. */
static int eval_numbers(const nn_model *model, const char *model_path, const char *dir, int json,
                        int misses)
{
    char path[4096], cpath[4096], file[256], label[64], touch[16];
    char *labels = NULL, *conds = NULL, **lrows = NULL, **crows = NULL;
    nn_workspace *ws = NULL;
    struct nn_read_result *res = malloc(sizeof *res);
    size_t len;
    int status = 1;
    long n = 0, nc = 0;
    /* [separated, touching]: items, exact, digits, digits right, refused or blank */
    long items[2] = {0}, exact[2] = {0}, dig[2] = {0}, dig_ok[2] = {0}, lost[2] = {0};
    snprintf(path, sizeof path, "%s/numbers/labels.tsv", dir);
    snprintf(cpath, sizeof cpath, "%s/numbers/conditions.tsv", dir);
    if (!res || nn_workspace_new(&ws, model, 1) != NN_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto done;
    }
    char err[512];
    if (read_all(&labels, path, &len, SET_MAX_FILE, err, sizeof err) ||
        read_all(&conds, cpath, &len, SET_MAX_FILE, err, sizeof err)) {
        fprintf(stderr, "%s: %s (run `make sets`)\n", prog, err);
        goto done;
    }
    n = tsv_rows(labels, &lrows, path, "file\tlabel");
    nc = tsv_rows(conds, &crows, cpath, "file\t");
    if (n < 0 || nc != n) {
        fprintf(stderr, "%s: %s and %s do not list the same files\n", prog, path, cpath);
        goto done;
    }
    int tcol = column(conds, "touching_pairs");
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        field(file, sizeof file, lrows[i], 0);
        field(label, sizeof label, lrows[i], 1);
        field(touch, sizeof touch, crows[i], tcol + 1);
        int t = tcol >= 0 && atoi(touch) > 0;
        items[t]++;
        size_t nd = strlen(label);
        dig[t] += (long)nd;
        snprintf(path, sizeof path, "%s/numbers/%s", dir, file);
        size_t blen = 0;
        char why[256];
        char *bytes = NULL;
        float *px = NULL;
        int w = 0, h = 0;
        if (read_all(&bytes, path, &blen, SET_MAX_FILE, why, sizeof why) ||
            srv_image_decode(&px, &w, &h, bytes, blen, why, sizeof why) != 0 ||
            nn_read_number(res, model, ws, px, w, h) != NN_OK) {
            lost[t]++;
            if (misses)
                fprintf(stderr, "miss %s %dx%d want %s read - (refused or blank)\n", file, w, h,
                        label);
            free(bytes);
            free(px);
            continue;
        }
        free(bytes);
        free(px);
        int same = (size_t)res->n == nd, right = 0;
        for (int k = 0; same && k < res->n; k++)
            right += res->digits[k].prediction == label[k] - '0';
        dig_ok[t] += right;
        exact[t] += same && right == res->n;
        if (misses && !(same && right == res->n))
            print_miss(file, label, w, h, res);
    }
    double secs = (double)(now_ns() - t0) * 1e-9;
    const char *names[2] = {"separated", "touching"};
    if (!json) {
        printf("numbers set %s/numbers, model %s: %ld numbers in %.1f s\n", dir, model_path, n,
               secs);
        for (int t = 0; t < 2; t++)
            printf("  %-10s %5ld numbers: %6.2f%% exact, %6.2f%% of digits, %ld refused or blank\n",
                   names[t], items[t], items[t] ? 100.0 * exact[t] / items[t] : 0.0,
                   dig[t] ? 100.0 * dig_ok[t] / dig[t] : 0.0, lost[t]);
    }
    printf("{\"eval\":\"set\",\"set\":\"numbers\",\"sets\":");
    json_str(dir);
    printf(",\"model\":");
    json_str(model_path);
    printf(",\"n\":%ld", n);
    for (int t = 0; t < 2; t++)
        printf(",\"%s\":{\"n\":%ld,\"exact\":%ld,\"exact_accuracy\":%.6f,\"digits\":%ld,"
               "\"digits_right\":%ld,\"digit_accuracy\":%.6f,\"refused_or_blank\":%ld}",
               names[t], items[t], exact[t], items[t] ? (double)exact[t] / items[t] : 0.0, dig[t],
               dig_ok[t], dig[t] ? (double)dig_ok[t] / dig[t] : 0.0, lost[t]);
    printf(",\"seconds\":%.3f}\n", secs);
    status = 0;
done:
    nn_workspace_free(ws);
    free(res);
    free(lrows);
    free(crows);
    free(labels);
    free(conds);
    return status;
}

/* digits-eval --set paper|nondigits: returns the exit status. */
static int eval_set(const nn_model *model, const char *model_path, const char *set, const char *dir,
                    int threads, int json, int misses)
{
    int digits = !strcmp(set, "paper"), status = 1;
    char path[4096], cpath[4096];
    char *labels = NULL, *conds = NULL, **lrows = NULL, **crows = NULL, cheader[512] = "";
    struct set_item *items = NULL;
    struct set_outcome *out = NULL;
    nn_workspace **ws = NULL;
    size_t len;
    long n = 0, nc = 0;

    snprintf(path, sizeof path, "%s/%s/labels.tsv", dir, set);
    snprintf(cpath, sizeof cpath, "%s/%s/conditions.tsv", dir, set);
    char err[512];
    if (read_all(&labels, path, &len, SET_MAX_FILE, err, sizeof err)) {
        fprintf(stderr, "%s: %s (run `make sets`, or pass --sets DIR)\n", prog, err);
        goto done;
    }
    if ((n = tsv_rows(labels, &lrows, path, "file\tlabel")) < 0)
        goto done;
    if (n == 0) {
        fprintf(stderr, "%s: %s: no images listed\n", prog, path);
        goto done;
    }
    /* optional: only the breakdown needs it */
    if (read_all(&conds, cpath, &len, SET_MAX_FILE, err, sizeof err) == NN_OK) {
        char *nl = strchr(conds, '\n');
        snprintf(cheader, sizeof cheader, "%.*s", nl ? (int)(nl - conds) : 0, conds);
        if ((nc = tsv_rows(conds, &crows, cpath, "file\t")) < 0)
            goto done;
    }
    items = calloc((size_t)n, sizeof *items);
    out = calloc((size_t)n, sizeof *out);
    ws = calloc((size_t)threads, sizeof *ws);
    if (!items || !out || !ws) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto done;
    }
    for (long i = 0; i < n; i++) {
        char *tab = strchr(lrows[i], '\t');
        if (!tab || !tab[1] || strchr(tab + 1, '\t')) {
            fprintf(stderr, "%s: %s: line %ld: expected file<TAB>label\n", prog, path, i + 2);
            goto done;
        }
        *tab = '\0';
        items[i].file = lrows[i];
        items[i].label = tab + 1;
        items[i].cond = "";
        if (digits &&
            (strlen(items[i].label) != 1 || items[i].label[0] < '0' || items[i].label[0] > '9')) {
            fprintf(stderr, "%s: %s: line %ld: label '%s' is not a digit\n", prog, path, i + 2,
                    items[i].label);
            goto done;
        }
        /* make-sets writes both files in the same order */
        if (i < nc && !strncmp(crows[i], items[i].file, strlen(items[i].file)) &&
            crows[i][strlen(items[i].file)] == '\t')
            items[i].cond = crows[i] + strlen(items[i].file) + 1;
    }
    for (int t = 0; t < threads; t++) {
        if (nn_workspace_new(&ws[t], model, 1) != NN_OK) {
            fprintf(stderr, "%s: out of memory for the workspaces\n", prog);
            goto done;
        }
    }
    char base[4096];
    snprintf(base, sizeof base, "%s/%s", dir, set);
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
    for (long i = 0; i < n; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", base, items[i].file);
        classify_file(&out[i], model, ws[omp_get_thread_num()], p);
    }

    /* Totals, confusions and groups. Refused (the decoder's 400) and blank images count as
     * errors; they are also reported on their own. */
    long answered = 0, correct = 0, refused = 0, blank = 0, failed = 0, low = 0;
    long exif_n = 0, exif_ok = 0, up_n = 0, up_ok = 0;
    unsigned confusion[10][10] = {{0}}, predicted[10] = {0};
    long rejected = 0;
    const char *first_refusal = NULL, *first_failure = NULL;
    struct set_group groups[SET_MAX_GROUPS];
    memset(groups, 0, sizeof groups);
    int ng = 0;
    static const char *const by_digits[] = {"orientation", "paper", "ink",    "lines",
                                            "shadow",      "size",  "quality"};
    static const char *const by_nondigits[] = {"kind", "style", "size"};
    const char *const *by = digits ? by_digits : by_nondigits;
    int nby = digits ? 7 : 3;
    for (long i = 0; i < n; i++) {
        const struct set_outcome *o = &out[i];
        int truth = digits ? items[i].label[0] - '0' : -1;
        int ok = digits && o->result == SET_ANSWERED && o->prediction == truth;
        int is_low = o->result != SET_ANSWERED || o->top < 0.5f;
        if (misses && digits && !ok)
            print_paper_miss(items[i].file, truth, o, items[i].cond);
        switch (o->result) {
        case SET_ANSWERED:
            answered++;
            correct += ok;
            low += o->top < 0.5f;
            if (o->prediction >= 0 && o->prediction < 10) {
                predicted[o->prediction]++;
                if (digits)
                    confusion[truth][o->prediction]++;
            }
            break;
        case SET_REFUSED:
            refused++;
            first_refusal = first_refusal ? first_refusal : o->why;
            break;
        case SET_BLANK: blank++; break;
        case SET_REJECTED: rejected++; break;
        default:
            failed++;
            first_failure = first_failure ? first_failure : o->why;
            break;
        }
        char v[64], key[64];
        for (int b = 0; b < nby; b++) {
            int col = column(cheader, by[b]);
            if (col < 0 || !items[i].cond[0])
                continue;
            field(v, sizeof v, items[i].cond, col);
            const char *shown = v;
            if (!strcmp(by[b], "size"))
                shown = size_bucket(v);
            else if (!strcmp(by[b], "quality"))
                shown = quality_bucket(v);
            else if (!strcmp(by[b], "orientation"))
                shown = !strcmp(v, "1") ? "1 (upright)" : v;
            snprintf(key, sizeof key, "%.20s=%.40s", by[b], shown);
            struct set_group *g = group_of(groups, &ng, key);
            if (g) {
                g->n++, g->correct += ok, g->low += is_low;
                g->refused += o->result == SET_REFUSED;
            }
            if (!strcmp(by[b], "orientation")) {
                int rotated = strcmp(v, "1") != 0;
                *(rotated ? &exif_n : &up_n) += 1;
                *(rotated ? &exif_ok : &up_ok) += ok;
            }
        }
    }
    qsort(groups, (size_t)ng, sizeof *groups, group_cmp);
    if (failed) {
        fprintf(stderr, "%s: %ld files could not be evaluated, e.g. %s\n", prog, failed,
                first_failure);
        goto done;
    }
    const struct nn_meta *meta = nn_model_meta(model);
    if (!json) {
        printf("%s (%s) on %s/%s: %ld images\n", model_path, meta->name, dir, set, n);
        if (refused)
            printf("refused by the decoder (a 400 from /predict): %ld, e.g. \"%s\"\n", refused,
                   first_refusal);
        if (blank)
            printf("read as blank (no ink found): %ld\n", blank);
        if (nn_model_reject_threshold(model) > 0.0f)
            printf("rejected as not a digit (p >= %.4g): %ld of %ld (%.2f%%)\n",
                   (double)nn_model_reject_threshold(model), rejected, n,
                   100.0 * (double)rejected / n);
    }
    if (digits && !json) {
        printf("accuracy %.2f%% (%ld/%ld; refused, blank and rejected images count as "
               "errors)\n",
               100.0 * correct / n, correct, n);
        if (answered)
            printf("accuracy on the images answered: %.2f%% (%ld/%ld)\n",
                   100.0 * correct / answered, correct, answered);
        if (up_n && exif_n)
            printf("upright files %.2f%% (%ld), files stored rotated with an EXIF tag %.2f%% "
                   "(%ld)\n",
                   100.0 * up_ok / up_n, up_n, 100.0 * exif_ok / exif_n, exif_n);
        printf("\nmost frequent errors (true -> predicted):");
        unsigned rest[10][10];
        memcpy(rest, confusion, sizeof rest);
        for (int k = 0; k < 10; k++) {
            unsigned best = 0;
            int bt = -1, bp = -1;
            for (int t = 0; t < 10; t++)
                for (int p = 0; p < 10; p++)
                    if (t != p && rest[t][p] > best)
                        best = rest[t][p], bt = t, bp = p;
            if (bt < 0)
                break;
            printf("%s %d->%d %u", k ? "," : "", bt, bp, best);
            rest[bt][bp] = 0;
        }
        uint32_t table32[NN_CLASSES_MAX][NN_CLASSES_MAX] = {{0}};
        for (int t = 0; t < 10; t++)
            for (int p = 0; p < 10; p++)
                table32[t][p] = confusion[t][p];
        char table[2048];
        nn_report_confusion_text(table, sizeof table, (const uint32_t(*)[NN_CLASSES_MAX])table32);
        printf("\n\nconfusion of the images answered (rows: true digit):\n%s", table);
        if (ng) {
            printf("\nby condition (conditions.tsv)       n  accuracy  refused\n");
            print_groups(stdout, groups, ng, 1);
        }
    } else if (!json) {
        if (nn_model_reject_threshold(model) <= 0.0f)
            printf("(this model has no \"not a digit\" class: it rejects nothing)\n");
        printf("not a digit: %ld of %ld (%.2f%%: rejected, blank or refused by the decoder)\n",
               rejected + blank + refused, n, 100.0 * (double)(rejected + blank + refused) / n);
        printf("answered: %ld; of them with a top probability below 0.5: %ld\n", answered, low);
        printf("predicted as:");
        for (int d = 0; d < 10; d++)
            printf(" %d:%u", d, predicted[d]);
        printf("\n");
        if (ng) {
            printf("\nby kind (conditions.tsv)           n  not answered or top below 0.5\n");
            print_groups(stdout, groups, ng, 0);
        }
        printf("\n");
    }
    /* the machine-readable line, always last */
    printf("{\"eval\":\"set\",\"set\":\"%s\",\"sets\":", set);
    json_str(dir);
    printf(",\"model\":");
    json_str(model_path);
    printf(",\"name\":");
    json_str(meta->name);
    printf(",\"n\":%ld,\"answered\":%ld,\"refused\":%ld,\"blank\":%ld,\"rejected\":%ld,"
           "\"threshold\":%.6g,",
           n, answered, refused, blank, rejected, (double)nn_model_reject_threshold(model));
    if (digits) {
        printf("\"correct\":%ld,\"accuracy\":%.6f,\"accuracy_answered\":%.6f,", correct,
               (double)correct / n, answered ? (double)correct / answered : 0.0);
        printf("\"upright\":[%ld,%ld],\"exif_rotated\":[%ld,%ld],\"confusion\":[", up_n, up_ok,
               exif_n, exif_ok);
        for (int t = 0; t < 10; t++) {
            printf("%s[", t ? "," : "");
            for (int p = 0; p < 10; p++)
                printf("%s%u", p ? "," : "", confusion[t][p]);
            printf("]");
        }
        printf("],\"by\":");
    } else {
        printf("\"top_below_0_5\":%ld,\"fraction_rejected\":%.6f,\"predicted\":[", low,
               (double)(rejected + refused + blank) / n);
        for (int d = 0; d < 10; d++)
            printf("%s%u", d ? "," : "", predicted[d]);
        printf("],\"by\":");
    }
    json_groups(groups, ng, digits);
    printf("}\n");
    status = 0;
done:
    if (ws)
        for (int t = 0; t < threads; t++)
            nn_workspace_free(ws[t]);
    free(ws);
    free(out);
    free(items);
    free(lrows);
    free(crows);
    free(labels);
    free(conds);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"data", required_argument, 0, 'd'},
        {"split", required_argument, 0, 's'},
        {"robust", no_argument, 0, 'r'},
        {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"set", required_argument, 0, 'E'},
        {"sets", required_argument, 0, 'D'},
        {"misses", no_argument, 0, 'M'},
        {0, 0, 0, 0},
    };
    const char *model_path = NULL, *data = "data/mnist", *split = "test";
    const char *set = NULL, *sets_dir = "data/sets";
    int json = 0, robust = 0, misses = 0, opt, status = 1;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t seed = 1;
    char err[512];
    nn_model *model = NULL;
    struct nn_dataset ds = {0};
    struct nn_eval ev;

    if (flags_exact(argc, argv, opts, prog) != 0)
        return 2;
    while ((opt = flags_next(argc, argv, "h", opts, NULL, prog)) != -1) {
        char *end;
        switch (opt) {
        case 'm': model_path = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'r': robust = 1; break;
        case 'j': json = 1; break;
        case 'M': misses = 1; break;
        case 'E': set = optarg; break;
        case 'D': sets_dir = optarg; break;
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
        default: return 2; /* flags_next said why */
        }
    }
    if (!model_path || optind < argc) {
        fprintf(stderr, "%s: %s (see %s --help)\n", prog,
                model_path ? "unexpected argument" : "--model FILE is required", prog);
        return 2;
    }
    if (threads < 1)
        threads = 1;
    if (set && strcmp(set, "paper") && strcmp(set, "numbers") && strcmp(set, "nondigits")) {
        fprintf(stderr, "%s: --set: unknown set '%s' (paper, numbers or nondigits)\n", prog, set);
        return 2;
    }
    if (misses && !(set && strcmp(set, "nondigits"))) {
        fprintf(stderr, "%s: --misses lists the misses of --set paper or numbers only\n", prog);
        return 2;
    }
    if (nn_model_load(&model, model_path, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        goto done;
    }
    if (set && !strcmp(set, "numbers")) {
        status = eval_numbers(model, model_path, sets_dir, json, misses);
        goto done;
    }
    if (set) {
        status = eval_set(model, model_path, set, sets_dir, (int)threads, json, misses);
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
        printf("{\"model\":");
        json_str(model_path);
        printf(",\"name\":");
        json_str(meta->name);
        printf(",\"split\":\"%s\",\"n\":%zu,\"loss\":%.6f,\"accuracy\":%.6f,", split, ev.n,
               ev.loss, ev.accuracy);
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
    if (status == 0 && nn_report_stdout_written(prog))
        status = 1;
    nn_model_free(model);
    nn_dataset_free(&ds);
    return status;
}
