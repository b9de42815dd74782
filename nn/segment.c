/*
 * segment.c - reading a whole number: ink to marks, marks to digits, digits to the classifier.
 *
 * The key choice: segmentation proposes, the classifier decides. Grouping connected
 * components by geometry handles separated digits and multi-stroke digits cheaply; only where
 * the geometry is ambiguous (a group too wide for one digit, or one the network rejects as
 * "not a digit", which it learnt touching digits are: nn/pairs.c) are cut points tried, and each
 * candidate is scored by the same network that reads it, normalised the same way /predict
 * normalises a single digit (nn_image_normalize on that digit's own ink). The score of a
 * segmentation is the product of its digits' top probabilities, the likelihood of the reading
 * if the digits are independent; it needs no threshold of its own, and splitting always pays
 * for itself with one more factor below 1, so an unsplit digit is kept unless cutting makes
 * both halves clearly more legible.
 */
#include "nn_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOISE_REL 0.1f  /* as in image.c: ink below this fraction of the strongest is noise */
#define NOISE_ABS 0.05f /* and so is anything below this */
#define SPECK_REL 0.05  /* a mark with fewer pixels than this fraction of the largest is tiny */
#define OVERLAP 0.5     /* x-overlap (fraction of the narrower mark) that joins two marks */
#define SHORT 0.65      /* a mark this much shorter than its neighbour may be a stroke of it */
#define NEAR 0.1        /* ... when the gap is within this fraction of the taller mark's height */
#define WIDE 1.0        /* wider than this times its height: maybe touching digits */
/* The prior that a part is one digit falls with its aspect (width / height): of MNIST's
 * training digits 6.5% are wider than tall, 2% wider than 1.2x, 0.5% wider than 1.43x, while
 * two touching digits are mostly 1.1x-1.8x. A split wins when
 * log(p_left * p_right) + SPLIT_SLOPE * (aspect - SPLIT_ASPECT) > log(p_whole). The softmax is
 * saturated both ways (a touching "49" read as 4 at 0.9999, and a wide 0 cut in two read as
 * "01" at 0.9999 each), so past ~1.4x the geometry decides, and below 1.2x only a much more
 * legible split does. 1.3 was chosen on tests/nn/test_segment.c's numbers: at 1.2, 13% of
 * separated numbers had a wide 0, 2 or 8 split in two; at 1.3 none did, and 65% of touching
 * pairs were split right (80% at 1.2). Then 1.45 on the dev numbers set (make-sets from
 * training images, data/sets-dev, photos and slant included): 1.3 read 87.7% of separated
 * numbers exactly and 13.5% of touching ones, 1.45 90.6% and 11.1%, 1.6 91.4% and 5.6%. A
 * wrongly split separated digit costs more users than a touching pair read as one. */
#define SPLIT_ASPECT 1.45
#define SPLIT_SLOPE 20.0
/* A whole rejected as "not a digit" is most likely touching digits (the network is trained on
 * them as such, nn/pairs.c): cuts are tried from this aspect on, and the prior is centred
 * lower. Both chosen on the dev numbers set: touching numbers read exactly went from 11% to
 * 24% (with the cuts below, 43%), separated ones unchanged. */
#define REJECTED_WIDE 0.6
#define REJECTED_ASPECT 0.6
/* Cut points: the CUTS columns with the least ink, more than CUT_APART apart, and SCAN evenly
 * spaced ones (dev set: the 4 lightest columns and 2 either side of each read 24% of touching
 * numbers exactly; with 16 evenly spaced, 43%). */
#define CUTS 4
#define CUT_APART 4
#define SCAN 16
#define MAX_CUTS (CUTS + SCAN)
#define MIN_PART 0.1    /* each side of a cut at least this fraction of the height */
#define MIN_PART_PX 3   /* and at least this many pixels */
#define SPLIT_MIN_H 0.5 /* a part under this fraction of the tallest group is not cut */
#define FRAGMENT                                                                                   \
    0.5                /* a rejected mark under this fraction of the answered digits' median \
                        height is a fragment (a speck, a piece of ruling), not a digit */
