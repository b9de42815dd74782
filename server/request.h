/*
 * request.h - a /predict body (JSON) turned into images: pure functions, no HTTP.
 *
 * Two parsers produce the same result. A fast path reads the forms clients send
 * ({"pixels":[...]}, {"width","height","pixels"}, {"images":[...]}, with "model" and
 * "return_input") straight into float arrays without building a tree: cJSON spends ~45 us on
 * a 784-number body (one malloc, a localeconv and a strtod per number), more than the whole
 * rest of a request, and a 64-byte node per value. The fast path reads every valid request
 * (escapes, UTF-8, any JSON number) but words no error: at the first thing that is wrong it
 * gives up, noting where and why. The body then goes through a one-pass prescan (depth,
 * value count, and the tokens cJSON is lenient about checked strictly: RFC 8259 numbers,
 * UTF-8 strings, no \u0000) and, when it has fewer than SRV_JSON_TREE_MAX values, through
 * cJSON_ParseWithLengthOpts, which words the error. A larger body never gets a tree: the fast
 * path's note is the message ("invalid request at byte 9: an unknown or repeated field").
 * Numbers are converted exactly where the digits allow (an integer mantissa below 2^53 times
 * or divided by an exact power of ten <= 1e22, which IEEE arithmetic rounds correctly), else
 * by strtod, as cJSON does, so both paths give bit-identical floats;
 * tests/fuzz/fuzz_predict_json.c checks that the two agree on every input.
 *
 * Work: one pass for a valid body, at most three for an invalid one; memory: the pixels
 * (4 bytes per number) and, under SRV_JSON_TREE_MAX values, cJSON's tree (< 1 MB).
 * Limits (all enforced before or while allocating): 2048 pixels per side, 256 images per
 * batch, 2048*2048 pixels in all, JSON nesting depth 4 ({"images":[{"pixels":[...]}]}).
 */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stddef.h>

#define SRV_MAX_SIDE 2048
#define SRV_MAX_IMAGES 256
#define SRV_MAX_TOTAL_PIXELS (SRV_MAX_SIDE * SRV_MAX_SIDE)
#define SRV_MAX_DEPTH 4
#define SRV_MODEL_NAME_MAX 64 /* including the NUL */
#define SRV_JSON_NUMBER_MAX 63 /* characters in a number (what cJSON reads) */
#define SRV_JSON_TREE_MAX 8192 /* values in a body handed to cJSON (see below) */

struct srv_image {
    int width, height;              /* 28x28 for the MNIST form */
    int raw;                        /* 1: {"pixels":[784]} used as is; 0: to be normalised */
    float *pixels;                  /* width*height values in [0,1], 1 = ink; owned */
    char model[SRV_MODEL_NAME_MAX]; /* "" = the default model */
    int return_input;
    int return_input_given; /* 1 when the body said it (for this image or at the top) */
};

struct srv_request {
    int batch;                /* 1 when the body used {"images":[...]} */
    int n;                    /* images */
    struct srv_image *images; /* n; points at `one` for a single image */
    struct srv_image one;
    int fast; /* 1 when the fast path parsed it (for tests) */
};

/* Flags for srv_request_parse_json. */
#define SRV_PARSE_NO_FAST 1u   /* cJSON only */
#define SRV_PARSE_FAST_ONLY 2u /* fast path only: returns SRV_NOT_HANDLED where it gives up */
#define SRV_NOT_HANDLED 1

/*
 * Parses and validates a /predict JSON body of len bytes (need not be NUL-terminated).
 * On success fills *req (free with srv_request_free) and returns 0. On failure *req is empty
 * and the return is NN_EINVAL (malformed or invalid request: 400) or NN_ENOMEM, with a
 * sentence for the client in err ("pixels has 783 numbers, expected 784", "value 3.5 at index
 * 17 is outside [0,1]"). Thread-safe.
 */
int srv_request_parse_json(struct srv_request *req, const char *body, size_t len, unsigned flags,
                           char *err, size_t errlen);

/* Frees the pixels of every image; req becomes empty. Accepts NULL and empty requests. */
void srv_request_free(struct srv_request *req);

#endif
