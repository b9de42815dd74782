/*
 * model_file.c - the model file: serialise a model to bytes and back, validating every byte.
 *
 * The format is specified in models/FORMAT.md (version 1): a 20-byte header (magic, version,
 * total length), tagged sections (ARCH, PREP, META, HIST, PARM; unknown optional sections are
 * skipped, unknown required ones refused), and a CRC-32 of everything before it.
 *
 * Design: every multi-byte value is encoded and decoded explicitly little-endian, one byte at a
 * time, so the bytes never depend on the host or on struct padding, and saving the same model
 * twice gives the same bytes. The loader trusts nothing: sizes are checked against caps before
 * they are used, against the bytes actually present before anything is allocated, and the
 * parameters must be exactly the count the architecture implies (nn_model_layout).
 */
#include "atomic_file.h"
#include "nn_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 binary32/binary64 expected");

/* ---------------------------------------------------------------------------------------- */
/* Format constants (models/FORMAT.md)                                                      */
/* ---------------------------------------------------------------------------------------- */

static const unsigned char MAGIC[8] = {'D', 'I', 'G', 'I', 'T', 'S', 'N', 'N'};

enum {
    FORMAT_VERSION = 1,
    HEADER_SIZE = 20,         /* magic 8, version u32, total length u64 */
    SECTION_HEADER_SIZE = 12, /* tag 4, flags u32, length u32 */
    CHECKSUM_SIZE = 4,        /* CRC-32 (zlib), u32 */
    LAYER_RECORD_SIZE = 24,   /* kind u32, units/kernel/stride/pad i32, rate f32 */
    ARCH_FIXED_SIZE = 16,     /* in_c, in_h, in_w, n_layers: u32 */
    META_FIXED_SIZE = 472,    /* META after its strings: see models/FORMAT.md */
    HISTORY_RECORD_SIZE = 40, /* epoch i32, step i64, 5 x f32, seconds f64 */
    MAX_HISTORY = 100000,
    MAX_SECTIONS = 64,
};

#define FLAG_REQUIRED 1u
/* nn_model_load refuses bigger files (models/FORMAT.md): 128 M parameters, 250 times the largest
 * shipped model, and a bound on what a server's reload can cost */
#define MAX_FILE_SIZE ((size_t)512 << 20)

/* Section tags as the four bytes in file order. */
#define TAG_ARCH "ARCH"
#define TAG_PREP "PREP"
#define TAG_META "META"
#define TAG_HIST "HIST"
#define TAG_PARM "PARM"
#define TAG_REJT "REJT" /* optional: the "not a digit" threshold (models/FORMAT.md) */
#define REJT_SIZE 8     /* class u32, threshold f32 */

/* Known sections, in the order the writer emits them. */
static const struct {
    const char *tag;
    const char *name; /* as used in messages */
} KNOWN[] = {
    {TAG_ARCH, "architecture"}, {TAG_PREP, "preprocessing"}, {TAG_META, "metadata"},
    {TAG_HIST, "history"},      {TAG_PARM, "parameters"},
};
enum { S_ARCH, S_PREP, S_META, S_HIST, S_PARM, N_KNOWN };

/* ---------------------------------------------------------------------------------------- */
/* Little-endian encoding                                                                   */
/* ---------------------------------------------------------------------------------------- */

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Two's complement reinterpretation without implementation-defined casts. */
static int32_t u32_to_i32(uint32_t v) { return v <= INT32_MAX ? (int32_t)v : -(int32_t)(~v) - 1; }

static int64_t u64_to_i64(uint64_t v) { return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1; }

static float bits_to_f32(uint32_t v)
{
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    return v;
}

