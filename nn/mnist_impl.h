/*
 * mnist_impl.h - private: the in-memory IDX parser of nn/mnist.c.
 *
 * The file loader (nn_dataset_load_idx) and this parser share one header check, so the fuzz
 * target (tests/fuzz/fuzz_idx.c) and the tests exercise the same validation the loader uses.
 * Never included from server/.
 *
 * IDX format (http://yann.lecun.com/exdb/mnist/): bytes 0x00 0x00, element type (0x08 =
 * unsigned byte), number of dimensions; then each dimension as a big-endian uint32; then the
 * elements, row-major. MNIST images are 3-D (n, rows, cols), labels 1-D (n).
 */
#ifndef NN_MNIST_IMPL_H
#define NN_MNIST_IMPL_H

#include "nn.h"

#include <stddef.h>
#include <stdint.h>

#define NN_IDX_IMAGES 3 /* dimensions of an image file: magic 0x00000803 */
#define NN_IDX_LABELS 1 /* dimensions of a label file: magic 0x00000801 */
#define NN_IDX_TYPE_U8 0x08

/* Limits: 10 million items, sides up to NN_IMAGE_MAX_SIDE, at most 1 GiB of elements. */
#define NN_IDX_MAX_ITEMS 10000000u
#define NN_IDX_MAX_BYTES ((size_t)1 << 30)

struct nn_idx_header {
    int ndims;           /* NN_IDX_IMAGES or NN_IDX_LABELS */
    size_t n;            /* items (images or labels) */
    int rows, cols;      /* image side; 1 and 1 for labels */
    size_t header_bytes; /* 4 + 4 * ndims */
    size_t data_bytes;   /* n * rows * cols, overflow-checked and capped */
};

/*
 * Validates an IDX header held in buf[0..len) (len may exceed the header; the bytes after it
 * are not looked at). ndims is NN_IDX_IMAGES or NN_IDX_LABELS; name (a path) starts every
 * message. Fills *hdr on success.
 * Errors: NN_EFORMAT (header truncated, wrong magic, element type not unsigned byte),
 * NN_ERANGE (zero or absurd dimensions, data over NN_IDX_MAX_BYTES), NN_EINVAL (bad ndims).
 */
int nn_idx_parse_header(struct nn_idx_header *hdr, const uint8_t *buf, size_t len, int ndims,
                        const char *name, char *err, size_t errlen);

/*
 * Validates a whole IDX file held in buf[0..len): the header, then a data length exactly
 * equal to what the dimensions announce (truncated or trailing bytes are NN_EFORMAT), and for
 * label files every label in 0..9. On success *data points into buf at the first element.
 * Allocates nothing; thread-safe.
 */
int nn_idx_parse(struct nn_idx_header *hdr, const uint8_t **data, const uint8_t *buf, size_t len,
                 int ndims, const char *name, char *err, size_t errlen);

/* NN_EFORMAT naming the first label outside 0..9, else NN_OK. */
int nn_idx_check_labels(const uint8_t *labels, size_t n, const char *name, char *err,
                        size_t errlen);

#endif