#define PIECE 0.5      /* a group under this fraction of the median group height is a piece ... */
#define PIECE_GAP 0.25 /* ... joined to a neighbour within this fraction of that height */
#define SLOTS 4        /* scratch digits per level of splitting */
#define PART_SIDE 112  /* parts larger than this are averaged down before normalising */
/* A part at least CHAIN_ASPECT wide may be three touching digits or more: the halves of such
 * a chain are numbers, whose scores mean nothing, so its cut is the one whose left piece reads
 * best as one digit (times the right piece's score when that is one digit wide), from
 * CHAIN_MIN to CHAIN_MAX of a digit's height from its left edge; the rest is read the same way
 * in turn. Dev numbers set, touching: 44.4% read exactly with every cut scored by both halves;
 * left piece alone from an aspect of 2.4, 43.7%; 2.0, 48.4%; 1.8, 50.0%; 1.5, 51.6%; 1.2,
 * 50.8%; 1.5 with the right piece's score when one digit wide, 52.4% (separated: 354 -> 352
 * of 374). */
#define CHAIN_ASPECT 1.5
#define CHAIN_MIN 0.25
#define CHAIN_MAX 1.2

struct mark {
    int x0, y0, x1, y1; /* inclusive box */
    long n;             /* pixels */
    int parent;         /* union-find */
    int group;          /* index into groups, -1 when dropped */
};

struct group {
    int x0, y0, x1, y1;
    int big; /* holds a mark that is not tiny */
};

struct seg {
    const float *src;
    int w, h;
    float thresh;
    int32_t *label; /* w*h: mark index, -1 = background */
    float *sub;     /* w*h scratch: one digit's masked ink */
    float *proj;    /* w: column ink of the region being cut */
    struct mark *marks;
    int nmarks;
    int *gid; /* per mark: group index or -1 */
    const nn_model *model;
    nn_workspace *ws;
    int classes;
    int classified;
    uint64_t work; /* pixels classify has looked at (NN_READ_MAX_WORK) */
    int ref_h;    /* the tallest group's height: the number's digit size */
    double med_h; /* the median group's height */
};

/* ---------------------------------------------------------------------------------------- */
/* Marks: 8-connected components of the ink                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Labels every ink pixel with a mark; stack is w*h scratch. NN_ERANGE past the marks cap. */
static int label_marks(struct seg *s, int32_t *stack)
{
    const int w = s->w, h = s->h;
    size_t cap = 64;
    s->marks = malloc(cap * sizeof *s->marks);
    if (!s->marks)
        return NN_ENOMEM;
    for (size_t i = 0; i < (size_t)w * h; i++)
        s->label[i] = s->src[i] >= s->thresh ? -2 : -1; /* -2: ink not yet labelled */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t p = (size_t)y * w + x;
            if (s->label[p] != -2)
                continue;
            if (s->nmarks == NN_READ_MAX_MARKS)
                return NN_ERANGE;
            if ((size_t)s->nmarks == cap) {
                struct mark *m = realloc(s->marks, 2 * cap * sizeof *m);
                if (!m)
                    return NN_ENOMEM;
                s->marks = m;
                cap *= 2;
            }
            int id = s->nmarks++;
            struct mark *m = &s->marks[id];
            *m = (struct mark){x, y, x, y, 0, id, -1};
            size_t top = 0;
            stack[top++] = (int32_t)p;
            s->label[p] = id;
            while (top) {
                int32_t q = stack[--top];
                int qx = q % w, qy = q / w;
                m->n++;
                m->x0 = qx < m->x0 ? qx : m->x0;
                m->x1 = qx > m->x1 ? qx : m->x1;
                m->y1 = qy > m->y1 ? qy : m->y1; /* y0 is the first row: raster order */
                for (int dy = -1; dy <= 1; dy++) {
                    int ny = qy + dy;
                    if (ny < 0 || ny >= h)
                        continue;
                    for (int dx = -1; dx <= 1; dx++) {
                        int nx = qx + dx;
                        if (nx < 0 || nx >= w)
                            continue;
                        size_t r = (size_t)ny * w + nx;
                        if (s->label[r] == -2) {
                            s->label[r] = id; /* labelled when pushed: each pixel once */
                            stack[top++] = (int32_t)r;
                        }
                    }
                }
            }
        }
    }
    return NN_OK;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n-1], n >= 1, sorting v. */
