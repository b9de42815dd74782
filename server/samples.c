/*
 * samples.c - the samples database in SQLite (see samples.h).
 *
 * Blobs: input is 784 float32 and probabilities 10 float32, little-endian (the byte order of
 * every machine digits builds for: x86-64 and AArch64); original is a PNG.
 */
#include "samples.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

struct srv_samples {
    sqlite3 *db;
    pthread_mutex_t lock;
    int64_t max_bytes;
};

/* migrations[v] takes a database at schema v to v + 1. */
static const char *const migrations[SRV_SAMPLES_SCHEMA] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE samples ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),"
    " input BLOB NOT NULL CHECK (length(input) = 3136),"
    " original BLOB,"
    " model TEXT NOT NULL,"
    " prediction INTEGER CHECK (prediction IS NULL OR prediction BETWEEN 0 AND 9),"
    " probabilities BLOB CHECK (probabilities IS NULL OR length(probabilities) = 40),"
    " created_unix INTEGER NOT NULL,"
    " route TEXT NOT NULL);"
    "CREATE INDEX samples_by_label ON samples (label, id);",
};

static int fail(char *err, size_t errlen, sqlite3 *db, const char *what)
{
    snprintf(err, errlen, "samples database: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return SRV_SAMPLES_ERROR;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

/* The file's schema version, refused when a newer digits-server wrote it (before anything
 * is written to the file, the journal mode included). */
static int schema_version(sqlite3 *db, int64_t *version, char *err, size_t errlen)
{
    if (pragma_int(db, "PRAGMA user_version", version) != 0)
        return fail(err, errlen, db, "reading its schema version");
    if (*version > SRV_SAMPLES_SCHEMA) {
        snprintf(err, errlen,
                 "samples database: schema version %lld was written by a newer digits-server "
                 "(this one knows up to %d); it is left as it is",
                 (long long)*version, SRV_SAMPLES_SCHEMA);
        return SRV_SAMPLES_ERROR;
    }
    return SRV_SAMPLES_OK;
}

static int migrate(sqlite3 *db, int64_t version, char *err, size_t errlen)
{
    for (int64_t v = version; v < SRV_SAMPLES_SCHEMA; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        /* each step in one transaction: a crash leaves the old schema or the new one */
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return fail(err, errlen, db, "starting a migration");
        if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            int r = fail(err, errlen, db, "migrating its schema");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return fail(err, errlen, db, "committing a migration");
    }
    return SRV_SAMPLES_OK;
}

int srv_samples_open(struct srv_samples **out, const char *path, int64_t max_bytes, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct srv_samples *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "samples database: out of memory");
        return SRV_SAMPLES_ERROR;
    }
    s->max_bytes = max_bytes;
    pthread_mutex_init(&s->lock, NULL);
    char mode[16] = "";
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    int64_t version = 0;
    if (schema_version(s->db, &version, err, errlen) != SRV_SAMPLES_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errlen, "%s: not a database it can use: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "%s: cannot use a write-ahead log (journal mode %s)", path, mode);
        goto fail;
    }
    if (sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
        fail(err, errlen, s->db, "PRAGMA synchronous");
        goto fail;
    }
    if (migrate(s->db, version, err, errlen) != SRV_SAMPLES_OK)
        goto fail;
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        snprintf(err, errlen, "%s: the database is damaged (quick_check: %s)", path,
                 st && sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                  : sqlite3_errmsg(s->db));
        goto fail;
    }
    sqlite3_finalize(st);
    *out = s;
    return SRV_SAMPLES_OK;
fail:
    sqlite3_finalize(st);
    srv_samples_close(s);
    return SRV_SAMPLES_ERROR;
}

