/*
 * samples.h - the samples people correct or confirm on the page (issue "Learning from its
 * users"), kept in SQLite (Debian's libsqlite3): a real embedded database, so that an
 * acknowledged sample survives a crash at any moment and the file can be read by any tool.
 *
 * One file, opened once (digits-server --samples FILE). Its schema is versioned with
 * PRAGMA user_version and brought up to date on open by the migrations in samples.c; a file
 * written by a newer digits-server is refused, never rewritten. The journal is WAL (readers
 * never wait for the writer) with synchronous=FULL: a sample is acknowledged (201) only after
 * its transaction is on disk, which holds across a power cut, not only a SIGKILL; writes come at
 * the rate people correct digits, so the fsync per write costs nothing that matters. One
 * connection behind a mutex: calls are thread-safe and short (a write is one INSERT; a busy
 * database, e.g. another process reading it, is waited for up to 5 s, then an error).
 */
#ifndef SRV_SAMPLES_H
#define SRV_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#define SRV_SAMPLES_SCHEMA 1   /* the schema version this build writes */
#define SRV_SAMPLE_MODEL_MAX 64 /* including the NUL */
#define SRV_SAMPLE_ORIGINAL_MAX 280 /* the longer side of the stored original, in pixels */

struct srv_samples;

struct srv_sample {
    int64_t id;
    int label;      /* 0..9: what the person said it was */
    int prediction; /* what the model answered: 0..9, or -1 (blank, not a digit) */
    int has_probabilities;
    float probabilities[10];
    float input[784]; /* the 28x28 the network saw, [0,1], 1 = ink */
    char model[SRV_SAMPLE_MODEL_MAX];
    char route[16]; /* the route it came in by ("/samples") */
    int64_t created_unix;
};

/* The outcome of calls that can fail: SRV_SAMPLES_OK, or the rest with a message in err. */
enum {
    SRV_SAMPLES_OK = 0,
    SRV_SAMPLES_NOT_FOUND = 1,
    SRV_SAMPLES_FULL = 2, /* the database has reached its size cap */
    SRV_SAMPLES_ERROR = -1,
};

/* Opens (creating when missing) the database at path, migrates it to SRV_SAMPLES_SCHEMA and
 * checks it (PRAGMA quick_check). max_bytes caps its size (0: no cap). */
int srv_samples_open(struct srv_samples **out, const char *path, int64_t max_bytes, char *err,
                     size_t errlen);
/* Accepts NULL. */
void srv_samples_close(struct srv_samples *s);

/* Stores a sample (its id is ignored) with the original image as a grayscale PNG of at most
 * SRV_SAMPLE_ORIGINAL_MAX pixels a side (png may be NULL); on SRV_SAMPLES_OK *id is its id. */
int srv_samples_add(struct srv_samples *s, const struct srv_sample *sample, const void *png,
                    size_t png_len, int64_t *id, char *err, size_t errlen);
/* The number of samples with that label (-1: all). */
int srv_samples_count(struct srv_samples *s, int label, int64_t *total, char *err, size_t errlen);
/* Calls each for up to limit samples with that label (-1: all), in id order after skipping
 * offset; stops early when each returns non-zero. */
int srv_samples_list(struct srv_samples *s, int label, int64_t limit, int64_t offset,
                     int (*each)(void *ctx, const struct srv_sample *sample), void *ctx,
                     char *err, size_t errlen);
int srv_samples_get(struct srv_samples *s, int64_t id, struct srv_sample *out, char *err,
                    size_t errlen);
/* The stored original as PNG bytes (malloc'd; *png NULL when none was stored). */
int srv_samples_original(struct srv_samples *s, int64_t id, void **png, size_t *len, char *err,
                         size_t errlen);
int srv_samples_delete(struct srv_samples *s, int64_t id, char *err, size_t errlen);

/* An image of w x h ink values ([0,1], 1 = ink) as a grayscale PNG, dark ink on white, scaled
 * down by box averaging so that its longer side is at most SRV_SAMPLE_ORIGINAL_MAX. Returns
 * malloc'd bytes, or NULL when out of memory. */
void *srv_samples_png(const float *ink, int w, int h, size_t *len);

#endif