static double median(int *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int find(struct mark *m, int i)
{
    while (m[i].parent != i) {
        m[i].parent = m[m[i].parent].parent;
        i = m[i].parent;
    }
    return i;
}

/* Whether two marks are strokes of one digit (see nn.h for the rules and why). */
static int belong(const struct mark *a, const struct mark *b)
{
    int wa = a->x1 - a->x0 + 1, wb = b->x1 - b->x0 + 1;
    int ha = a->y1 - a->y0 + 1, hb = b->y1 - b->y0 + 1;
    int lo = a->x0 > b->x0 ? a->x0 : b->x0, hi = a->x1 < b->x1 ? a->x1 : b->x1;
    int overlap = hi - lo + 1;
    const struct mark *narrow = wa <= wb ? a : b, *wide = wa <= wb ? b : a;
    int cx2 = narrow->x0 + narrow->x1; /* twice the narrower's centre */
    if (overlap >= OVERLAP * (wa < wb ? wa : wb) && cx2 >= 2 * wide->x0 && cx2 <= 2 * wide->x1)
        return 1;
    const struct mark *sh = ha <= hb ? a : b, *tall = ha <= hb ? b : a;
    int hs = ha <= hb ? ha : hb, ht = ha <= hb ? hb : ha;
    int gap = -overlap; /* columns between them (<= 0: overlapping) */
    return hs < SHORT * ht && gap <= NEAR * ht && sh->y0 >= tall->y0 && sh->y1 <= tall->y1;
}

/* Groups the marks into digits: fills groups left to right (by box centre) and sets each
 * mark's group (-1: a speck, dropped); returns the count or a status (NN_ERANGE past
 * NN_READ_MAX_DIGITS groups). */
static int group_marks(struct seg *s, struct group *groups)
{
    struct mark *m = s->marks;
    long largest = 0;
    for (int i = 0; i < s->nmarks; i++)
        largest = m[i].n > largest ? m[i].n : largest;
    for (int i = 0; i < s->nmarks; i++)
        for (int j = i + 1; j < s->nmarks; j++)
            if (belong(&m[i], &m[j])) {
                int a = find(m, i), b = find(m, j);
                if (a != b)
                    m[a < b ? b : a].parent = a < b ? a : b;
            }
    struct group *box = malloc((size_t)s->nmarks * sizeof *box); /* per root */
    if (!box)
        return NN_ENOMEM;
    for (int i = 0; i < s->nmarks; i++)
        box[i] = (struct group){s->w, s->h, -1, -1, 0};
    for (int i = 0; i < s->nmarks; i++) {
        struct group *g = &box[find(m, i)];
        g->x0 = m[i].x0 < g->x0 ? m[i].x0 : g->x0;
        g->y0 = m[i].y0 < g->y0 ? m[i].y0 : g->y0;
        g->x1 = m[i].x1 > g->x1 ? m[i].x1 : g->x1;
        g->y1 = m[i].y1 > g->y1 ? m[i].y1 : g->y1;
        g->big |= (double)m[i].n >= SPECK_REL * (double)largest;
    }
    /* Kept roots sorted by box centre, by insertion (at most NN_READ_MAX_DIGITS of them). */
    int roots[NN_READ_MAX_DIGITS], n = 0;
    for (int r = 0; r < s->nmarks; r++) {
        s->gid[r] = -1;
        if (find(m, r) != r || !box[r].big)
            continue;
        if (n == NN_READ_MAX_DIGITS) {
            free(box);
            return NN_ERANGE;
        }
        int k = n++;
        while (k > 0 && box[roots[k - 1]].x0 + box[roots[k - 1]].x1 > box[r].x0 + box[r].x1) {
            roots[k] = roots[k - 1];
            k--;
        }
        roots[k] = r;
    }
    for (int k = 0; k < n; k++) {
        s->gid[roots[k]] = k;
        groups[k] = box[roots[k]];
    }
    for (int i = 0; i < s->nmarks; i++)
        m[i].group = s->gid[find(m, i)];
    free(box);
    return n;
}

/* The median height of groups[0..ng-1] (0 for none). */
static double median_height(const struct group *groups, int ng)
{
    int hs[NN_READ_MAX_DIGITS + 1];
    if (ng < 1)
        return 0.0;
    for (int g = 0; g < ng; g++)
        hs[g] = groups[g].y1 - groups[g].y0 + 1;
    return median(hs, ng);
}

/* Joins each piece (a group much shorter than the median group: a stroke broken off by a faint
 * or thin bit of ink, the end of a 5's flag) to the nearest group within PIECE_GAP of the
 * median height, horizontally, that is not itself a piece. Pieces far from any digit stay (a
 * rejected one is dropped later as a fragment). Returns the new count of groups, still left
 * to right. */
static int join_pieces(struct seg *s, struct group *groups, int ng)
{
    if (ng < 2)
        return ng;
    int into[NN_READ_MAX_DIGITS + 1], joined = 0;
    const double mid = median_height(groups, ng);
    for (int g = 0; g < ng; g++) {
        into[g] = g;
        if (groups[g].y1 - groups[g].y0 + 1 >= PIECE * mid)
            continue;
        int best = -1;
        double best_gap = PIECE_GAP * mid;
        for (int t = 0; t < ng; t++) {
            if (t == g || groups[t].y1 - groups[t].y0 + 1 < PIECE * mid)
                continue;
            int gap = groups[t].x0 > groups[g].x1   ? groups[t].x0 - groups[g].x1 - 1
                      : groups[g].x0 > groups[t].x1 ? groups[g].x0 - groups[t].x1 - 1
                                                    : 0;
            if (gap <= best_gap) {
                best_gap = gap;
                best = t;
            }
        }
        if (best >= 0) {
            into[g] = best;
            joined++;
        }
    }
    if (!joined)
        return ng;
    for (int g = 0; g < ng; g++) {
        struct group *t = &groups[into[g]];
        if (into[g] == g)
            continue;
        t->x0 = groups[g].x0 < t->x0 ? groups[g].x0 : t->x0;
        t->y0 = groups[g].y0 < t->y0 ? groups[g].y0 : t->y0;
        t->x1 = groups[g].x1 > t->x1 ? groups[g].x1 : t->x1;
        t->y1 = groups[g].y1 > t->y1 ? groups[g].y1 : t->y1;
    }
    int renum[NN_READ_MAX_DIGITS + 1], n = 0;
    for (int g = 0; g < ng; g++)
        if (into[g] == g) {
            renum[g] = n;
            groups[n++] = groups[g];
        }
    for (int i = 0; i < s->nmarks; i++)
        if (s->marks[i].group >= 0)
            s->marks[i].group = renum[into[s->marks[i].group]];
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading one region                                                                       */
/* ---------------------------------------------------------------------------------------- */

static inline int in_group(const struct seg *s, size_t p, int g)
{
    int32_t l = s->label[p];
    return l >= 0 && s->marks[l].group == g;
}

/* Classifies the ink of group g (box gb) in columns [cx0, cx1] into d. NN_EBLANK when that
 * part of the group has no ink. */
static int classify(struct seg *s, const struct group *gb, int g, int cx0, int cx1,
                    struct nn_read_digit *d)
{
    /* Every call looks at the part's box twice (its ink, then the copy): a long wide mark cut
     * at many places is where the cost of reading lies. */
    s->work += 2 * (uint64_t)(gb->y1 - gb->y0 + 1) * (uint64_t)(cx1 - cx0 + 1);
    if (s->work > NN_READ_MAX_WORK || s->classified >= NN_READ_MAX_CLASSIFIED)
        return NN_ERANGE;
    int x0 = s->w, x1 = -1, y0 = s->h, y1 = -1;
    for (int y = gb->y0; y <= gb->y1; y++)
        for (int x = cx0; x <= cx1; x++)
            if (in_group(s, (size_t)y * s->w + x, g)) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y;
            }
    if (x1 < 0)
        return NN_EBLANK;
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    /* A part larger than PART_SIDE on its longer side is box-averaged by an integer factor as
     * it is copied: nn_image_normalize makes some passes over what it is given, and the
     * 20x20 it renders cannot tell (its area averaging takes such blocks whole). */
    int longer = bw > bh ? bw : bh, f = (longer + PART_SIDE - 1) / PART_SIDE;
    int sw = (bw + f - 1) / f, sh = (bh + f - 1) / f;
    for (size_t k = 0; k < (size_t)sw * sh; k++)
        s->sub[k] = 0.0f;
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            size_t p = (size_t)(y0 + y) * s->w + x0 + x;
            if (in_group(s, p, g))
                s->sub[(size_t)(y / f) * sw + x / f] += s->src[p];
        }
    if (f > 1) {
        const float inv = 1.0f / (float)(f * f);
        for (size_t k = 0; k < (size_t)sw * sh; k++)
            s->sub[k] *= inv;
    }
    int rc = nn_image_normalize(d->input, s->sub, sw, sh);
    if (rc != NN_OK)
        return rc;
    float raw[NN_OUTPUTS_MAX] = {0};
    rc = nn_model_predict(s->model, d->input, raw, s->ws);
    if (rc != NN_OK)
        return rc;
    s->classified++;
    d->x = x0;
    d->y = y0;
    d->w = bw;
    d->h = bh;
    d->prediction = nn_model_answer(s->model, raw, d->probs, &d->not_a_digit);
    return NN_OK;
}