void srv_samples_close(struct srv_samples *s)
{
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Takes the lock and prepares sql; on failure the lock is given back and err says what
 * failed. Every query below runs between begin and end. */
static int begin(struct srv_samples *s, const char *sql, sqlite3_stmt **st, const char *what,
                 char *err, size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK)
        return SRV_SAMPLES_OK;
    int r = fail(err, errlen, s->db, what);
    sqlite3_finalize(*st);
    *st = NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Finalises st, gives the lock back and returns r. */
static int end(struct srv_samples *s, sqlite3_stmt *st, int r)
{
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int srv_samples_add(struct srv_samples *s, const struct srv_sample *sm, const void *png,
                    size_t png_len, int64_t *id, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r = begin(s,
                  "INSERT INTO samples (label, input, original, model, prediction,"
                  " probabilities, created_unix, route) VALUES (?,?,?,?,?,?,?,?)",
                  &st, "preparing the insert", err, errlen);
    if (r != SRV_SAMPLES_OK)
        return r;
    if (s->max_bytes > 0) {
        int64_t pages = 0, page_size = 0;
        if (pragma_int(s->db, "PRAGMA page_count", &pages) != 0 ||
            pragma_int(s->db, "PRAGMA page_size", &page_size) != 0)
            return end(s, st, fail(err, errlen, s->db, "measuring its size"));
        if (pages * page_size + 4096 + (int64_t)png_len + 3200 > s->max_bytes) {
            snprintf(err, errlen,
                     "the samples database is full: %lld bytes of the %lld that --samples-max "
                     "allows; delete samples or raise the limit",
                     (long long)(pages * page_size), (long long)s->max_bytes);
            return end(s, st, SRV_SAMPLES_FULL);
        }
    }
    sqlite3_bind_int(st, 1, sm->label);
    sqlite3_bind_blob(st, 2, sm->input, (int)sizeof sm->input, SQLITE_STATIC);
    if (png && png_len)
        sqlite3_bind_blob(st, 3, png, (int)png_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, sm->model, -1, SQLITE_STATIC);
    if (sm->prediction >= 0 && sm->prediction <= 9)
        sqlite3_bind_int(st, 5, sm->prediction);
    else
        sqlite3_bind_null(st, 5);
    if (sm->has_probabilities)
        sqlite3_bind_blob(st, 6, sm->probabilities, (int)sizeof sm->probabilities, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, sm->created_unix ? sm->created_unix : (int64_t)time(NULL));
    sqlite3_bind_text(st, 8, sm->route[0] ? sm->route : "/samples", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return end(s, st, fail(err, errlen, s->db, "storing the sample"));
    *id = sqlite3_last_insert_rowid(s->db);
    return end(s, st, SRV_SAMPLES_OK);
}

int srv_samples_count(struct srv_samples *s, int label, int64_t *total, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r = begin(s, "SELECT count(*) FROM samples WHERE ?1 < 0 OR label = ?1", &st, "counting",
                  err, errlen);
    if (r != SRV_SAMPLES_OK)
        return r;
    sqlite3_bind_int(st, 1, label);
    if (sqlite3_step(st) != SQLITE_ROW)
        return end(s, st, fail(err, errlen, s->db, "counting"));
    *total = sqlite3_column_int64(st, 0);
    return end(s, st, SRV_SAMPLES_OK);
}

#define SAMPLE_COLUMNS "id, label, input, model, prediction, probabilities, created_unix, route"

static int not_found(int64_t id, char *err, size_t errlen)
{
    snprintf(err, errlen, "no sample %lld", (long long)id);
    return SRV_SAMPLES_NOT_FOUND;
}

/* One row of SAMPLE_COLUMNS into *out: SRV_SAMPLES_OK, or an error for a malformed input. */
static int read_row(sqlite3_stmt *st, struct srv_sample *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    out->label = sqlite3_column_int(st, 1);
    if (sqlite3_column_bytes(st, 2) != (int)sizeof out->input) {
        snprintf(err, errlen, "samples database: sample %lld's input is not 784 numbers",
                 (long long)out->id);
        return SRV_SAMPLES_ERROR;
    }
    memcpy(out->input, sqlite3_column_blob(st, 2), sizeof out->input);
    const unsigned char *model = sqlite3_column_text(st, 3);
    snprintf(out->model, sizeof out->model, "%s", model ? (const char *)model : "");
    out->prediction = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 4);
    if (sqlite3_column_bytes(st, 5) == (int)sizeof out->probabilities) {
        memcpy(out->probabilities, sqlite3_column_blob(st, 5), sizeof out->probabilities);
        out->has_probabilities = 1;
    }
    out->created_unix = sqlite3_column_int64(st, 6);
    const unsigned char *route = sqlite3_column_text(st, 7);
    snprintf(out->route, sizeof out->route, "%s", route ? (const char *)route : "");
    return SRV_SAMPLES_OK;
}

int srv_samples_list(struct srv_samples *s, int label, int64_t limit, int64_t offset,
                     int (*each)(void *ctx, const struct srv_sample *sample), void *ctx,
                     char *err, size_t errlen)
{
    struct srv_sample *one = malloc(sizeof *one);
    if (!one) {
        snprintf(err, errlen, "out of memory");
        return SRV_SAMPLES_ERROR;
    }
    sqlite3_stmt *st = NULL;
    int r = begin(s,
                  "SELECT " SAMPLE_COLUMNS " FROM samples WHERE ?1 < 0 OR label = ?1"
                  " ORDER BY id LIMIT ?2 OFFSET ?3",
                  &st, "listing", err, errlen);
    if (r == SRV_SAMPLES_OK) {
        int rc;
        sqlite3_bind_int(st, 1, label);
        sqlite3_bind_int64(st, 2, limit);
        sqlite3_bind_int64(st, 3, offset);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && (r = read_row(st, one, err, errlen)) == 0)
            if (each(ctx, one))
                break;
        if (r == SRV_SAMPLES_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
            r = fail(err, errlen, s->db, "listing");
        r = end(s, st, r);
    }
    free(one);
    return r;
}

int srv_samples_get(struct srv_samples *s, int64_t id, struct srv_sample *out, char *err,
                    size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r = begin(s, "SELECT " SAMPLE_COLUMNS " FROM samples WHERE id = ?", &st,
                  "reading a sample", err, errlen);
    if (r != SRV_SAMPLES_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = not_found(id, err, errlen);
    else if (rc != SQLITE_ROW)
        r = fail(err, errlen, s->db, "reading a sample");
    else
        r = read_row(st, out, err, errlen);
    return end(s, st, r);
}

int srv_samples_original(struct srv_samples *s, int64_t id, void **png, size_t *len, char *err,
                         size_t errlen)
{
    *png = NULL;
    *len = 0;
    sqlite3_stmt *st = NULL;
    int r = begin(s, "SELECT original FROM samples WHERE id = ?", &st, "reading a sample", err,
                  errlen);
    if (r != SRV_SAMPLES_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return end(s, st, not_found(id, err, errlen));
    if (rc != SQLITE_ROW)
        return end(s, st, fail(err, errlen, s->db, "reading a sample"));
    int n = sqlite3_column_bytes(st, 0);
    if (n > 0) {
        if (!(*png = malloc((size_t)n))) {
            snprintf(err, errlen, "out of memory");
            return end(s, st, SRV_SAMPLES_ERROR);
        }
        memcpy(*png, sqlite3_column_blob(st, 0), (size_t)n);
        *len = (size_t)n;
    }
    return end(s, st, SRV_SAMPLES_OK);
}

int srv_samples_delete(struct srv_samples *s, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int r = begin(s, "DELETE FROM samples WHERE id = ?", &st, "deleting", err, errlen);
    if (r != SRV_SAMPLES_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        return end(s, st, fail(err, errlen, s->db, "deleting"));
    return end(s, st, sqlite3_changes(s->db) ? SRV_SAMPLES_OK : not_found(id, err, errlen));
}

struct png_out {
    unsigned char *data;
    size_t len, cap;
    int failed;
};

static void png_sink(void *ctx, void *data, int size)
{
    struct png_out *o = ctx;
    if (o->failed || size <= 0)
        return;
    if (o->len + (size_t)size > o->cap) {
        size_t cap = (o->len + (size_t)size) * 2;
        unsigned char *p = realloc(o->data, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->data = p;
        o->cap = cap;
    }
    memcpy(o->data + o->len, data, (size_t)size);
    o->len += (size_t)size;
}

void *srv_samples_png(const float *ink, int w, int h, size_t *len)
{
    int f = 1;
    while ((w + f - 1) / f > SRV_SAMPLE_ORIGINAL_MAX || (h + f - 1) / f > SRV_SAMPLE_ORIGINAL_MAX)
        f++;
    int ow = (w + f - 1) / f, oh = (h + f - 1) / f;
    unsigned char *gray = malloc((size_t)ow * (size_t)oh);
    if (!gray)
        return NULL;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double sum = 0;
            int n = 0;
            for (int dy = 0; dy < f && y * f + dy < h; dy++)
                for (int dx = 0; dx < f && x * f + dx < w; dx++, n++)
                    sum += ink[(size_t)(y * f + dy) * (size_t)w + (size_t)(x * f + dx)];
            double v = n ? sum / n : 0;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            gray[(size_t)y * (size_t)ow + (size_t)x] = (unsigned char)(255.0 - v * 255.0 + 0.5);
        }
    struct png_out o = {0};
    int ok = stbi_write_png_to_func(png_sink, &o, ow, oh, 1, gray, ow);
    free(gray);
    if (!ok || o.failed) {
        free(o.data);
        return NULL;
    }
    *len = o.len;
    return o.data;
}