static double bits_to_f64(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static uint64_t f64_to_bits(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    return v;
}

/* zlib's crc32 takes a uInt length; feed big buffers in chunks. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* Which layer (1-based) and part ("weights"/"biases") flat parameter index j belongs to. */
static void param_owner(const struct nn_model *m, size_t j, int *layer, const char **part)
{
    *layer = 0, *part = "?";
    for (int i = 0; i < m->n_layers; i++) {
        const struct nn_layer *L = &m->layers[i];
        if (j >= L->w_off && j < L->w_off + L->n_w) {
            *layer = i + 1, *part = "weights";
            return;
        }
        if (j >= L->b_off && j < L->b_off + L->n_b) {
            *layer = i + 1, *part = "biases";
            return;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Writer                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Writes into a buffer sized beforehand; every put is bounds-checked by the size computation,
 * and save_buffer asserts at the end that it wrote exactly that size. */
struct writer {
    unsigned char *p;
    size_t pos;
};

static void w_bytes(struct writer *w, const void *src, size_t n)
{
    if (n)
        memcpy(w->p + w->pos, src, n);
    w->pos += n;
}
static void w_u32(struct writer *w, uint32_t v) { put_u32(w->p + w->pos, v), w->pos += 4; }
static void w_u64(struct writer *w, uint64_t v) { put_u64(w->p + w->pos, v), w->pos += 8; }
static void w_i32(struct writer *w, int32_t v) { w_u32(w, (uint32_t)v); }
static void w_i64(struct writer *w, int64_t v) { w_u64(w, (uint64_t)v); }
static void w_f32(struct writer *w, float v) { w_u32(w, f32_to_bits(v)); }
static void w_f64(struct writer *w, double v) { w_u64(w, f64_to_bits(v)); }

static void w_str(struct writer *w, const char *s, size_t field_size)
{
    size_t n = strnlen(s, field_size);
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}

/* Starts a section; returns the offset of its length field, patched by section_end. */
static size_t section_begin(struct writer *w, const char *tag)
{
    size_t at;
    w_bytes(w, tag, 4);
    w_u32(w, FLAG_REQUIRED);
    at = w->pos;
    w_u32(w, 0);
    return at;
}

static void section_end(struct writer *w, size_t len_at)
{
    put_u32(w->p + len_at, (uint32_t)(w->pos - len_at - 4));
}

/* The metadata strings in file order, with their struct field sizes. One per line, left alone
 * by clang-format, which reflows X-macro lists differently on every pass. */
/* clang-format off */
#define META_STRINGS(X, m)                                                                         \
    X(m, name)                                                                                     \
    X(m, dataset)                                                                                  \
    X(m, dataset_sha256)                                                                           \
    X(m, trainer_version)                                                                          \
    X(m, optimizer)                                                                                \
    X(m, schedule)                                                                                 \
    X(m, augment)                                                                                  \
    X(m, command)
/* clang-format on */

static int check_meta_for_save(const struct nn_meta *meta, size_t *strings_len, char *err,
                               size_t errlen)
{
    size_t total = 0;
#define CHECK_STR(m, f)                                                                            \
    if (strnlen((m)->f, sizeof(m)->f) == sizeof(m)->f)                                             \
        return nn_seterr(err, errlen, NN_EINVAL, "metadata " #f " is not NUL-terminated");         \
    total += 4 + strlen((m)->f);
    META_STRINGS(CHECK_STR, meta)
#undef CHECK_STR
    if (meta->n_history < 0 || meta->n_history > MAX_HISTORY)
        return nn_seterr(err, errlen, NN_ERANGE, "history: %d points (at most %d)",
                         (int)meta->n_history, MAX_HISTORY);
    if (meta->n_history > 0 && !meta->history)
        return nn_seterr(err, errlen, NN_EINVAL, "history: %d points but no array",
                         (int)meta->n_history);
    *strings_len = total;
    return NN_OK;
}

int nn_model_save_buffer(const nn_model *model, void **data, size_t *size, char *err, size_t errlen)
{
    const struct nn_meta *meta;
    size_t strings_len = 0, total, len_at;
    struct writer w = {0};
    int rc;

    if (!model || !data || !size)
        return nn_seterr(err, errlen, NN_EINVAL, "save: NULL argument");
    *data = NULL, *size = 0;
    meta = &model->meta;
    rc = check_meta_for_save(meta, &strings_len, err, errlen);
    if (rc)
        return rc;
    if (model->n_layers < 1 || model->n_layers > NN_MAX_LAYERS)
        return nn_seterr(err, errlen, NN_EINVAL, "save: %d layers", model->n_layers);
    /* A file the loader would refuse is not worth writing: say so now, naming the value. */
    for (size_t j = 0; j < model->n_params; j++) {
        if (!isfinite(model->params[j])) {
            int layer;
            const char *part;
            param_owner(model, j, &layer, &part);
            return nn_seterr(err, errlen, NN_ERANGE,
                             "parameters: layer %d %s: value %zu is %s; a model file holds "
                             "finite parameters only",
                             layer, part, j, isnan(model->params[j]) ? "NaN" : "infinite");
        }
    }
    /* n_params <= 2^28 (nn_model_layout), so none of these sums can overflow a size_t on a
     * 64-bit host; the PARM length must still fit its u32 length field. */
    if (model->n_params > (UINT32_MAX - 8) / 4)
        return nn_seterr(err, errlen, NN_ERANGE, "save: %zu parameters do not fit a section",
                         model->n_params);
    total = HEADER_SIZE;
    total += SECTION_HEADER_SIZE + ARCH_FIXED_SIZE + (size_t)model->n_layers * LAYER_RECORD_SIZE;
    total += SECTION_HEADER_SIZE + 4;
    total += SECTION_HEADER_SIZE + strings_len + META_FIXED_SIZE;
    total += SECTION_HEADER_SIZE + 4 + (size_t)meta->n_history * HISTORY_RECORD_SIZE;
    total += SECTION_HEADER_SIZE + 8 + model->n_params * 4;
    if (model->reject_threshold > 0)
        total += SECTION_HEADER_SIZE + REJT_SIZE;
    total += CHECKSUM_SIZE;

    w.p = malloc(total);
    if (!w.p)
        return nn_seterr(err, errlen, NN_ENOMEM, "save: out of memory for %zu bytes", total);

    w_bytes(&w, MAGIC, sizeof MAGIC);
    w_u32(&w, FORMAT_VERSION);
    w_u64(&w, total);

    len_at = section_begin(&w, TAG_ARCH);
    w_u32(&w, (uint32_t)model->in_c);
    w_u32(&w, (uint32_t)model->in_h);
    w_u32(&w, (uint32_t)model->in_w);
    w_u32(&w, (uint32_t)model->n_layers);
    for (int i = 0; i < model->n_layers; i++) {
        const struct nn_layer_spec *s = &model->specs[i];
        w_u32(&w, (uint32_t)s->kind);
        w_i32(&w, s->units);
        w_i32(&w, s->kernel);
        w_i32(&w, s->stride);
        w_i32(&w, s->pad);
        w_f32(&w, s->rate);
    }
    section_end(&w, len_at);

    len_at = section_begin(&w, TAG_PREP);
    w_u32(&w, (uint32_t)model->prep);
    section_end(&w, len_at);

    len_at = section_begin(&w, TAG_META);
#define PUT_STR(m, f) w_str(&w, (m)->f, sizeof(m)->f);
    META_STRINGS(PUT_STR, meta)
#undef PUT_STR
    w_u64(&w, meta->seed);
    w_f32(&w, meta->lr);
    w_f32(&w, meta->momentum);
    w_f32(&w, meta->weight_decay);
    w_i32(&w, meta->batch);
    w_i32(&w, meta->epochs);
    w_i32(&w, meta->threads);
    w_i64(&w, meta->iterations);
    w_f32(&w, meta->train_loss);
    w_f32(&w, meta->train_acc);
    w_f32(&w, meta->test_loss);
    w_f32(&w, meta->test_acc);
    for (int t = 0; t < NN_CLASSES_MAX; t++)
        for (int p = 0; p < NN_CLASSES_MAX; p++)
            w_u32(&w, meta->confusion[t][p]);
    w_f64(&w, meta->train_seconds);
    w_i64(&w, meta->created_unix);
    section_end(&w, len_at);

    len_at = section_begin(&w, TAG_HIST);
    w_u32(&w, (uint32_t)meta->n_history);
    for (int i = 0; i < meta->n_history; i++) {
        const struct nn_history_point *h = &meta->history[i];
        w_i32(&w, h->epoch);
        w_i64(&w, h->step);
        w_f32(&w, h->lr);
        w_f32(&w, h->train_loss);
        w_f32(&w, h->train_acc);
        w_f32(&w, h->test_loss);
        w_f32(&w, h->test_acc);
        w_f64(&w, h->seconds);
    }
    section_end(&w, len_at);

    len_at = section_begin(&w, TAG_PARM);
    w_u64(&w, model->n_params);
    for (size_t j = 0; j < model->n_params; j++)
        w_f32(&w, model->params[j]);
    section_end(&w, len_at);

    if (model->reject_threshold > 0) { /* optional: old readers skip it */
        w_bytes(&w, TAG_REJT, 4);
        w_u32(&w, 0);
        w_u32(&w, REJT_SIZE);
        w_u32(&w, NN_NOT_A_DIGIT_CLASS);
        w_f32(&w, model->reject_threshold);
    }

    w_u32(&w, crc32_of(w.p, w.pos));
    if (w.pos != total) { /* a size computation out of step with the writer: a bug here */
        free(w.p);
        return nn_seterr(err, errlen, NN_EINVAL, "save: internal size mismatch (%zu != %zu)", w.pos,
                         total);
    }
    *data = w.p;
    *size = total;
    return NN_OK;
}

int nn_model_save(const nn_model *model, const char *path, char *err, size_t errlen)
{
    void *data = NULL;
    size_t size = 0;
    char detail[256];
    int rc;

    if (!path || !*path)
        return nn_seterr(err, errlen, NN_EINVAL, "save: empty path");
    rc = nn_model_save_buffer(model, &data, &size, detail, sizeof detail);
    if (rc)
        return nn_seterr(err, errlen, rc, "%s: %s", path, detail);
    /* nn_atomic_write's messages already start with the path. */
    rc = nn_atomic_write(path, data, size, err, errlen);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Reader                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* A bounds-checked cursor over one section's payload. */
struct reader {
    const unsigned char *p;
    size_t len, pos;
    const char *section; /* for messages */
    char *err;
    size_t errlen;
};

/* Checks that n more bytes are there; what names the field for the message. */
static int r_need(struct reader *r, size_t n, const char *what)
{
    if (r->len - r->pos < n)
        return nn_seterr(r->err, r->errlen, NN_EFORMAT,
                         "truncated in %s (%s): expected %zu bytes, got %zu", r->section, what, n,
                         r->len - r->pos);
    return NN_OK;
}

static int r_u32(struct reader *r, uint32_t *v, const char *what)
{
    int rc = r_need(r, 4, what);
    if (rc)
        return rc;
    *v = get_u32(r->p + r->pos);
    r->pos += 4;
    return NN_OK;
}

static int r_u64(struct reader *r, uint64_t *v, const char *what)
{
    int rc = r_need(r, 8, what);
    if (rc)
        return rc;
    *v = get_u64(r->p + r->pos);
    r->pos += 8;
    return NN_OK;
}

static int r_i32(struct reader *r, int32_t *v, const char *what)
{
    uint32_t u;
    int rc = r_u32(r, &u, what);
    *v = rc ? 0 : u32_to_i32(u);
    return rc;
}

static int r_i64(struct reader *r, int64_t *v, const char *what)
{
    uint64_t u;
    int rc = r_u64(r, &u, what);
    *v = rc ? 0 : u64_to_i64(u);
    return rc;
}

static int r_f32(struct reader *r, float *v, const char *what)
{
    uint32_t u;
    int rc = r_u32(r, &u, what);
    *v = rc ? 0.0f : bits_to_f32(u);
    return rc;
}

static int r_f64(struct reader *r, double *v, const char *what)
{
    uint64_t u;
    int rc = r_u64(r, &u, what);
    *v = rc ? 0.0 : bits_to_f64(u);
    return rc;
}

/* A length-prefixed string into a char[field_size] (NUL-terminated; at most field_size - 1
 * bytes, none of them NUL). */
static int r_str(struct reader *r, char *dst, size_t field_size, const char *what)
{
    uint32_t n;
    int rc = r_u32(r, &n, what);
    if (rc)
        return rc;
    if (n > field_size - 1)
        return nn_seterr(r->err, r->errlen, NN_ERANGE, "%s %s: %u bytes (at most %zu)", r->section,
                         what, n, field_size - 1);
    rc = r_need(r, n, what);
    if (rc)
        return rc;
    if (memchr(r->p + r->pos, '\0', n))
        return nn_seterr(r->err, r->errlen, NN_EFORMAT, "%s %s: contains a NUL byte", r->section,
                         what);
    memcpy(dst, r->p + r->pos, n);
    dst[n] = '\0';
    r->pos += n;
    return NN_OK;
}

/* A section's payload must be consumed exactly. */
static int r_end(struct reader *r)
{
    if (r->pos != r->len)
        return nn_seterr(r->err, r->errlen, NN_EFORMAT,
                         "%s: %zu unexpected bytes at the end of the section", r->section,
                         r->len - r->pos);
    return NN_OK;
}

/* Where each known section is, after the directory pass. */
struct section {
    size_t off;   /* payload offset in the file */
    size_t len;   /* declared payload length */
    size_t avail; /* payload bytes present (< len only when the file is truncated) */
    int seen;
};

struct loader {
    const unsigned char *p;
    size_t size;     /* bytes present */
    size_t declared; /* total length from the header */
    struct section sec[N_KNOWN];
    int truncated_in; /* index of the known section the data ends in, or -1 */
    size_t rejt_off;  /* payload offset of the optional REJT section, 0 if absent */
    size_t rejt_len;
    char *err;
    size_t errlen;
};

static struct reader section_reader(struct loader *ld, int s)
{
    struct reader r = {ld->p + ld->sec[s].off, ld->sec[s].avail, 0,
                       KNOWN[s].name,          ld->err,          ld->errlen};
    return r;
}

/* Writes tag bytes as text, escaping anything unprintable. */
static void tag_text(char out[17], const unsigned char *tag)
{
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        if (tag[i] >= 0x20 && tag[i] < 0x7f && tag[i] != '\\')
            out[k++] = (char)tag[i];
        else
            k += (size_t)snprintf(out + k, 5, "\\x%02x", tag[i]);
    }
    out[k] = '\0';
}

/*
 * Walks the section headers between the file header and the checksum, recording the known
 * sections. On a truncated file (declared > size) it stops where the data ends: a section
 * whose payload is cut short is recorded with avail < len and named in truncated_in.
 */
static int read_directory(struct loader *ld)
{
    size_t pos = HEADER_SIZE, end = (size_t)ld->declared - CHECKSUM_SIZE;
    int count = 0;

    ld->truncated_in = -1;
    while (pos < end) {
        uint32_t flags, len;
        const unsigned char *tag;
        char tagtxt[17];
        int s;

        if (end - pos < SECTION_HEADER_SIZE)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "section header at offset %zu: %zu bytes left before the checksum, "
                             "a section header needs %d",
                             pos, end - pos, SECTION_HEADER_SIZE);
        if (ld->size < pos + SECTION_HEADER_SIZE)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "truncated in section header at offset %zu: expected %d bytes, got "
                             "%zu",
                             pos, SECTION_HEADER_SIZE, ld->size - pos);
        if (++count > MAX_SECTIONS)
            return nn_seterr(ld->err, ld->errlen, NN_ERANGE, "more than %d sections", MAX_SECTIONS);
        tag = ld->p + pos;
        flags = get_u32(ld->p + pos + 4);
        len = get_u32(ld->p + pos + 8);
        tag_text(tagtxt, tag);
        pos += SECTION_HEADER_SIZE;
        if (flags & ~FLAG_REQUIRED)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "section '%s': reserved flag bits set (0x%08x)", tagtxt, flags);
        if (len > end - pos)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "section '%s': length %u overruns the file (%zu bytes left before "
                             "the checksum)",
                             tagtxt, len, end - pos);
        for (s = 0; s < N_KNOWN; s++)
            if (!memcmp(tag, KNOWN[s].tag, 4))
                break;
        if (s == N_KNOWN && !memcmp(tag, TAG_REJT, 4)) {
            if (ld->rejt_off)
                return nn_seterr(ld->err, ld->errlen, NN_EFORMAT, "section '%s' appears twice",
                                 tagtxt);
            ld->rejt_off = pos;
            ld->rejt_len = len;
        } else if (s == N_KNOWN) {
            if (flags & FLAG_REQUIRED)
                return nn_seterr(ld->err, ld->errlen, NN_EVERSION,
                                 "section '%s' is marked required but this reader does not know "
                                 "it (written by a newer version?)",
                                 tagtxt);
        } else {
            if (ld->sec[s].seen)
                return nn_seterr(ld->err, ld->errlen, NN_EFORMAT, "section '%s' appears twice",
                                 tagtxt);
            ld->sec[s].seen = 1;
            ld->sec[s].off = pos;
            ld->sec[s].len = len;
            ld->sec[s].avail = ld->size >= pos + len ? len : ld->size - pos;
            if (ld->sec[s].avail < len) {
                ld->truncated_in = s;
                return NN_OK;
            }
        }
        if (ld->size < pos + len) /* an unknown optional section cut short */
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "truncated in section '%s': expected %u bytes, got %zu", tagtxt, len,
                             ld->size - pos);
        pos += len;
    }
    for (int s = 0; s < N_KNOWN; s++)
        if (!ld->sec[s].seen)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT, "missing section '%s' (%s)",
                             KNOWN[s].tag, KNOWN[s].name);
    return NN_OK;
}

