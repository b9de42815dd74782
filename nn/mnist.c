/*
 * mnist.c - reading MNIST IDX files, raw or gzip-compressed.
 *
 * Design: the header is read and validated first, so nothing is allocated for a file whose
 * header is wrong, and the element buffer grows by doubling up to the size the header
 * announces: a tiny (or tiny compressed) file that claims a gigabyte cannot make us allocate
 * one. zlib's gzread reads uncompressed files transparently, so gzip is detected from the
 * bytes, not the name. Every check is shared with the in-memory parser (mnist_impl.h) that
 * the fuzz target drives.
 */
#include "atomic_file.h"
#include "mnist_impl.h"
#include "nn_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FIRST_CHUNK ((size_t)1 << 20) /* first buffer size; doubles up to the announced size */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *what_of(int ndims) { return ndims == NN_IDX_IMAGES ? "pixels" : "labels"; }

/* The length checks shared by the memory parser and the file loader. */
static int check_length(const char *name, int ndims, size_t expected, size_t got, int trailing,
                        char *err, size_t errlen)
{
    if (got < expected) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: truncated: expected %zu bytes of %s, got %zu", name, expected,
                         what_of(ndims), got);
    }
    if (trailing) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: trailing bytes after the %zu bytes of %s the header announces", name,
                         expected, what_of(ndims));
    }
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* In-memory parsing (mnist_impl.h)                                                          */
/* ---------------------------------------------------------------------------------------- */

int nn_idx_parse_header(struct nn_idx_header *hdr, const uint8_t *buf, size_t len, int ndims,
                        const char *name, char *err, size_t errlen)
{
    if (!name) {
        name = "IDX";
    }
    if (!hdr || (!buf && len > 0) || (ndims != NN_IDX_IMAGES && ndims != NN_IDX_LABELS)) {
        return nn_seterr(err, errlen, NN_EINVAL, "%s: bad arguments to the IDX parser", name);
    }
    memset(hdr, 0, sizeof(*hdr));
    uint32_t want_magic = (uint32_t)NN_IDX_TYPE_U8 << 8 | (uint32_t)ndims;
    const char *kind = ndims == NN_IDX_IMAGES ? "image" : "label";
    if (len < 4) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: truncated: %zu bytes, too short for an IDX magic number", name, len);
    }
    uint32_t magic = be32(buf);
    if (buf[0] != 0 || buf[1] != 0 || buf[3] != ndims) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x", name, kind,
                         (unsigned)magic, (unsigned)want_magic);
    }
    if (buf[2] != NN_IDX_TYPE_U8) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: unsupported IDX element type 0x%02x (only 0x08, unsigned byte)", name,
                         (unsigned)buf[2]);
    }
    size_t hlen = 4 + 4 * (size_t)ndims;
    if (len < hlen) {
        return nn_seterr(err, errlen, NN_EFORMAT,
                         "%s: truncated: expected a %zu-byte header, got %zu bytes", name, hlen,
                         len);
    }
    uint32_t n = be32(buf + 4);
    uint32_t rows = ndims == NN_IDX_IMAGES ? be32(buf + 8) : 1;
    uint32_t cols = ndims == NN_IDX_IMAGES ? be32(buf + 12) : 1;
    if (n == 0 || n > NN_IDX_MAX_ITEMS) {
        return nn_seterr(err, errlen, NN_ERANGE, "%s: %u %ss: expected 1..%u", name, (unsigned)n,
                         kind, (unsigned)NN_IDX_MAX_ITEMS);
    }
    if (rows == 0 || rows > NN_IMAGE_MAX_SIDE || cols == 0 || cols > NN_IMAGE_MAX_SIDE) {
        return nn_seterr(err, errlen, NN_ERANGE,
                         "%s: images of %ux%u pixels: each side must be 1..%d", name,
                         (unsigned)rows, (unsigned)cols, NN_IMAGE_MAX_SIDE);
    }
    size_t per = (size_t)rows * cols; /* <= 2^24, cannot overflow */
    if (n > NN_IDX_MAX_BYTES / per) {
        return nn_seterr(err, errlen, NN_ERANGE,
                         "%s: %u images of %ux%u pixels exceed the %zu-byte limit", name,
                         (unsigned)n, (unsigned)rows, (unsigned)cols, (size_t)NN_IDX_MAX_BYTES);
    }
    hdr->ndims = ndims;
    hdr->n = n;
    hdr->rows = (int)rows;
    hdr->cols = (int)cols;
    hdr->header_bytes = hlen;
    hdr->data_bytes = (size_t)n * per;
    return NN_OK;
}