/* How much d looks like one digit: its best digit's probability, less what "not a digit"
 * takes (the same as the raw output for a 10-class model). */
static double top(const struct nn_read_digit *d)
{
    return (double)d->probs[nn_argmax(d->probs, 10)] * (1.0 - (double)d->not_a_digit);
}

static int append(struct nn_read_result *out, const struct nn_read_digit *d)
{
    if (out->n == NN_READ_MAX_DIGITS)
        return NN_ERANGE;
    out->digits[out->n++] = *d;
    return NN_OK;
}

/* Drops the digits rejected as "not a digit" that are much shorter than the answered ones:
 * bits of ruling, specks, a stroke's broken-off end. A rejected mark of digit size stays (the
 * number then has no answer). */
static void drop_fragments(struct nn_read_result *out)
{
    int hs[NN_READ_MAX_DIGITS], na = 0, k = 0;
    for (int j = 0; j < out->n; j++)
        if (out->digits[j].prediction != NN_NOT_A_DIGIT)
            hs[na++] = out->digits[j].h;
    if (na == 0 || na == out->n)
        return;
    const double answered_h = median(hs, na);
    for (int j = 0; j < out->n; j++) {
        const struct nn_read_digit *d = &out->digits[j];
        if (d->prediction == NN_NOT_A_DIGIT && d->h < FRAGMENT * answered_h)
            continue;
        if (k != j)
            out->digits[k] = *d;
        k++;
    }
    out->n = k;
}