/* The optional REJT section into m->reject_threshold (after the architecture is known). */
static int read_rejt(struct loader *ld, struct nn_model *m)
{
    struct reader r = {ld->p + ld->rejt_off,  ld->rejt_len, 0,
                       "rejection threshold", ld->err,      ld->errlen};
    uint32_t cls;
    float t;
    int rc;

    if (!ld->rejt_off)
        return NN_OK;
    if ((rc = r_u32(&r, &cls, "class")) || (rc = r_f32(&r, &t, "threshold")) || (rc = r_end(&r)))
        return rc;
    if (cls != NN_NOT_A_DIGIT_CLASS || nn_model_classes(m) != NN_NOT_A_DIGIT_CLASS + 1)
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "rejection threshold: class %u of a %d-class model (expected class %d "
                         "of an %d-class model)",
                         cls, nn_model_classes(m), NN_NOT_A_DIGIT_CLASS, NN_NOT_A_DIGIT_CLASS + 1);
    if (!(t > 0.0f && t <= 1.0f))
        return nn_seterr(ld->err, ld->errlen, NN_ERANGE, "rejection threshold: %g is not in (0, 1]",
                         (double)t);
    m->reject_threshold = t;
    return NN_OK;
}

/* ARCH into m->in_*, n_layers, specs, then nn_model_layout (which sets n_params). */
static int read_arch(struct loader *ld, struct nn_model *m)
{
    struct reader r = section_reader(ld, S_ARCH);
    uint32_t c, h, w, n;
    int rc;

    if ((rc = r_u32(&r, &c, "input channels")) || (rc = r_u32(&r, &h, "input height")) ||
        (rc = r_u32(&r, &w, "input width")) || (rc = r_u32(&r, &n, "layer count")))
        return rc;
    if (c < 1 || c > 64 || h < 1 || h > NN_IMAGE_MAX_SIDE || w < 1 || w > NN_IMAGE_MAX_SIDE)
        return nn_seterr(ld->err, ld->errlen, NN_ERANGE,
                         "architecture: input shape %ux%ux%u out of range (channels 1..64, sides "
                         "1..%d)",
                         c, h, w, NN_IMAGE_MAX_SIDE);
    if (n < 1 || n > NN_MAX_LAYERS)
        return nn_seterr(ld->err, ld->errlen, NN_ERANGE, "architecture: %u layers (expected 1..%d)",
                         n, NN_MAX_LAYERS);
    if (r.len != ARCH_FIXED_SIZE + (size_t)n * LAYER_RECORD_SIZE)
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "architecture: %u layers need a %zu-byte section, it has %zu", n,
                         ARCH_FIXED_SIZE + (size_t)n * LAYER_RECORD_SIZE, r.len);
    m->in_c = (int)c, m->in_h = (int)h, m->in_w = (int)w;
    m->n_layers = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        struct nn_layer_spec *s = &m->specs[i];
        uint32_t kind;
        if ((rc = r_u32(&r, &kind, "layer kind")))
            return rc;
        if (kind < NN_LAYER_DENSE || kind > NN_LAYER_FLATTEN)
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "architecture: layer %u: unknown kind %u", i + 1, kind);
        s->kind = (enum nn_layer_kind)kind;
        if ((rc = r_i32(&r, &s->units, "layer units")) ||
            (rc = r_i32(&r, &s->kernel, "layer kernel")) ||
            (rc = r_i32(&r, &s->stride, "layer stride")) ||
            (rc = r_i32(&r, &s->pad, "layer pad")) || (rc = r_f32(&r, &s->rate, "layer rate")))
            return rc;
    }
    if ((rc = r_end(&r)))
        return rc;
    {
        char detail[200];
        rc = nn_model_layout(m, detail, sizeof detail);
        if (rc) /* a spec the builder refuses is malformed data here, not a bad argument */
            return nn_seterr(ld->err, ld->errlen, rc == NN_EINVAL ? NN_EFORMAT : rc,
                             "architecture: %s", detail);
    }
    return NN_OK;
}