int nn_idx_check_labels(const uint8_t *labels, size_t n, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (labels[i] > 9) {
            return nn_seterr(err, errlen, NN_EFORMAT, "%s: label %u at index %zu is outside 0..9",
                             name ? name : "IDX", (unsigned)labels[i], i);
        }
    }
    return NN_OK;
}

int nn_idx_parse(struct nn_idx_header *hdr, const uint8_t **data, const uint8_t *buf, size_t len,
                 int ndims, const char *name, char *err, size_t errlen)
{
    if (!name) {
        name = "IDX";
    }
    if (!data) {
        return nn_seterr(err, errlen, NN_EINVAL, "%s: bad arguments to the IDX parser", name);
    }
    *data = NULL;
    int st = nn_idx_parse_header(hdr, buf, len, ndims, name, err, errlen);
    if (st < 0) {
        return st;
    }
    size_t got = len - hdr->header_bytes;
    st = check_length(name, ndims, hdr->data_bytes, got, got > hdr->data_bytes, err, errlen);
    if (st < 0) {
        return st;
    }
    const uint8_t *p = buf + hdr->header_bytes;
    if (ndims == NN_IDX_LABELS) {
        st = nn_idx_check_labels(p, hdr->n, name, err, errlen);
        if (st < 0) {
            return st;
        }
    }
    *data = p;
    return NN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Turns a failed or short gzread into a status: system errors are NN_EIO, damaged compressed
 * data NN_EFORMAT. Returns NN_OK when the stream simply ended (including a gzip stream cut
 * short, which the length check then reports as truncation). */
static int gz_status(gzFile gz, const char *path, char *err, size_t errlen)
{
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr == Z_OK || zerr == Z_BUF_ERROR) {
        return NN_OK;
    }
    if (zerr == Z_ERRNO) {
        return nn_seterr(err, errlen, NN_EIO, "%s: %s", path, strerror(errno));
    }
    if (zerr == Z_MEM_ERROR) {
        return nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory in zlib", path);
    }
    return nn_seterr(err, errlen, NN_EFORMAT, "%s: corrupt gzip data: %s", path,
                     msg ? msg : "unknown zlib error");
}

/* Reads up to len bytes; *got says how many came. Short only at end of file or on error. */
static int gz_read_full(gzFile gz, uint8_t *buf, size_t len, size_t *got, const char *path,
                        char *err, size_t errlen)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (size_t)INT_MAX / 2) {
            want = (size_t)INT_MAX / 2;
        }
        int r = gzread(gz, buf + *got, (unsigned)want);
        if (r <= 0) {
            return gz_status(gz, path, err, errlen);
        }
        *got += (size_t)r;
    }
    return NN_OK;
}

/*
 * Opens path for gzread. Opened without blocking and checked with fstat first, so a FIFO is
 * refused at once instead of waiting for a writer, and a device (/dev/zero) is never read:
 * only a regular file's bytes are trusted to end. Nothing bounds the size of a compressed
 * file, but read_idx never reads more than the header announces plus one byte.
 */
