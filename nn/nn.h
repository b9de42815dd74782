/*
 * nn.h - the one public header of libnn, the digits neural-network library.
 *
 * Everything the trainer, the evaluator, the server and the tests use goes through here:
 * status codes, the seeded RNG, MNIST IDX reading, MNIST-style image normalisation, the
 * architecture spec, the model (build, predict, save, load) and training.
 *
 * Conventions (see STYLE.md):
 * - Functions return 0 (NN_OK) or a negative enum nn_status; nothing here prints or exits.
 * - Loaders and parsers also take a caller's `char *err, size_t errlen` and fill it with the
 *   detail a person needs; err may be NULL.
 * - Whoever returns a buffer provides its _free; every _free accepts NULL.
 * - No global mutable state: randomness is an explicit struct nn_rng, thread counts are
 *   arguments. A loaded nn_model's weights are immutable (it caches transposed copies for
 *   single-image inference, built on first use and published lock-free); predictions take a
 *   caller-owned nn_workspace, so any number of threads can share one model without locks.
 * - Images are row-major float, values in [0,1], 1 = ink (MNIST polarity).
 */
#ifndef NN_H
#define NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NN_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------- */
/* Status                                                                                   */
/* ---------------------------------------------------------------------------------------- */

enum nn_status {
    NN_OK = 0,
    NN_EINVAL = -1,    /* bad argument or spec */
    NN_ENOMEM = -2,    /* allocation failed or size overflow */
    NN_EIO = -3,       /* system call failed; errno-based detail in err */
    NN_EFORMAT = -4,   /* file or data malformed (magic, sizes, truncation, trailing bytes) */
    NN_EVERSION = -5,  /* file format version not supported */
    NN_ECHECKSUM = -6, /* checksum mismatch */
    NN_ERANGE = -7,    /* a size or value outside the accepted limits */
    NN_EBLANK = -8,    /* image has no ink: nothing to classify */
    NN_EINTR = -9,     /* stopped on request (progress callback asked to stop) */
};

/* Text for a status ("checksum mismatch"); never NULL. */
const char *nn_strerror(int status);

/*
 * Writes data[0..size) to path atomically: a temporary file "<path>.tmp.XXXXXX" is created in
 * the same directory (so the rename stays on one file system), written in full, fsync'd,
 * closed and renamed over path; then the directory is fsync'd so the rename itself is durable.
 * The new file gets mode 0644.
 *
 * Returns NN_OK, NN_EINVAL (path NULL or empty, data NULL with size > 0), NN_ENOMEM, or NN_EIO
 * with "path: what failed: strerror(errno)" in err (err may be NULL). An existing path that
 * is a directory, a device, a FIFO or a socket is refused (NN_EIO, "path: not a regular file
 * (a FIFO), not replacing it") before anything is written; a symbolic link is replaced.
 * On any failure before the rename the temporary file is removed and an existing file at path
 * is untouched. If only the final directory fsync fails (after the rename), NN_EIO is
 * returned but the new contents are already in place; file systems that do not support
 * fsync on a directory (EINVAL) are not treated as failing.
 *
 * Thread-safe: no shared state; concurrent writers to the same path each leave a complete file
 * (the last rename wins).
 */
int nn_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen);

/*
 * Reads the whole regular file at path, at most max_size bytes, into *data (malloc'd, with a
 * NUL byte after the last one so text can be read as a string; the caller frees it) and its
 * length into *size. The file is opened without blocking and checked with fstat before a byte
 * is read: a FIFO, device or socket is refused at once (NN_EIO, "path: not a regular file (a
 * FIFO)"), a directory too ("path: opening: Is a directory"), a file over max_size is NN_ERANGE
 * ("path: 600000000 bytes is too big (at most 536870912)"), and no more than the size fstat
 * reported is read. Other system errors are NN_EIO with "path: opening: strerror". Every
 * loader of libnn reads its files through this; thread-safe.
 */
int nn_read_file(const char *path, size_t max_size, void **data, size_t *size, char *err,
                 size_t errlen);

/* ---------------------------------------------------------------------------------------- */
/* RNG: xoshiro256** seeded through splitmix64. Caller-owned, not thread-safe per instance.  */
/* ---------------------------------------------------------------------------------------- */

struct nn_rng {
    uint64_t s[4];
};