static int read_prep(struct loader *ld, enum nn_preprocess *prep)
{
    struct reader r = section_reader(ld, S_PREP);
    uint32_t v;
    int rc;

    if ((rc = r_u32(&r, &v, "preprocess")) || (rc = r_end(&r)))
        return rc;
    if (v != NN_PREP_NONE && v != NN_PREP_MNIST)
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "preprocessing: unknown kind %u (0 none, 1 mnist)", v);
    *prep = (enum nn_preprocess)v;
    return NN_OK;
}

static int read_meta(struct loader *ld, struct nn_meta *meta)
{
    struct reader r = section_reader(ld, S_META);
    int rc;

#define GET_STR(m, f)                                                                              \
    if ((rc = r_str(&r, (m)->f, sizeof(m)->f, #f)))                                                \
        return rc;
    META_STRINGS(GET_STR, meta)
#undef GET_STR
    if ((rc = r_u64(&r, &meta->seed, "seed")) || (rc = r_f32(&r, &meta->lr, "lr")) ||
        (rc = r_f32(&r, &meta->momentum, "momentum")) ||
        (rc = r_f32(&r, &meta->weight_decay, "weight_decay")) ||
        (rc = r_i32(&r, &meta->batch, "batch")) || (rc = r_i32(&r, &meta->epochs, "epochs")) ||
        (rc = r_i32(&r, &meta->threads, "threads")) ||
        (rc = r_i64(&r, &meta->iterations, "iterations")) ||
        (rc = r_f32(&r, &meta->train_loss, "train_loss")) ||
        (rc = r_f32(&r, &meta->train_acc, "train_acc")) ||
        (rc = r_f32(&r, &meta->test_loss, "test_loss")) ||
        (rc = r_f32(&r, &meta->test_acc, "test_acc")))
        return rc;
    for (int t = 0; t < NN_CLASSES_MAX; t++)
        for (int p = 0; p < NN_CLASSES_MAX; p++)
            if ((rc = r_u32(&r, &meta->confusion[t][p], "confusion matrix")))
                return rc;
    if ((rc = r_f64(&r, &meta->train_seconds, "train_seconds")) ||
        (rc = r_i64(&r, &meta->created_unix, "created_unix")))
        return rc;
    return r_end(&r);
}

/* HIST into meta->history (allocated here; the caller's nn_meta_free releases it). */
static int read_hist(struct loader *ld, struct nn_meta *meta)
{
    struct reader r = section_reader(ld, S_HIST);
    uint32_t n;
    int rc;

    if ((rc = r_u32(&r, &n, "point count")))
        return rc;
    if (n > MAX_HISTORY)
        return nn_seterr(ld->err, ld->errlen, NN_ERANGE, "history: %u points (at most %d)", n,
                         MAX_HISTORY);
    if (r.len != 4 + (size_t)n * HISTORY_RECORD_SIZE)
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "history: %u points need a %zu-byte section, it has %zu", n,
                         4 + (size_t)n * HISTORY_RECORD_SIZE, r.len);
    if (n == 0)
        return NN_OK;
    meta->history = calloc(n, sizeof *meta->history);
    if (!meta->history)
        return nn_seterr(ld->err, ld->errlen, NN_ENOMEM, "history: out of memory for %u points", n);
    meta->n_history = (int32_t)n;
    for (uint32_t i = 0; i < n; i++) {
        struct nn_history_point *h = &meta->history[i];
        int32_t epoch;
        if ((rc = r_i32(&r, &epoch, "epoch")) || (rc = r_i64(&r, &h->step, "step")) ||
            (rc = r_f32(&r, &h->lr, "lr")) || (rc = r_f32(&r, &h->train_loss, "train_loss")) ||
            (rc = r_f32(&r, &h->train_acc, "train_acc")) ||
            (rc = r_f32(&r, &h->test_loss, "test_loss")) ||
            (rc = r_f32(&r, &h->test_acc, "test_acc")) || (rc = r_f64(&r, &h->seconds, "seconds")))
            return rc;
        h->epoch = epoch;
    }
    return r_end(&r);
}

/* PARM's count against the layout (m->n_params) and its length against the count; checked
 * before the parameter array is allocated. */
static int check_parm_header(struct loader *ld, const struct nn_model *m)
{
    struct reader r = section_reader(ld, S_PARM);
    uint64_t count;
    int rc;

    if ((rc = r_u64(&r, &count, "parameter count")))
        return rc;
    if (count != m->n_params)
        return nn_seterr(ld->err, ld->errlen, NN_ERANGE,
                         "parameters: the file holds %llu, the architecture needs %zu",
                         (unsigned long long)count, m->n_params);
    if (ld->sec[S_PARM].len != 8 + m->n_params * 4)
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "parameters: %zu values need a %zu-byte section, it has %zu", m->n_params,
                         8 + m->n_params * 4, ld->sec[S_PARM].len);
    return NN_OK;
}

static int read_params(struct loader *ld, struct nn_model *m)
{
    const unsigned char *p = ld->p + ld->sec[S_PARM].off + 8;

    for (size_t j = 0; j < m->n_params; j++) {
        float v = bits_to_f32(get_u32(p + 4 * j));
        if (!isfinite(v)) {
            int layer;
            const char *part;
            param_owner(m, j, &layer, &part);
            return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                             "parameters: layer %d %s: value %zu is %s (parameters must be "
                             "finite)",
                             layer, part, j, isnan(v) ? "NaN" : "infinite");
        }
        m->params[j] = v;
    }
    return NN_OK;
}

