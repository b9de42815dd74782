/*
 * models.c - model registry with atomic reload (see models.h).
 */
#include "models.h"
#include "err.h"

#include "buf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_registry {
    pthread_mutex_t lock; /* guards cur and the status fields */
    struct srv_snapshot *cur;
    char *paths[SRV_MAX_MODELS];
    int n;
    struct srv_registry_status st;
};

static atomic_uint_fast64_t next_model_id = 1;

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void key(struct srv_buf *b, const char *k)
{
    srv_buf_json_string(b, k);
    srv_buf_putc(b, ':');
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int srv_model_json(const nn_model *model, const char *name, const char *path, char **json,
                   size_t *len)
{
    const struct nn_meta *m = nn_model_meta(model);
    const struct nn_layer_spec *layers = NULL;
    int nl = nn_model_layers(model, &layers);
    char arch[1024];
    if (nn_arch_format(arch, sizeof arch, layers, nl) >= (int)sizeof arch)
        strcpy(arch + sizeof arch - 4, "...");
    int c = 0, h = 0, w = 0;
    nn_model_input_shape(model, &c, &h, &w);
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_putc(&b, '{');
    key(&b, "name");
    srv_buf_json_string(&b, name);
    srv_buf_putc(&b, ',');
    key(&b, "file");
    srv_buf_json_string(&b, base_name(path));
    srv_buf_putc(&b, ',');
    key(&b, "architecture");
    srv_buf_json_string(&b, arch);
    srv_buf_printf(&b, ",\"input\":[%d,%d,%d],", c, h, w);
    key(&b, "preprocess");
    srv_buf_json_string(&b, nn_model_preprocess(model) == NN_PREP_MNIST ? "mnist" : "none");
    srv_buf_printf(&b, ",\"parameters\":%zu,\"classes\":%d,", nn_model_param_count(model),
                   nn_model_classes(model));
    /* a model with an 11th class "not a digit" rejects from this p(not a digit) on */
    if (nn_model_classes(model) > NN_NOT_A_DIGIT_CLASS) {
        srv_buf_puts(&b, "\"not_a_digit\":{\"class\":");
        srv_buf_i64(&b, NN_NOT_A_DIGIT_CLASS);
        srv_buf_puts(&b, ",\"threshold\":");
        srv_buf_f32(&b, nn_model_reject_threshold(model));
        srv_buf_puts(&b, "},");
    }
    key(&b, "training");
    srv_buf_putc(&b, '{');
    key(&b, "dataset");
    srv_buf_json_string(&b, m->dataset);
    srv_buf_putc(&b, ',');
    key(&b, "dataset_sha256");
    srv_buf_json_string(&b, m->dataset_sha256);
    srv_buf_printf(&b, ",\"seed\":%" PRIu64 ",", m->seed);
    key(&b, "optimizer");
    srv_buf_json_string(&b, m->optimizer);
    srv_buf_puts(&b, ",\"lr\":");
    srv_buf_f32(&b, m->lr);
    srv_buf_puts(&b, ",\"momentum\":");
    srv_buf_f32(&b, m->momentum);
    srv_buf_puts(&b, ",\"weight_decay\":");
    srv_buf_f32(&b, m->weight_decay);
    srv_buf_printf(&b, ",\"batch\":%" PRId32 ",\"epochs\":%" PRId32 ",\"iterations\":%" PRId64 ",",
                   m->batch, m->epochs, m->iterations);
    key(&b, "schedule");
    srv_buf_json_string(&b, m->schedule);
    srv_buf_putc(&b, ',');
    key(&b, "augment");
    srv_buf_json_string(&b, m->augment);
    srv_buf_printf(&b, ",\"threads\":%" PRId32 ",\"train_seconds\":", m->threads);
    srv_buf_f64(&b, m->train_seconds);
    srv_buf_printf(&b, ",\"created_unix\":%" PRId64 ",", m->created_unix);
    key(&b, "trainer_version");
    srv_buf_json_string(&b, m->trainer_version);
    srv_buf_putc(&b, ',');
    /* Files recorded with the trainer's absolute paths (models trained before it stored them
     * relative) are shown by their last component: not the directories of that machine. */
    char command[sizeof m->command];
    if (nn_command_public(command, sizeof command, m->command, NULL) != NN_OK) {
        srv_buf_free(&b);
        *json = NULL;
        return NN_ENOMEM;
    }
    key(&b, "command");
    srv_buf_json_string(&b, command);
    srv_buf_puts(&b, "},\"metrics\":{\"train_loss\":");
    srv_buf_f32(&b, m->train_loss);
    srv_buf_puts(&b, ",\"train_accuracy\":");
    srv_buf_f32(&b, m->train_acc);
    srv_buf_puts(&b, ",\"test_loss\":");
    srv_buf_f32(&b, m->test_loss);
    srv_buf_puts(&b, ",\"test_accuracy\":");
    srv_buf_f32(&b, m->test_acc);
    srv_buf_puts(&b, "},\"history\":[");
    for (int i = 0; i < m->n_history && m->history; i++) {
        const struct nn_history_point *p = &m->history[i];
        srv_buf_printf(&b, "%s{\"epoch\":%d,\"step\":%" PRId64 ",\"lr\":", i ? "," : "", p->epoch,
                       p->step);
        srv_buf_f32(&b, p->lr);
        srv_buf_puts(&b, ",\"train_loss\":");
        srv_buf_f32(&b, p->train_loss);
        srv_buf_puts(&b, ",\"train_accuracy\":");
        srv_buf_f32(&b, p->train_acc);
        srv_buf_puts(&b, ",\"test_loss\":");
        srv_buf_f32(&b, p->test_loss);
        srv_buf_puts(&b, ",\"test_accuracy\":");
        srv_buf_f32(&b, p->test_acc);
        srv_buf_puts(&b, ",\"seconds\":");
        srv_buf_f64(&b, p->seconds);
        srv_buf_putc(&b, '}');
    }
    srv_buf_puts(&b, "],\"confusion\":[");
    for (int t = 0; t < NN_CLASSES_MAX; t++) {
        srv_buf_puts(&b, t ? ",[" : "[");
        for (int p = 0; p < NN_CLASSES_MAX; p++)
            srv_buf_printf(&b, "%s%" PRIu32, p ? "," : "", m->confusion[t][p]);
        srv_buf_putc(&b, ']');
    }
    srv_buf_puts(&b, "]}");
    *json = srv_buf_steal(&b, len);
    return *json ? 0 : NN_ENOMEM;
}

/* ---------------------------------------------------------------------------------------- */
/* Snapshots                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void snapshot_free(struct srv_snapshot *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        nn_model_free(s->models[i].model);
        free(s->models[i].json);
    }
    free(s->list_json);
    free(s);
}

/* The model name: meta.name, or the basename without its extension. */
static void model_name(char *out, size_t len, const nn_model *model, const char *path)
{
    const struct nn_meta *m = nn_model_meta(model);
    if (m && m->name[0]) {
        snprintf(out, len, "%s", m->name);
        return;
    }
    const char *b = base_name(path);
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    if (n >= len)
        n = len - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

/* One prediction on a blank image makes the model build its inference caches (transposed
 * and half-precision weights, ~1.5 ms for the CNN) now, while it loads, instead of inside
 * the first request that uses it. A failure here only leaves that to the first request. */
static void warm_up(const nn_model *model)
{
    nn_workspace *ws = NULL;
    float x[NN_MNIST_PIXELS] = {0}, probs[NN_OUTPUTS_MAX];
    if (nn_workspace_new(&ws, model, 1) == NN_OK)
        nn_model_predict(model, x, probs, ws);
    nn_workspace_free(ws);
}

static int snapshot_load(struct srv_snapshot **out, char *const *paths, int n, char *err,
                         size_t errlen)
{
    *out = NULL;
    struct srv_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct srv_model *sm = &s->models[i];
        char lerr[400];
        rc = nn_model_load(&sm->model, paths[i], lerr, sizeof lerr);
        if (rc != NN_OK) {
            sm->model = NULL;
            /* nn_model_load's messages start with the path already */
            rc = lerr[0] ? srv_seterr(err, errlen, rc, "%s", lerr)
                         : srv_seterr(err, errlen, rc, "%s: %s", paths[i], nn_strerror(rc));
            goto fail;
        }
        s->n = i + 1;
        sm->path = paths[i];
        int c = 0, h = 0, w = 0;
        nn_model_input_shape(sm->model, &c, &h, &w);
        int classes = nn_model_classes(sm->model);
        if (c != 1 || h != NN_MNIST_SIDE || w != NN_MNIST_SIDE || classes < 2 ||
            classes > NN_OUTPUTS_MAX) {
            rc =
                srv_seterr(err, errlen, NN_EFORMAT,
                           "%s: input %dx%dx%d with %d classes; the server needs 1x28x28 input and "
                           "2..%d classes",
                           paths[i], c, h, w, classes, NN_OUTPUTS_MAX);
            goto fail;
        }
        warm_up(sm->model);
        model_name(sm->name, sizeof sm->name, sm->model, paths[i]);
        for (int j = 0; j < i; j++) {
            if (!strcmp(s->models[j].name, sm->name)) {
                rc = srv_seterr(err, errlen, NN_EINVAL,
                                "%s: model name \"%s\" is already used by %s; names must differ",
                                paths[i], sm->name, paths[j]);
                goto fail;
            }
        }
        sm->id = atomic_fetch_add(&next_model_id, 1);
        rc = srv_model_json(sm->model, sm->name, paths[i], &sm->json, &sm->json_len);
        if (rc != 0) {
            rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
            goto fail;
        }
    }
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_puts(&b, "{\"default\":");
    if (n > 0)
        srv_buf_json_string(&b, s->models[0].name);
    else
        srv_buf_puts(&b, "null");
    srv_buf_puts(&b, ",\"models\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            srv_buf_putc(&b, ',');
        srv_buf_put(&b, s->models[i].json, s->models[i].json_len);
    }
    srv_buf_puts(&b, "]}");
    s->list_json = srv_buf_steal(&b, &s->list_json_len);
    if (!s->list_json) {
        rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
        goto fail;
    }
    s->refs = 1;
    *out = s;
    return 0;
fail:
    snapshot_free(s);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Registry                                                                                 */
/* ---------------------------------------------------------------------------------------- */

int srv_registry_new(struct srv_registry **out, const char *const *paths, int n, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (n < 0 || n > SRV_MAX_MODELS)
        return srv_seterr(err, errlen, NN_EINVAL, "at most %d models can be served, got %d",
                          SRV_MAX_MODELS, n);
    struct srv_registry *r = calloc(1, sizeof *r);
    if (!r)
        return srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
    int rc = 0;
    pthread_mutex_init(&r->lock, NULL);
    for (int i = 0; i < n; i++) {
        r->paths[i] = strdup(paths[i]);
        if (!r->paths[i]) {
            rc = srv_seterr(err, errlen, NN_ENOMEM, "out of memory");
            goto fail;
        }
        r->n = i + 1;
    }
    rc = snapshot_load(&r->cur, r->paths, n, err, errlen);
    if (rc != 0)
        goto fail;
    r->cur->generation = r->st.generation = 1;
    *out = r;
    return 0;
fail:
    srv_registry_free(r);
    return rc;
}

void srv_registry_free(struct srv_registry *r)
{
    if (!r)
        return;
    srv_snapshot_release(r->cur);
    for (int i = 0; i < r->n; i++)
        free(r->paths[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int srv_registry_reload(struct srv_registry *r, char *err, size_t errlen)
{
    char lerr[512] = "";
    struct srv_snapshot *s = NULL;
    int rc = snapshot_load(&s, r->paths, r->n, lerr, sizeof lerr);
    struct srv_snapshot *old = NULL;
    pthread_mutex_lock(&r->lock);
    r->st.last_reload_unix = (int64_t)time(NULL);
    if (rc == 0) {
        s->generation = ++r->st.generation;
        old = r->cur;
        r->cur = s;
        r->st.reloads_ok++;
        r->st.last_error[0] = '\0';
    } else {
        r->st.reloads_failed++;
        snprintf(r->st.last_error, sizeof r->st.last_error, "%s", lerr);
    }
    pthread_mutex_unlock(&r->lock);
    srv_snapshot_release(old);
    if (rc != 0)
        srv_seterr(err, errlen, rc, "%s", lerr);
    return rc;
}

struct srv_snapshot *srv_registry_acquire(struct srv_registry *r)
{
    pthread_mutex_lock(&r->lock);
    struct srv_snapshot *s = r->cur;
    __atomic_fetch_add(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&r->lock);
    return s;
}

void srv_snapshot_release(struct srv_snapshot *s)
{
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        snapshot_free(s);
}

const struct srv_model *srv_snapshot_find(const struct srv_snapshot *s, const char *name)
{
    if (s->n == 0)
        return NULL;
    if (!name || !name[0])
        return &s->models[0];
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->models[i].name, name))
            return &s->models[i];
    return NULL;
}

void srv_registry_status(struct srv_registry *r, struct srv_registry_status *st)
{
    pthread_mutex_lock(&r->lock);
    *st = r->st;
    pthread_mutex_unlock(&r->lock);
}