static int open_idx(gzFile *out, const char *path, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), st;
    *out = NULL;
    if (fd < 0) {
        return nn_seterr(err, errlen, NN_EIO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0) {
        st = nn_seterr(err, errlen, NN_EIO, "%s: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if ((st = nn_file_check_regular(path, &sb, err, errlen)) < 0) {
        close(fd);
        return st;
    }
    *out = gzdopen(fd, "rb");
    if (!*out) {
        close(fd);
        return nn_seterr(err, errlen, NN_ENOMEM, "%s: cannot open: out of memory", path);
    }
    gzbuffer(*out, 1u << 17);
    return NN_OK;
}

/* Reads and validates one IDX file; *out (malloc'd, hdr->data_bytes bytes) on success. */
static int read_idx(const char *path, int ndims, struct nn_idx_header *hdr, uint8_t **out,
                    char *err, size_t errlen)
{
    int st = NN_OK;
    uint8_t *buf = NULL;
    *out = NULL;

    gzFile gz = NULL;
    st = open_idx(&gz, path, err, errlen);
    if (st < 0) {
        return st;
    }

    uint8_t head[16];
    size_t hlen = 4 + 4 * (size_t)ndims, got = 0;
    st = gz_read_full(gz, head, hlen, &got, path, err, errlen);
    if (st < 0) {
        goto fail;
    }
    st = nn_idx_parse_header(hdr, head, got, ndims, path, err, errlen);
    if (st < 0) {
        goto fail;
    }

    size_t want = hdr->data_bytes, cap = want < FIRST_CHUNK ? want : FIRST_CHUNK;
    buf = malloc(cap);
    if (!buf) {
        st = nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
        goto fail;
    }
    got = 0;
    for (;;) {
        size_t part = 0;
        st = gz_read_full(gz, buf + got, cap - got, &part, path, err, errlen);
        if (st < 0) {
            goto fail;
        }
        got += part;
        if (got < cap || cap == want) {
            break;
        }
        size_t ncap = cap > want / 2 ? want : cap * 2;
        uint8_t *nbuf = realloc(buf, ncap);
        if (!nbuf) {
            st = nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
            goto fail;
        }
        buf = nbuf;
        cap = ncap;
    }

    int trailing = 0;
    if (got == want) {
        uint8_t extra;
        size_t n_extra = 0;
        st = gz_read_full(gz, &extra, 1, &n_extra, path, err, errlen);
        if (st < 0) {
            goto fail;
        }
        trailing = n_extra > 0;
    }
    st = check_length(path, ndims, want, got, trailing, err, errlen);
    if (st < 0) {
        goto fail;
    }
    if (ndims == NN_IDX_LABELS) {
        st = nn_idx_check_labels(buf, hdr->n, path, err, errlen);
        if (st < 0) {
            goto fail;
        }
    }
    gzclose(gz);
    *out = buf;
    return NN_OK;

fail:
    free(buf);
    gzclose(gz);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                                */
/* ---------------------------------------------------------------------------------------- */

int nn_dataset_load_idx(struct nn_dataset *ds, const char *images_path, const char *labels_path,
                        char *err, size_t errlen)
{
    int st = NN_OK;
    uint8_t *images = NULL, *labels = NULL;
    struct nn_idx_header ih, lh;

    if (!ds || !images_path || !labels_path) {
        return nn_seterr(err, errlen, NN_EINVAL, "nn_dataset_load_idx: NULL argument");
    }
    memset(ds, 0, sizeof(*ds));
    st = read_idx(images_path, NN_IDX_IMAGES, &ih, &images, err, errlen);
    if (st < 0) {
        goto fail;
    }
    st = read_idx(labels_path, NN_IDX_LABELS, &lh, &labels, err, errlen);
    if (st < 0) {
        goto fail;
    }
    if (ih.n != lh.n) {
        st = nn_seterr(err, errlen, NN_EFORMAT, "%s has %zu images but %s has %zu labels",
                       images_path, ih.n, labels_path, lh.n);
        goto fail;
    }
    ds->images = images;
    ds->labels = labels;
    ds->n = ih.n;
    ds->rows = ih.rows;
    ds->cols = ih.cols;
    return NN_OK;

fail:
    free(images);
    free(labels);
    return st;
}

/* "<dir>/<base>" if it exists, else "<dir>/<base>.gz" if that exists; malloc'd into *out. */
static int pick_path(char **out, const char *dir, const char *base, char *err, size_t errlen)
{
    size_t len = strlen(dir) + strlen(base) + 8;
    char *p = malloc(len);
    if (!p) {
        return nn_seterr(err, errlen, NN_ENOMEM, "out of memory");
    }
    snprintf(p, len, "%s/%s", dir, base);
    if (access(p, F_OK) != 0) {
        snprintf(p, len, "%s/%s.gz", dir, base);
        if (access(p, F_OK) != 0) {
            snprintf(p, len, "%s/%s", dir, base); /* neither exists: the error names this */
        }
    }
    *out = p;
    return NN_OK;
}

int nn_dataset_load_mnist(struct nn_dataset *ds, const char *dir, const char *split, char *err,
                          size_t errlen)
{
    int st = NN_OK;
    char *images = NULL, *labels = NULL;
    const char *prefix;

    if (!ds || !dir || !split) {
        return nn_seterr(err, errlen, NN_EINVAL, "nn_dataset_load_mnist: NULL argument");
    }
    memset(ds, 0, sizeof(*ds));
    if (strcmp(split, "train") == 0) {
        prefix = "train";
    } else if (strcmp(split, "test") == 0) {
        prefix = "t10k";
    } else {
        return nn_seterr(err, errlen, NN_EINVAL,
                         "unknown MNIST split \"%s\": expected \"train\" or \"test\"", split);
    }
    char base[32];
    snprintf(base, sizeof(base), "%s-images-idx3-ubyte", prefix);
    st = pick_path(&images, dir, base, err, errlen);
    if (st < 0) {
        goto done;
    }
    snprintf(base, sizeof(base), "%s-labels-idx1-ubyte", prefix);
    st = pick_path(&labels, dir, base, err, errlen);
    if (st < 0) {
        goto done;
    }
    st = nn_dataset_load_idx(ds, images, labels, err, errlen);

done:
    free(images);
    free(labels);
    return st;
}

void nn_dataset_free(struct nn_dataset *ds)
{
    if (!ds) {
        return;
    }
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof(*ds));
}