/*
 * The message for a file shorter than its header says: the section the data ends in, and for
 * the parameters the layer. Runs on unchecked data, so it only reads what is present.
 */
static int truncation_error(struct loader *ld)
{
    int s = ld->truncated_in;
    const struct section *sec;

    if (s < 0) /* all sections present: the checksum is what is missing */
        return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                         "truncated in checksum: expected %d bytes, got %zu", CHECKSUM_SIZE,
                         ld->size - (size_t)(ld->declared - CHECKSUM_SIZE));
    sec = &ld->sec[s];
    if (s == S_PARM && sec->avail >= 8 && ld->sec[S_ARCH].seen &&
        ld->sec[S_ARCH].avail == ld->sec[S_ARCH].len) {
        struct nn_model m;
        char detail[256];
        struct loader quiet = *ld;
        memset(&m, 0, sizeof m);
        quiet.err = detail, quiet.errlen = sizeof detail;
        if (read_arch(&quiet, &m) == NN_OK && check_parm_header(&quiet, &m) == NN_OK) {
            size_t have = (sec->avail - 8) / 4; /* whole floats present */
            for (int i = 0; i < m.n_layers; i++) {
                const struct nn_layer *L = &m.layers[i];
                if (L->n_w && have < L->w_off + L->n_w)
                    return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                                     "truncated in parameters (layer %d weights): expected %zu "
                                     "bytes, got %zu",
                                     i + 1, L->n_w * 4, sec->avail - 8 - L->w_off * 4);
                if (L->n_b && have < L->b_off + L->n_b)
                    return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                                     "truncated in parameters (layer %d biases): expected %zu "
                                     "bytes, got %zu",
                                     i + 1, L->n_b * 4, sec->avail - 8 - L->b_off * 4);
            }
        }
    }
    return nn_seterr(ld->err, ld->errlen, NN_EFORMAT,
                     "truncated in %s: expected %zu bytes, got %zu", KNOWN[s].name, sec->len,
                     sec->avail);
}

