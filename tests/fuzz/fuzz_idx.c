/*
 * fuzz_idx.c - fuzz target for the IDX parser (nn/mnist.c through nn/mnist_impl.h).
 *
 * Every input is parsed both as an image file and as a label file. The parser must never
 * crash or read out of bounds, and when it accepts an input its answer must be consistent:
 * the data lies inside the input and its length is exactly what the header announces.
 * Replayed over tests/fuzz/corpus/idx by `make test` (plain main in tests/fuzz/replay.c),
 * run with libFuzzer by `make fuzz`.
 */
#include "nn/mnist_impl.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, int ndims)
{
    struct nn_idx_header hdr;
    const uint8_t *elems = NULL;
    char err[256];
    int st = nn_idx_parse(&hdr, &elems, data, size, ndims, "fuzz", err, sizeof(err));
    if (st == NN_OK) {
        /* accepted: the answer must agree with the bytes */
        if (!elems || elems != data + hdr.header_bytes ||
            hdr.header_bytes + hdr.data_bytes != size ||
            hdr.data_bytes != hdr.n * (size_t)hdr.rows * (size_t)hdr.cols || hdr.n == 0) {
            abort();
        }
        if (ndims == NN_IDX_LABELS) {
            for (size_t i = 0; i < hdr.n; i++) {
                if (elems[i] > 9) {
                    abort();
                }
            }
        }
    } else if (st > 0 || elems != NULL || err[0] == '\0') {
        abort(); /* failures are negative, leave no data pointer, and say why */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, NN_IDX_IMAGES);
    check(data, size, NN_IDX_LABELS);
    return 0;
}
