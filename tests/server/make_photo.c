/*
 * make_photo.c - writes a phone-style JPEG (tests/server/photo.h) for the node tests, so that
 * no multi-megabyte photo is committed.
 *
 *   build/tests/make-photo WIDTH HEIGHT QUALITY ORIENTATION OUT.jpg [PAD_TO_BYTES]
 *
 * RGB 4:2:0 baseline; ORIENTATION 0 writes no EXIF, 1..8 an APP1 with that Orientation.
 * PAD_TO_BYTES appends zeros after EOI up to that size (decoders stop at EOI), to test bodies
 * at the size limit.
 */
#include "tests/server/photo.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: make-photo WIDTH HEIGHT QUALITY ORIENTATION OUT.jpg [PAD]\n");
        return 1;
    }
    int w = atoi(argv[1]), h = atoi(argv[2]), q = atoi(argv[3]), o = atoi(argv[4]);
    long pad = argc == 7 ? atol(argv[6]) : 0;
    if (w < 1 || h < 1 || w > 65535 || h > 65535 || q < 1 || q > 100 || o < 0 || o > 8) {
        fprintf(stderr, "make-photo: bad arguments\n");
        return 1;
    }
    uint8_t *jpg = NULL;
    size_t len = 0;
    if (photo_make(&jpg, &len, w, h, 3, q, o, 0) != 0) {
        fprintf(stderr, "make-photo: cannot make a %dx%d JPEG\n", w, h);
        return 1;
    }
    FILE *f = fopen(argv[5], "wb");
    if (!f || fwrite(jpg, 1, len, f) != len) {
        perror(argv[5]);
        return 1;
    }
    for (long n = (long)len; n < pad; n++)
        if (fputc(0, f) == EOF) {
            perror(argv[5]);
            return 1;
        }
    if (fclose(f) != 0) {
        perror(argv[5]);
        return 1;
    }
    free(jpg);
    return 0;
}