/* Printable form of up to 8 magic bytes: "DIGITSNN", "\x89PNG\r\n..." */
static void magic_text(char *out, size_t outlen, const unsigned char *p, size_t n)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && k + 5 < outlen; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            out[k++] = (char)p[i], out[k] = '\0';
        else
            k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", p[i]);
    }
}

int nn_model_load_buffer(nn_model **out, const void *data, size_t size, char *err, size_t errlen)
{
    struct loader ld;
    struct nn_model *tmp = NULL, *m = NULL;
    enum nn_preprocess prep = NN_PREP_NONE;
    uint32_t version, crc_file, crc;
    int rc;

    if (!out)
        return nn_seterr(err, errlen, NN_EINVAL, "load: NULL output");
    *out = NULL;
    if (!data && size > 0)
        return nn_seterr(err, errlen, NN_EINVAL, "load: NULL data");
    memset(&ld, 0, sizeof ld);
    ld.p = data, ld.size = size, ld.err = err, ld.errlen = errlen;

    /* Header: magic first (even on a short file), then version, then the length. */
    if (size > 0 && memcmp(ld.p, MAGIC, size < sizeof MAGIC ? size : sizeof MAGIC)) {
        char got[48];
        magic_text(got, sizeof got, ld.p, size < sizeof MAGIC ? size : sizeof MAGIC);
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "bad magic: not a digits model file (expected \"DIGITSNN\", got \"%s\")",
                         got);
    }
    if (size >= 12) {
        version = get_u32(ld.p + 8);
        if (version != FORMAT_VERSION)
            return nn_seterr(err, errlen, NN_EVERSION,
                             "format version %u is not supported (this build reads version %d%s)",
                             version, FORMAT_VERSION,
                             version > FORMAT_VERSION ? "; the file is from a newer digits" : "");
    }
    if (size < HEADER_SIZE)
        return nn_seterr(err, errlen, NN_EFORMAT, "truncated in header: expected %d bytes, got %zu",
                         HEADER_SIZE, size);
    {
        uint64_t declared = get_u64(ld.p + 12);
        size_t min = HEADER_SIZE + CHECKSUM_SIZE;
        if (declared < min)
            return nn_seterr(err, errlen, NN_EFORMAT,
                             "header declares %llu bytes, less than the smallest model file (%zu)",
                             (unsigned long long)declared, min);
        if (declared < size)
            return nn_seterr(err, errlen, NN_EFORMAT,
                             "%zu trailing byte%s after the end of the model (the header "
                             "declares %llu bytes, got %zu)",
                             size - (size_t)declared, size - (size_t)declared == 1 ? "" : "s",
                             (unsigned long long)declared, size);
        if (declared > size) {
            if (declared > SIZE_MAX)
                return nn_seterr(err, errlen, NN_EFORMAT,
                                 "truncated: the header declares %llu bytes, got %zu",
                                 (unsigned long long)declared, size);
            ld.declared = (size_t)declared;
            rc = read_directory(&ld);
            return rc ? rc : truncation_error(&ld);
        }
        ld.declared = size;
    }

    crc_file = get_u32(ld.p + size - CHECKSUM_SIZE);
    crc = crc32_of(ld.p, size - CHECKSUM_SIZE);
    if (crc != crc_file)
        return nn_seterr(err, errlen, NN_ECHECKSUM,
                         "checksum mismatch: the file says CRC-32 %08x, its contents give %08x "
                         "(corrupted or modified)",
                         crc_file, crc);

    if ((rc = read_directory(&ld)))
        return rc;

    /* The architecture and parameter count are settled on a scratch model before anything
     * sized by them is allocated. */
    tmp = calloc(1, sizeof *tmp);
    if (!tmp)
        return nn_seterr(err, errlen, NN_ENOMEM, "load: out of memory");
    if ((rc = read_arch(&ld, tmp)) || (rc = read_prep(&ld, &prep)) ||
        (rc = check_parm_header(&ld, tmp)))
        goto fail;
    {
        char detail[200];
        rc = nn_model_new(&m, tmp->in_c, tmp->in_h, tmp->in_w, tmp->specs, tmp->n_layers, NULL,
                          detail, sizeof detail);
        if (rc) {
            rc = nn_seterr(err, errlen, rc == NN_EINVAL ? NN_EFORMAT : rc, "architecture: %s",
                           detail);
            goto fail;
        }
    }
    if (m->n_params != tmp->n_params) { /* cannot happen: same specs, same layout */
        rc = nn_seterr(err, errlen, NN_EFORMAT, "parameters: layout changed while loading");
        goto fail;
    }
    if ((rc = read_params(&ld, m)) || (rc = read_meta(&ld, &m->meta)) ||
        (rc = read_hist(&ld, &m->meta)) || (rc = read_rejt(&ld, m)))
        goto fail;
    m->prep = prep;
    free(tmp);
    *out = m;
    return NN_OK;

fail:
    free(tmp);
    nn_model_free(m);
    return rc;
}

int nn_model_load(nn_model **out, const char *path, char *err, size_t errlen)
{
    unsigned char *data = NULL;
    size_t size = 0;
    char detail[512];
    int rc;

    if (!out)
        return nn_seterr(err, errlen, NN_EINVAL, "load: NULL output");
    *out = NULL;
    if (!path || !*path)
        return nn_seterr(err, errlen, NN_EINVAL, "load: empty path");
    rc = nn_read_file(path, MAX_FILE_SIZE, (void **)&data, &size, err, errlen);
    if (rc)
        return rc;
    rc = nn_model_load_buffer(out, data, size, detail, sizeof detail);
    if (rc)
        nn_seterr(err, errlen, rc, "%s: %s", path, detail);
    free(data);
    return rc;
}
