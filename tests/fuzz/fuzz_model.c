/*
 * fuzz_model.c - fuzz target for the model file loader (nn/model_file.c, models/FORMAT.md).
 *
 * Every input goes through nn_model_load_buffer twice: as it is, and with its header length and
 * trailing CRC-32 rewritten to match, so that mutations get past the checksum and exercise the
 * section parsers behind it. The loader must never crash, leak or read outside the input; a refusal must be a known negative status with a message and no model. An accepted
 * input must describe a model the writer can write again, and writing is a fixed point: the
 * bytes saved from the reloaded copy equal the bytes saved from the first load (the input
 * itself may differ, e.g. by an unknown optional section the writer drops).
 * Replayed over tests/fuzz/corpus/model by `make test` (plain main in tests/fuzz/replay.c),
 * run with libFuzzer by `make fuzz`.
 */
#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    char err[512];
    nn_model *m = (nn_model *)&err; /* any non-NULL value: a refusal must reset it */
    nn_model *again = NULL;
    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    int st;

    err[0] = '\0';
    st = nn_model_load_buffer(&m, data, size, err, sizeof err);
    if (st != NN_OK) {
        if (m != NULL || err[0] == '\0' ||
            (st != NN_EFORMAT && st != NN_EVERSION && st != NN_ECHECKSUM && st != NN_ERANGE &&
             st != NN_ENOMEM))
            abort();
        return;
    }
    if (!m || nn_model_classes(m) < 1 || nn_model_classes(m) > NN_CLASSES_MAX)
        abort();
    if (nn_model_save_buffer(m, &b1, &n1, err, sizeof err) != NN_OK)
        abort();
    if (nn_model_load_buffer(&again, b1, n1, err, sizeof err) != NN_OK)
        abort();
    if (nn_model_save_buffer(again, &b2, &n2, err, sizeof err) != NN_OK)
        abort();
    if (n1 != n2 || memcmp(b1, b2, n1) != 0)
        abort();
    free(b1);
    free(b2);
    nn_model_free(again);
    nn_model_free(m);
}

/* Header (magic 8, version u32, length u64) ... CRC-32 u32: see models/FORMAT.md. */
static void check_with_valid_checksum(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    uint32_t crc;

    if (size < 24 || size > ((size_t)1 << 24))
        return;
    copy = malloc(size);
    if (!copy)
        return;
    memcpy(copy, data, size);
    for (int i = 0; i < 8; i++)
        copy[12 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    crc = (uint32_t)crc32(0L, copy, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
        copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check(copy, size);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    check_with_valid_checksum(data, size);
    return 0;
}