/* Reads the part of group g already classified whole as *whole (its box is the part's ink),
 * appending its digits to out left to right. slots: scratch digits, SLOTS per level. */
static int read_part(struct seg *s, const struct group *gb, int g,
                     const struct nn_read_digit *whole, struct nn_read_result *out,
                     struct nn_read_digit *slots, int depth)
{
    /* Width over the number's digit height: a short wide mark (a 2's long tail, a 7 written
     * small) is one digit more often than two. */
    const double dh = whole->h > s->med_h ? whole->h : s->med_h;
    const double aspect = (double)whole->w / dh;
    const int rejected = whole->prediction == NN_NOT_A_DIGIT;
    if (aspect <= (rejected ? REJECTED_WIDE : WIDE) || depth >= NN_READ_MAX_DIGITS ||
        whole->w < 2 * MIN_PART_PX ||
        whole->h < SPLIT_MIN_H * s->ref_h) /* a flat mark (a dash, a stroke) is not two digits */
        return append(out, whole);
    const double pivot = rejected ? REJECTED_ASPECT : SPLIT_ASPECT;
    const int x0 = whole->x, x1 = whole->x + whole->w - 1;
    int minw = (int)ceil(MIN_PART * whole->h);
    minw = minw < MIN_PART_PX ? MIN_PART_PX : minw;
    /* Column ink over the part's box. */
    for (int x = x0; x <= x1; x++)
        s->proj[x] = 0.0f;
    for (int y = whole->y; y < whole->y + whole->h; y++)
        for (int x = x0; x <= x1; x++) {
            size_t p = (size_t)y * s->w + x;
            if (in_group(s, p, g))
                s->proj[x] += s->src[p];
        }
    /* Cut c: left [x0, c-1], right [c, x1]. The CUTS lowest columns, apart, then SCAN cuts
     * evenly spaced: touching strokes often overlap, so the lightest column is not always
     * where one digit ends. A chain's cut is near its left end. */
    const int chain = aspect >= CHAIN_ASPECT;
    int lo = x0 + minw, hi = x1 + 1 - minw, cuts[MAX_CUTS] = {0}, nc = 0;
    if (chain) {
        int cl = x0 + (int)(CHAIN_MIN * dh), ch = x0 + (int)(CHAIN_MAX * dh);
        lo = cl > lo ? cl : lo;
        hi = ch < hi ? ch : hi;
    }
    for (int k = 0; k < CUTS; k++) {
        int best = -1;
        for (int c = lo; c <= hi; c++) {
            int taken = 0;
            for (int j = 0; j < nc; j++)
                taken |= abs(c - cuts[j]) <= CUT_APART;
            if (taken)
                continue;
            /* the cut's ink: the lighter of the two columns it separates */
            float v = s->proj[c] < s->proj[c - 1] ? s->proj[c] : s->proj[c - 1];
            float bv =
                best < 0 ? 0.0f
                         : (s->proj[best] < s->proj[best - 1] ? s->proj[best] : s->proj[best - 1]);
            if (best < 0 || v < bv)
                best = c;
        }
        if (best < 0)
            break;
        cuts[nc++] = best;
    }
    for (int k = 0; k < SCAN && hi >= lo; k++) {
        int c = lo + (int)((double)(hi - lo) * (k + 0.5) / SCAN), dup = 0;
        for (int j = 0; j < nc; j++)
            dup |= cuts[j] == c;
        if (!dup)
            cuts[nc++] = c;
    }
    /* Score every cut; best_l/best_r hold the best pair, cur_l/cur_r the one being tried. */
    struct nn_read_digit *best_l = &slots[0], *best_r = &slots[1];
    struct nn_read_digit *cur_l = &slots[2], *cur_r = &slots[3];
    double best_score = -1.0;
    for (int k = 0; k < nc; k++) {
        int rc = classify(s, gb, g, x0, cuts[k] - 1, cur_l);
        if (rc == NN_EBLANK)
            continue;
        if (rc != NN_OK)
            return rc;
        if (top(cur_l) <= best_score) /* the right half cannot lift the product */
            continue;
        rc = classify(s, gb, g, cuts[k], x1, cur_r);
        if (rc == NN_EBLANK)
            continue;
        if (rc != NN_OK)
            return rc;
        /* the right piece's score counts when it is one digit's width */
        double score = top(cur_l) * (!chain || cur_r->w <= WIDE * dh ? top(cur_r) : 1.0);
        if (score > best_score) {
            best_score = score;
            struct nn_read_digit *t = best_l;
            best_l = cur_l;
            cur_l = t;
            t = best_r;
            best_r = cur_r;
            cur_r = t;
        }
    }
    if (best_score <= 0.0 || log(best_score) + SPLIT_SLOPE * (aspect - pivot) <=
                                 log(top(whole) > 1e-30 ? top(whole) : 1e-30))
        return append(out, whole);
    const int first = out->n;
    int rc = read_part(s, gb, g, best_l, out, slots + SLOTS, depth + 1);
    if (rc == NN_OK)
        rc = read_part(s, gb, g, best_r, out, slots + SLOTS, depth + 1);
    if (rc != NN_OK)
        return rc;
    /* The cut is kept only if every piece reads as a digit: an X cut in two is still not a
     * digit, and one mark that is not a digit says more than two. */
    for (int j = first; j < out->n; j++)
        if (out->digits[j].prediction == NN_NOT_A_DIGIT) {
            out->n = first;
            return append(out, whole);
        }
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Public                                                                                   */
/* ---------------------------------------------------------------------------------------- */

int nn_read_number(struct nn_read_result *out, const nn_model *model, nn_workspace *ws,
                   const float *src, int w, int h)
{
    if (!out || !model || !ws || !src)
        return NN_EINVAL;
    out->n = 0;
    out->classified = 0;
    out->work = 0;
    int c, mh, mw;
    nn_model_input_shape(model, &c, &mh, &mw);
    int classes = nn_model_classes(model);
    if (c != 1 || mh != NN_MNIST_SIDE || mw != NN_MNIST_SIDE || classes < 1 ||
        classes > NN_OUTPUTS_MAX)
        return NN_EINVAL;
    if (w < 1 || h < 1 || w > NN_IMAGE_MAX_SIDE || h > NN_IMAGE_MAX_SIDE)
        return NN_ERANGE;
    float peak = 0.0f;
    for (size_t i = 0; i < (size_t)w * h; i++)
        peak = src[i] > peak ? src[i] : peak;
    peak = peak > 1.0f ? 1.0f : peak;
    if (!(peak >= NOISE_ABS))
        return NN_EBLANK;

    struct seg s = {.src = src, .w = w, .h = h, .model = model, .ws = ws, .classes = classes};
    s.thresh = NOISE_REL * peak > NOISE_ABS ? NOISE_REL * peak : NOISE_ABS;
    struct nn_read_digit *slots = NULL;
    struct group groups[NN_READ_MAX_DIGITS + 1];
    size_t n = (size_t)w * h;
    int rc = NN_ENOMEM;
    s.label = malloc(n * sizeof *s.label);
    s.sub = malloc(n * sizeof *s.sub); /* also the labelling stack: int32_t and float, 4 bytes */
    s.proj = malloc((size_t)w * sizeof *s.proj);
    slots = malloc(((size_t)SLOTS * NN_READ_MAX_DIGITS + 1) * sizeof *slots);
    if (!s.label || !s.sub || !s.proj || !slots)
        goto fail;
    rc = label_marks(&s, (int32_t *)(void *)s.sub);
    if (rc != NN_OK)
        goto fail;
    rc = NN_ENOMEM;
    s.gid = malloc((size_t)(s.nmarks ? s.nmarks : 1) * sizeof *s.gid);
    if (!s.gid)
        goto fail;
    int ng = group_marks(&s, groups);
    if (ng < 0) {
        rc = ng;
        goto fail;
    }
    rc = NN_OK;
    ng = join_pieces(&s, groups, ng);
    s.med_h = median_height(groups, ng);
    for (int g = 0; g < ng; g++)
        if (groups[g].y1 - groups[g].y0 + 1 > s.ref_h)
            s.ref_h = groups[g].y1 - groups[g].y0 + 1;
    for (int g = 0; g < ng && rc == NN_OK; g++) {
        struct nn_read_digit *whole = &slots[SLOTS * NN_READ_MAX_DIGITS];
        rc = classify(&s, &groups[g], g, groups[g].x0, groups[g].x1, whole);
        if (rc == NN_OK)
            rc = read_part(&s, &groups[g], g, whole, out, slots, 0);
    }
    if (rc == NN_OK)
        drop_fragments(out);
    if (rc == NN_OK && out->n == 0)
        rc = NN_EBLANK;
fail:
    out->classified = s.classified;
    out->work = s.work;
    if (rc != NN_OK)
        out->n = 0;
    free(s.label);
    free(s.sub);
    free(s.proj);
    free(s.marks);
    free(s.gid);
    free(slots);
    return rc;
}
