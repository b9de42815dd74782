/*
 * request.h - a /predict body (JSON) turned into images: pure functions, no HTTP.
 *
 * Two parsers produce the same result. A fast path reads the forms clients actually send
 * ({"pixels":[...]}, {"width","height","pixels"}, {"images":[...]}, with "model" and
 * "return_input") straight into float arrays without building a tree: cJSON spends ~45 us on
 * a 784-number body (one malloc, a localeconv and a strtod per number), more than the whole
 * rest of a request. The fast path never reports an error: at the first thing it does not
 * handle exactly (a string escape, an unknown field, a value out of range, a number it cannot
 * convert exactly) it gives up and the body is parsed again with cJSON_ParseWithLengthOpts,
 * which decides and words every error. Numbers on the fast path are converted exactly (an
 * integer mantissa below 2^53 times or divided by an exact power of ten <= 1e22, which IEEE
 * division and multiplication round correctly), so both paths give bit-identical floats;
 * tests/fuzz/fuzz_predict_json.c checks that the two agree on every input.
 *
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

struct srv_image {
    int width, height;              /* 28x28 for the MNIST form */
    int raw;                        /* 1: {"pixels":[784]} used as is; 0: to be normalised */
    float *pixels;                  /* width*height values in [0,1], 1 = ink; owned */
    char model[SRV_MODEL_NAME_MAX]; /* "" = the default model */
    int return_input;
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

/* Sets up a request holding one image of w*h pixels (allocated, uninitialised), used for
 * image uploads. Returns 0 or NN_ENOMEM. */
int srv_request_init_single(struct srv_request *req, int w, int h);

#endif
