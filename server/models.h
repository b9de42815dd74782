/*
 * models.h - the loaded models, swapped atomically on reload.
 *
 * The registry holds one immutable snapshot: the models (the first is the default), their
 * metadata already rendered as JSON for GET /model(s), and a generation number. A request
 * takes a reference to the current snapshot (a mutex held for two instructions, never during
 * prediction) and drops it when its answer is built; reload builds a complete new snapshot
 * from the files and swaps it in only if every file loaded. The old snapshot is freed when
 * its last request lets go, so a swap never disturbs a request in flight.
 */
#ifndef SRV_MODELS_H
#define SRV_MODELS_H

#include "nn/nn.h"

#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_MODELS 16

struct srv_model {
    char name[64];    /* meta.name, or the file's basename without extension */
    const char *path; /* as given on the command line (owned by the registry) */
    nn_model *model;
    uint64_t id; /* unique over the process lifetime: keys workspace caches */
    char *json;  /* the MODEL object of GET /model */
    size_t json_len;
};

struct srv_snapshot {
    int refs;            /* atomic; the registry holds one */
    uint64_t generation; /* 1 for the first load, +1 per successful reload */
    int n;
    struct srv_model models[SRV_MAX_MODELS]; /* models[0] is the default */
    char *list_json;                         /* {"default":..., "models":[...]} for GET /models */
    size_t list_json_len;
};

struct srv_registry;

/* Loads every path (n in 0..SRV_MAX_MODELS; with 0 the server answers 503 to /predict). Fails (err filled: "models/x.model: checksum
 * mismatch") if any file fails to load, is not a 1x28x28 classifier, or two models share a
 * name. The paths are copied. */
int srv_registry_new(struct srv_registry **out, const char *const *paths, int n, char *err,
                     size_t errlen);
void srv_registry_free(struct srv_registry *r);

/* Loads every file again and swaps the new snapshot in if all succeeded; otherwise the old
 * models keep serving, the error is returned (err) and remembered for srv_registry_status.
 * Call from one thread at a time (the main thread). */
int srv_registry_reload(struct srv_registry *r, char *err, size_t errlen);

/* A counted reference to the current snapshot (never NULL). Thread-safe. */
struct srv_snapshot *srv_registry_acquire(struct srv_registry *r);
/* Drops a reference; frees the snapshot if it was the last. Accepts NULL. */
void srv_snapshot_release(struct srv_snapshot *s);

/* The model called name ("" or NULL: the default), or NULL (unknown, or no models). */
const struct srv_model *srv_snapshot_find(const struct srv_snapshot *s, const char *name);

struct srv_registry_status {
    uint64_t generation;
    uint64_t reloads_ok, reloads_failed;
    int64_t last_reload_unix; /* 0 = never reloaded */
    char last_error[512];     /* of the last failed reload; "" if the last one succeeded */
};
void srv_registry_status(struct srv_registry *r, struct srv_registry_status *st);

/* Builds one MODEL JSON object (exposed for tests). Returns 0 or NN_ENOMEM. */
int srv_model_json(const nn_model *model, const char *name, const char *path, char **json,
                   size_t *len);

#endif