void nn_rng_seed(struct nn_rng *rng, uint64_t seed);
uint64_t nn_rng_next(struct nn_rng *rng);
/* Uniform in [0,1). */
float nn_rng_uniform(struct nn_rng *rng);
/* Standard normal (Box-Muller; uses two draws). */
float nn_rng_normal(struct nn_rng *rng);
/* Uniform integer in [0,n), unbiased; n > 0. */
uint32_t nn_rng_below(struct nn_rng *rng, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void nn_rng_shuffle(struct nn_rng *rng, uint32_t *idx, size_t n);
/* Stateless hash of (seed, a, b) to 64 random bits: used to derive per-sample and per-step
 * streams so that results do not depend on thread count or on where a run was resumed. */
uint64_t nn_hash3(uint64_t seed, uint64_t a, uint64_t b);

/* ---------------------------------------------------------------------------------------- */
/* MNIST IDX files                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* A labelled image set kept as bytes (0..255, 255 = ink), as in the IDX files. */
struct nn_dataset {
    uint8_t *images; /* n * rows * cols, row-major */
    uint8_t *labels; /* n, each 0..9 */
    size_t n;
    int rows, cols;
};

/*
 * Reads an IDX image file and its label file (raw or gzip-compressed; gzip is detected from
 * the bytes, not the name). Validates magic (0x00000803 images, 0x00000801 labels), element
 * type (unsigned byte), dimensions against the file size (no trailing bytes), count agreement
 * between the two files, and labels in 0..9.
 * On success fills *ds (caller frees with nn_dataset_free) and returns NN_OK.
 * Errors: NN_EIO (open/read), NN_EFORMAT, NN_ERANGE (absurd dimensions), NN_ENOMEM.
 */
int nn_dataset_load_idx(struct nn_dataset *ds, const char *images_path, const char *labels_path,
                        char *err, size_t errlen);

/* Loads "<dir>/train-*" (split "train") or "<dir>/t10k-*" (split "test"), trying the raw name
 * and then the name with ".gz". */
int nn_dataset_load_mnist(struct nn_dataset *ds, const char *dir, const char *split, char *err,
                          size_t errlen);

void nn_dataset_free(struct nn_dataset *ds);

/* SHA-256 (hex) of the IDX image file ds->images came from: header rebuilt from the
 * dimensions, so it equals `sha256sum` of the raw file. */
void nn_dataset_sha256(char out[65], const struct nn_dataset *ds);
/* SHA-256 (hex) of n bytes. */
void nn_sha256_hex(char out[65], const void *data, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* Images: grayscale conversion and MNIST-style normalisation                               */
/* ---------------------------------------------------------------------------------------- */

#define NN_MNIST_SIDE 28
#define NN_MNIST_PIXELS (NN_MNIST_SIDE * NN_MNIST_SIDE)
#define NN_IMAGE_MAX_SIDE 4096 /* largest width or height accepted anywhere */

/*
 * Ink from real paper: converts 8-bit pixels with `channels` in 1..4 (gray, gray+alpha, RGB,
 * RGBA; alpha composited on white) to ink values in [0,1], 1 = ink, whatever the ground:
 * - a clean image (at least 90% of its border exactly white, or exactly black: a canvas
 *   export) is 1 - luminance (Rec. 601), or luminance on black, exactly;
 * - anything else (photos, scans) goes through nn/ink.c: the channel mix with the best
 *   contrast, polarity from the local contrast (dark ink on paper, or chalk on a board), the
 *   paper's level estimated locally so that grey, cream or coloured paper, gradients and
 *   shadows come out as 0, the ink's own level as 1 with its anti-aliasing, noise thresholded
 *   (hysteresis), ruled and squared lines and specks removed. No ink: dst is all zeros.
 * dst holds w*h floats. Errors: NN_EINVAL, NN_ERANGE (a side outside 1..NN_IMAGE_MAX_SIDE),
 * NN_ENOMEM. Thread-safe; scratch of about 5 bytes per pixel, freed before it returns; about
 * 17 ms for a 1 MP photo on one core.
 */
int nn_image_from_pixels8(float *dst, const uint8_t *src, int w, int h, int channels);

/*
 * MNIST-style normalisation, the same one MNIST itself used: crop to the bounding box of the
 * ink (values below a faint-noise threshold are ignored), scale to fit 20x20 keeping the aspect
 * ratio with area averaging, and place in 28x28 so that the centre of mass is at the centre.
 * Beyond MNIST: a very narrow digit with loops (an 8 a quarter as wide as tall) is widened so
 * they survive, and strokes far thinner or heavier than MNIST's are redrawn at its width.
 * src is w*h in [0,1] (1 = ink); dst is 28*28.
 * Returns NN_OK, NN_EBLANK when there is no ink (dst is zeroed), NN_EINVAL/NN_ERANGE for bad
 * dimensions, NN_ENOMEM. Thread-safe; a redrawn stroke allocates a 50 KB working image.
 */
int nn_image_normalize(float *dst, const float *src, int w, int h);

/* ---------------------------------------------------------------------------------------- */
/* Reading a whole number: segmentation into digits (segment.c)                             */
/* ---------------------------------------------------------------------------------------- */

#define NN_READ_MAX_DIGITS 16
#define NN_READ_MAX_MARKS 4096 /* separate marks (connected components) looked at, at most */
/* Pixels the cuts may look at in all (see nn_read_number's cost; a part's box counts twice):
 * the test sets' numbers look at 5 Mi at most, a 2048x88 bar cut at every place 18 Mi
 * (~120 ms; the digit limit stops it). A fence for larger marks still, at ~4 ns a pixel. */
#define NN_READ_MAX_WORK ((uint64_t)32 << 20)
/* Classifier calls in all (~0.15 ms each with the CNN): the test sets' numbers need at most
 * 236; 16 small touching digits about 650. */
#define NN_READ_MAX_CLASSIFIED 1024
#ifndef NN_CLASSES_MAX
#define NN_CLASSES_MAX 10 /* the same definition as in the Model section below */
#endif
typedef struct nn_model nn_model;
typedef struct nn_workspace nn_workspace;

struct nn_read_digit {
    int x, y, w, h;                /* box of the digit's ink in the input image */
    int prediction;                /* the digit, or NN_NOT_A_DIGIT (nn_model_answer) */
    float probs[NN_CLASSES_MAX];   /* the digit probabilities (nn_model_answer's p10) */
    float not_a_digit;             /* p(not a digit): 0 for a 10-class model */
    float input[NN_MNIST_PIXELS];  /* the 28x28 the network saw */
};

struct nn_read_result {
    int n; /* digits found, left to right */
    struct nn_read_digit digits[NN_READ_MAX_DIGITS];
    int classified; /* classifier calls made (the cost; for tests and benchmarks) */
    uint64_t work;  /* pixels those calls looked at (NN_READ_MAX_WORK) */
};

/*
 * Reads a whole number from an ink image src (w,h), 1 = ink (the output of
 * nn_image_from_pixels8 or a drawing), with a model taking 28x28 MNIST-style input.
 * Ink is src >= max(0.05, 0.1 * strongest ink), as in nn_image_normalize. Its connected
 * components (8-connectivity) are grouped into digits: marks whose x-extents overlap heavily
 * (a 5's flag, a crossed 7, a broken stroke) belong together, and so does a short mark next to
 * a tall one within a stroke's gap that lies inside the tall one's height (the two strokes of
 * an open 4); two marks of similar height side by side (a 1 beside an 8) do not. Groups made
 * only of marks under 5% of the largest mark's pixels are specks and are dropped, and a group
 * under half the median group height (a broken-off stroke) joins the nearest digit within a
 * quarter of that height. Groups are ordered left to right; one wider than the number's digit
 * height (its own or the median group's, whichever is larger) may hold touching digits, and so
 * may one the model rejects as "not a digit" from 0.6 of it: cuts at the 4 columns with the
 * least ink and at 16 evenly spaced ones are scored by the classifier (the product of the
 * halves' top probabilities), and the best split is kept when it beats the whole's top
 * probability weighed by a prior on the aspect ratio (segment.c: past ~1.4x wide a group is
 * split, under ~1.2x it is not unless the split reads much better; for a rejected whole the
 * prior is centred at 0.6x); halves are split again in turn, and a cut is kept only if every
 * piece it leaves reads as a digit (an X stays one mark that is not a digit). A part 1.5x as
 * wide or more may be a chain of touching digits, whose halves are numbers: its cut is taken
 * 0.25x-1.2x from its left end, where the left piece reads best as one digit (times the right
 * piece's probability when that is one digit wide), and the rest is read the same way.
 * Each digit is normalised exactly as /predict does: its own ink inside its box (nothing of
 * its neighbours) through nn_image_normalize, then nn_model_predict.
 * out->digits[0..out->n) receive boxes, probabilities and inputs; each digit's answer is
 * nn_model_answer's (a model with a "not a digit" class may answer NN_NOT_A_DIGIT for one),
 * and cuts are scored with the digit probabilities times 1 - p(not a digit).
 * Cost: O(w*h) to label, O(k^2) to group k marks, and at most 1 + 2 * 20 classifier calls per
 * cut examined (counted in out->classified; a 6-digit 1000x300 image takes ~1 ms), each
 * looking at the part's box: NN_ERANGE with out->work over NN_READ_MAX_WORK when the cuts
 * would look at more pixels than that in all, or out->classified at NN_READ_MAX_CLASSIFIED
 * when they would need more calls.
 * Memory: 8 bytes per pixel plus O(w + marks), all freed before returning.
 * Errors: NN_EINVAL (NULL, or a model whose input is not 28x28x1 or with more than
 * NN_OUTPUTS_MAX outputs), NN_ERANGE (a side outside 1..NN_IMAGE_MAX_SIDE, more than
 * NN_READ_MAX_DIGITS digits, or more than NN_READ_MAX_MARKS separate marks), NN_EBLANK when
 * there is no ink (out->n = 0), NN_ENOMEM. Thread-safe for distinct workspaces.
 */
int nn_read_number(struct nn_read_result *out, const nn_model *model, nn_workspace *ws,
                   const float *src, int w, int h);

/* ---------------------------------------------------------------------------------------- */
/* Architecture                                                                             */
/* ---------------------------------------------------------------------------------------- */

enum nn_layer_kind {
    NN_LAYER_DENSE = 1, /* units */
    NN_LAYER_RELU = 2,
    NN_LAYER_SIGMOID = 3,
    NN_LAYER_TANH = 4,
    NN_LAYER_CONV2D = 5,  /* units = filters, kernel, stride, pad */
    NN_LAYER_MAXPOOL = 6, /* kernel, stride */
    NN_LAYER_DROPOUT = 7, /* rate; identity at inference */
    NN_LAYER_FLATTEN = 8, /* reshape only */
};

struct nn_layer_spec {
    enum nn_layer_kind kind;
    int units;
    int kernel, stride, pad;
    float rate;
};

#define NN_MAX_LAYERS 32
#define NN_MAX_UNITS 65536

/*
 * Parses an architecture string into layers[0..*n). Tokens, comma-separated:
 *   dense:N  conv:F:K[:S[:P]]  pool:K[:S]  dropout:R  flatten  relu  sigmoid  tanh
 * When the string names no activation, `default_act` (NN_LAYER_RELU, _SIGMOID or _TANH) is
 * inserted after every conv and every dense layer except the last, so
 * "conv:32:5,pool:2,dense:256,dense:10" means conv,relu,pool,dense,relu,dense.
 * The last layer must be dense; its units are the number of classes.
 * Errors: NN_EINVAL with the offending token in err.
 */
int nn_arch_parse(struct nn_layer_spec *layers, int max_layers, int *n, const char *spec,
                  enum nn_layer_kind default_act, char *err, size_t errlen);

/* Writes the canonical explicit form ("dense:256,sigmoid,dense:10") into buf; returns the
 * length it needed (like snprintf). */
int nn_arch_format(char *buf, size_t len, const struct nn_layer_spec *layers, int n);

/* ---------------------------------------------------------------------------------------- */
/* Model                                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef struct nn_model nn_model;

/* How the model expects its input to have been prepared. */
enum nn_preprocess {
    NN_PREP_NONE = 0,  /* raw pixels in [0,1] as given */
    NN_PREP_MNIST = 1, /* nn_image_normalize: bbox, 20x20 fit, centre of mass in 28x28 */
};

/* One point of the training history (usually one per epoch). */
struct nn_history_point {
    int epoch;
    int64_t step;
    float lr;
    float train_loss, train_acc; /* running averages over the epoch's batches */
    float test_loss, test_acc;   /* NaN when not evaluated at this point */
    double seconds;              /* wall time since training started */
};

#define NN_CLASSES_MAX 10
#define NN_META_TEXT 128

/* Everything the model file records besides the architecture and the weights. Strings are
 * NUL-terminated; history is owned by the struct (nn_meta_free). */
struct nn_meta {
    char name[64];           /* e.g. "mnist-mlp" */
    char dataset[64];        /* e.g. "mnist" */
    char dataset_sha256[65]; /* hex of the training images file */
    char trainer_version[32];
    char optimizer[32];         /* "sgd", "adam", ... */
    char schedule[32];          /* "constant", "cosine", ... */
    char augment[NN_META_TEXT]; /* augmentation description, "" for none */
    char command[512];          /* the command line that trained it (nn_command_public) */
    uint64_t seed;
    float lr, momentum, weight_decay;
    int32_t batch, epochs, threads;
    int64_t iterations; /* optimiser steps taken */
    float train_loss, train_acc, test_loss, test_acc;
    uint32_t confusion[NN_CLASSES_MAX][NN_CLASSES_MAX]; /* [true][predicted] on the test set */
    double train_seconds;
    int64_t created_unix;
    int32_t n_history;
    struct nn_history_point *history;
};

void nn_meta_free(struct nn_meta *meta);
/* Deep copy (history included). */
int nn_meta_copy(struct nn_meta *dst, const struct nn_meta *src);

/*
 * The training command line (struct nn_meta's command), nn/command.c. Thread-safe, no state.
 *
 * nn_command_join writes argv[0..argc) into buf (len bytes, always NUL-terminated, cut short if
 * too long) as a POSIX shell would take it back: a word with a character outside
 * [A-Za-z0-9_+=.,:/@%-] is put in single quotes, a quote inside written '\''.
 *
 * nn_command_split splits such a line into words in place (cmd is overwritten) as a shell
 * would: spaces separate, '...' is literal, a backslash takes the next character. At most
 * max - 1 words; av[n] = NULL; returns n.
 *
 * nn_command_public writes cmd (a joined line) into out with every absolute path rewritten: a
 * word, or the value of a --flag=value word, starting with '/' becomes relative to cwd when it
 * lies inside cwd ("/repo/data/mnist" -> "data/mnist", cwd itself -> "."), else its last
 * component ("/tmp/x/one.model" -> "one.model"); cwd may be NULL (last components only). So a
 * recorded or served command keeps the flags and which files they named, not the directories
 * of the machine that trained the model. Applying it twice changes nothing. Returns NN_OK,
 * NN_EINVAL (NULL argument, outlen 0) or NN_ENOMEM.
 */
void nn_command_join(char *buf, size_t len, int argc, char *const *argv);
int nn_command_split(char *cmd, char **av, int max);
int nn_command_public(char *out, size_t outlen, const char *cmd, const char *cwd);

/*
 * Builds a model for inputs of shape (c, h, w) with the given layers, parameters initialised
 * from rng (He-normal before ReLU, Glorot-uniform before sigmoid/tanh or at the output, zero
 * biases). Errors: NN_EINVAL (shape mismatch, details in err), NN_ENOMEM.
 */
int nn_model_new(nn_model **out, int c, int h, int w, const struct nn_layer_spec *layers,
                 int n_layers, struct nn_rng *rng, char *err, size_t errlen);
void nn_model_free(nn_model *model);

int nn_model_input_size(const nn_model *model); /* c*h*w */
int nn_model_classes(const nn_model *model);    /* units of the last layer */
size_t nn_model_param_count(const nn_model *model);
int nn_model_layers(const nn_model *model, const struct nn_layer_spec **layers);
void nn_model_input_shape(const nn_model *model, int *c, int *h, int *w);
enum nn_preprocess nn_model_preprocess(const nn_model *model);
void nn_model_set_preprocess(nn_model *model, enum nn_preprocess prep);
const struct nn_meta *nn_model_meta(const nn_model *model);
/* Replaces the metadata with a deep copy of meta. */
int nn_model_set_meta(nn_model *model, const struct nn_meta *meta);
/* Flat parameter array (for tests and checkpoints); count is nn_model_param_count. Taking the
 * mutable pointer drops the model's inference caches (rebuilt from the weights on first use),
 * so take it again before writing after any inference on the model. */
float *nn_model_params(nn_model *model);
const float *nn_model_params_const(const nn_model *model);

/* Per-caller scratch for inference, sized for up to max_batch images. Not shared between
 * threads; any number of workspaces can use one model at once. */
typedef struct nn_workspace nn_workspace;
int nn_workspace_new(nn_workspace **out, const nn_model *model, int max_batch);
void nn_workspace_free(nn_workspace *ws);

/* Softmax probabilities for one input of nn_model_input_size floats into probs[classes].
 * Thread-safe for distinct workspaces. Returns NN_OK or NN_EINVAL (workspace too small). */
int nn_model_predict(const nn_model *model, const float *x, float *probs, nn_workspace *ws);
/* The same for n inputs (n <= the workspace's max_batch); probs is n*classes. */
int nn_model_predict_batch(const nn_model *model, const float *x, int n, float *probs,
                           nn_workspace *ws);

/* Index of the largest of probs[0..n). */
int nn_argmax(const float *probs, int n);

/* ---------------------------------------------------------------------------------------- */
/* Model file (format: models/FORMAT.md)                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Writes the model atomically: a temp file in the same directory, fsync, rename, fsync of the
 * directory. An existing file at path is untouched unless the whole write succeeded. */
int nn_model_save(const nn_model *model, const char *path, char *err, size_t errlen);
/* Loads and fully validates a model file. Errors: NN_EIO, NN_EFORMAT, NN_EVERSION,
 * NN_ECHECKSUM, NN_ERANGE, NN_ENOMEM, each with a specific message in err. */
int nn_model_load(nn_model **out, const char *path, char *err, size_t errlen);
/* The same from memory (used by load, tests and the fuzzer). */
int nn_model_load_buffer(nn_model **out, const void *data, size_t size, char *err, size_t errlen);
/* Serialises into a malloc'd buffer (*data freed by the caller with free()). */
int nn_model_save_buffer(const nn_model *model, void **data, size_t *size, char *err,
                         size_t errlen);

/* ---------------------------------------------------------------------------------------- */
/* Evaluation                                                                               */
/* ---------------------------------------------------------------------------------------- */

struct nn_eval {
    double loss;     /* mean cross-entropy */
    double accuracy; /* fraction correct */
    size_t n;
    uint32_t confusion[NN_CLASSES_MAX][NN_CLASSES_MAX]; /* [true][predicted] */
};

/* Evaluates the model on a dataset (pixels scaled to [0,1], no further preprocessing) with
 * `threads` threads. If predicted is not NULL it receives the n predicted labels. With a
 * "not a digit" class (11 outputs), a digit's prediction is the most likely of the 10 digits
 * (how often it would be rejected is nn_model_answer's business, measured apart) and a
 * non-digit (label 10) is right when class 10 wins. */
int nn_evaluate(const nn_model *model, const struct nn_dataset *ds, int threads,
                struct nn_eval *out, uint8_t *predicted);

/* Accuracy when every image is first distorted the way real drawings differ from MNIST
 * (random shift +-4 px, scale 0.7-1.3x, rotation +-15 degrees, stroke thickening or thinning;
 * streams seeded from `seed`) and then normalised with nn_image_normalize as the server does.
 * Single-threaded; NN_ENOMEM or NN_EINVAL on failure. */
int nn_evaluate_robust(const nn_model *model, const struct nn_dataset *ds, uint64_t seed,
                       double *accuracy);

/* ---------------------------------------------------------------------------------------- */
/* Training                                                                                 */
/* ---------------------------------------------------------------------------------------- */

enum nn_optimizer {
    NN_OPT_SGD = 0, /* plain, or with momentum (heavy ball) / Nesterov */
    NN_OPT_ADAM = 1,
    NN_OPT_ADAMW = 2, /* decoupled weight decay */
    NN_OPT_RMSPROP = 3,
};

enum nn_schedule {
    NN_SCHED_CONSTANT = 0,
    NN_SCHED_STEP = 1,     /* lr *= step_gamma every step_epochs epochs */
    NN_SCHED_COSINE = 2,   /* cosine to 0 over the run, after warm-up */
    NN_SCHED_ONECYCLE = 3, /* linear warm-up to lr then cosine down */
};

struct nn_train_config {
    int batch;          /* mini-batch size; >= dataset size means full-batch GD */
    int epochs;         /* passes over the data */
    int64_t iterations; /* if > 0: stop after this many optimiser steps instead */
    float lr;
    enum nn_optimizer optimizer;
    float momentum; /* SGD momentum; RMSprop decay uses beta2 */
    int nesterov;
    float beta1, beta2, eps;
    float weight_decay; /* L2 for SGD/Adam/RMSprop, decoupled for AdamW */
    enum nn_schedule schedule;
    float warmup_epochs;
    int step_epochs;
    float step_gamma;
    uint64_t seed;
    int threads;
    /* On-the-fly augmentation: 0 disables each. */
    float aug_shift;     /* max shift in pixels */
    float aug_rotate;    /* max rotation in degrees */
    float aug_scale;     /* max relative scale change, e.g. 0.15 */
    float aug_shear;     /* max shear */
    float aug_elastic;   /* elastic distortion strength (alpha), 0 = off */
    float aug_thickness; /* probability of a random thicken/thin */
    float aug_clean;     /* probability that a sample is used as it is: not distorted, not
                          * normalised (the test set is MNIST's own, not our normalisation) */
    float aug_paper;     /* probability that a distorted sample is printed on synthetic paper
                          * (tint, light gradient, ink colour, noise, a ruling) and read back
                          * with nn_image_from_pixels8, as photos are */
};

/* Sensible defaults: batch 32, 10 epochs, SGD lr 0.1, Adam betas 0.9/0.999, eps 1e-8,
 * seed 1, 1 thread, no augmentation. */
void nn_train_config_default(struct nn_train_config *cfg);

/* Progress report passed to the callback after every step. */
struct nn_progress {
    int epoch;    /* 1-based */
    int64_t step; /* optimiser steps so far, over the whole run */
    size_t seen;  /* samples seen in this epoch */
    size_t total; /* samples in this epoch */
    float lr;
    double loss;     /* running mean loss over this epoch */
    double accuracy; /* running accuracy over this epoch */
};
/* Return nonzero to stop after the current step (the epoch call then returns NN_EINTR).
 * During an epoch the trainer may hold the model's weights in a layout of its own: the
 * callback must not read or write the model; to look at it (evaluate, save), return nonzero,
 * use the model once nn_trainer_epoch has returned, then call it again to continue. */
typedef int (*nn_progress_fn)(void *ctx, const struct nn_progress *p);

typedef struct nn_trainer nn_trainer;

/* Binds a model (not owned; it must outlive the trainer) and a config. The model's weights are
 * updated in place. Errors: NN_EINVAL (config), NN_ENOMEM. */
int nn_trainer_new(nn_trainer **out, nn_model *model, const struct nn_train_config *cfg,
                   size_t train_size, char *err, size_t errlen);
void nn_trainer_free(nn_trainer *tr);

/* Runs one epoch (or fewer steps if the iteration budget ends first) over ds with per-epoch
 * shuffling. Fills *out with the epoch's running train loss/accuracy. Deterministic for a
 * given seed, config and thread count, however often it is stopped and continued. Returns
 * NN_OK, NN_EINTR if cb asked to stop; either way the model is then in its own layout. */
int nn_trainer_epoch(nn_trainer *tr, const struct nn_dataset *ds, nn_progress_fn cb, void *ctx,
                     struct nn_history_point *out);
/* Steps taken and epochs completed so far; whether the iteration budget is used up. */
int64_t nn_trainer_steps(const nn_trainer *tr);
int nn_trainer_epochs_done(const nn_trainer *tr);
int nn_trainer_finished(const nn_trainer *tr);
/* Learning rate that the schedule gives for the next step. */
float nn_trainer_lr(const nn_trainer *tr);
/* Whether an epoch is in progress (stopped part-way by the callback; the next
 * nn_trainer_epoch call continues it where it stopped). */
int nn_trainer_in_epoch(const nn_trainer *tr);
/* The configuration the trainer runs with (after clamping, e.g. batch to the data size). */
const struct nn_train_config *nn_trainer_config(const nn_trainer *tr);

/*
 * Checkpoints: everything needed to continue a run so that it ends bit-identical to an
 * uninterrupted one: the model (with its metadata and history so far), the training config,
 * optimiser moments, step and epoch counters, the position within the current epoch and its
 * running sums. No RNG state is needed: every random choice is a function of (seed, epoch,
 * step). Saved atomically (temp file, fsync, rename).
 * Load returns a new model and a trainer bound to it with the stored config; train_size must be
 * the size of the dataset the run uses. Errors: NN_EIO, NN_EFORMAT, NN_EVERSION, NN_ECHECKSUM,
 * NN_EINVAL (different dataset size), NN_ENOMEM, with detail in err.
 */
int nn_trainer_save_checkpoint(const nn_trainer *tr, const char *path, char *err, size_t errlen);
int nn_trainer_load_checkpoint(nn_trainer **tr, nn_model **model, const char *path,
                               size_t train_size, char *err, size_t errlen);
/* Only the model inside the checkpoint at path (its metadata: the command, the dataset's
 * SHA-256, the history so far), without a trainer: what a run needs to know before it loads
 * its data. Same errors as nn_trainer_load_checkpoint but NN_EINVAL; *model is NULL on error. */
int nn_checkpoint_load_model(nn_model **model, const char *path, char *err, size_t errlen);

/* The trainer's augmentation applied to one byte image (rows x cols) into dst (28x28 floats
 * when rows = cols = 28): random affine and stroke thickness from cfg's aug_* fields, drawn
 * from `seed`, then nn_image_normalize exactly as the server does; or, with probability
 * cfg->aug_clean, the image as it is (bytes times 1/255). Used by digits-eval --robust and
 * tests. */
void nn_augment_image(float *dst, const uint8_t *src, int rows, int cols,
                      const struct nn_train_config *cfg, uint64_t seed);
/* Whether cfg asks for any distortion (aug_clean alone is not one). */
int nn_augment_enabled(const struct nn_train_config *cfg);

/* ---------------------------------------------------------------------------------------- */
/* Gradients (exposed for the finite-difference tests)                                      */
/* ---------------------------------------------------------------------------------------- */

/* Mean softmax cross-entropy of the model on x (n inputs) with labels y, and its gradient
 * with respect to every parameter into grads (nn_model_param_count floats). Dropout is off.
 * Returns NN_OK or NN_ENOMEM. */
int nn_model_loss_grad(const nn_model *model, const float *x, const uint8_t *y, int n, float *grads,
                       double *loss);

/* ---------------------------------------------------------------------------------------- */
/* Not a digit: an 11th output class trained on generated non-digits                       */
/* ---------------------------------------------------------------------------------------- */

#define NN_OUTPUTS_MAX 11 /* a model's last layer: the 10 digits and "not a digit" */
#define NN_NOT_A_DIGIT_CLASS 10
#define NN_NOT_A_DIGIT (-1)

/*
 * Draws non-digit number `index` of the stream `seed` into img (28x28 bytes, MNIST layout,
 * 255 = ink): a scribble, a shape (X, +, squares, a circle with a cross, triangles, stars, #,
 * zig-zags, spirals), a stroke-drawn letter from a small built-in set (no fonts), two crossing
 * strokes, a blob or noise, with random pen width, size, position and rotation, normalised as
 * MNIST digits are (nn_image_normalize). The same (seed, index) gives the same bytes on every
 * host. Returns NN_OK (NN_EBLANK only if nothing could be drawn, which does not happen).
 */
int nn_nondigit_image(uint8_t img[NN_MNIST_PIXELS], uint64_t seed, uint64_t index);
/* Images 0..n-1 of the stream seed into dst (n * 784 bytes). */
int nn_nondigit_fill(uint8_t *dst, size_t n, uint64_t seed);
/* A piece of a non-digit: one is drawn (its own stream of seed), cut at a column 30-70% across
 * its ink, and one side normalised into img. When a number is read, a rejected mark is cut
 * and its halves read; these teach the network that half an X is no 7. NN_EBLANK if 8 tries
 * left nothing to cut (does not happen). */
int nn_nondigit_piece_image(uint8_t img[NN_MNIST_PIXELS], uint64_t seed, uint64_t index);
int nn_nondigit_piece_fill(uint8_t *dst, size_t n, uint64_t seed);

/*
 * Touching digits, the other kind of non-digit (pairs.c): sample `index` of the stream `seed`
 * is two (or, one time in five, three) digits of ds (28x28, e.g. the training images) side by
 * side, each overlapping the last by 1-4 px where they come closest, with +-3 px of baseline
 * jitter, normalised as one digit (nn_image_normalize) into img. Teaching the "not a digit"
 * class these is what lets nn_read_number cut touching digits apart. Deterministic for
 * (ds, seed, index). NN_EINVAL for an empty or non-28x28 ds.
 */
int nn_touching_image(uint8_t img[NN_MNIST_PIXELS], const struct nn_dataset *ds, uint64_t seed,
                      uint64_t index);
/* Samples 0..n-1 of the stream seed into dst (n * 784 bytes). */
int nn_touching_fill(uint8_t *dst, size_t n, const struct nn_dataset *ds, uint64_t seed);

/* The answer for one image from the model's output probs (nn_model_classes entries): the
 * digit probabilities renormalised over 0..9 into p10, *reject = p(not a digit) (0 for a
 * 10-class model), and the return value is the digit, or NN_NOT_A_DIGIT when *reject
 * reaches the model's threshold. */
int nn_model_answer(const nn_model *model, const float *probs, float p10[10], float *reject);
float nn_model_reject_threshold(const nn_model *model); /* 0 if none (never rejects) */
/* Sets the threshold (0 = none; else in (0, 1]) saved in the model file's optional REJT
 * section. NN_EINVAL for a value outside [0, 1] or a model without an 11th class. */
int nn_model_set_reject_threshold(nn_model *model, float threshold);

#ifdef __cplusplus
}
#endif
#endif
