/*
 * net.c - running a model over a batch: forward (inference or training), backward, and the
 * public inference API (workspaces, predict) built on it.
 *
 * Design: a struct nn_net owns every buffer one pass needs for up to `cap` samples: one
 * activation buffer per layer output (kept for backward), pool argmax indices and dropout
 * masks when training, im2col scratch per thread. The model itself is never written during
 * inference, so one loaded model serves any number of threads, each with its own net.
 */
#include "nn_impl.h"
#include "net.h"
#include "gemm_isa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static void *alloc_floats(size_t n) { return n ? calloc(n, sizeof(float)) : NULL; }

/* Whether training runs layer i, a first conv layer, without im2col columns (forward by
 * direct convolution, backward only the weight gradient it needs): nothing to keep. */
static int train_direct(const struct nn_model *m, int i)
{
    return i == 0 && m->layers[0].spec.kind == NN_LAYER_CONV2D &&
           nn_conv_train_direct_supported(&m->layers[0]);
}

void nn_net_free(struct nn_net *net)
{
    if (!net)
        return;
    for (int i = 0; i <= NN_MAX_LAYERS; i++)
        free(net->acts[i]);
    for (int i = 0; i < NN_MAX_LAYERS; i++) {
        free(net->pool_idx[i]);
        free(net->masks[i]);
        free(net->cols[i]);
    }
    free(net->scratch);
    free(net->grad_a);
    free(net->grad_b);
    free(net->probs);
    free(net->nz_idx);
    free(net->nz_val);
    nn_sparse_rows_free(&net->rows);
    memset(net, 0, sizeof *net);
}

#define KEEP_COLS_MAX_FLOATS ((size_t)32 << 20) /* 128 MiB per conv layer */

int nn_net_init(struct nn_net *net, const struct nn_model *m, int cap, int threads, int train)
{
    memset(net, 0, sizeof *net);
    if (cap < 1 || threads < 1)
        return NN_EINVAL;
    net->cap = cap;
    net->threads = threads;
    net->train = train;
    size_t in = (size_t)nn_model_input_size(m);
    size_t max_act = nn_model_max_activation(m);
    size_t col = 0;

    net->acts[0] = alloc_floats((size_t)cap * in);
    if (!net->acts[0])
        goto fail;
    for (int i = 0; i < m->n_layers; i++) {
        const struct nn_layer *L = &m->layers[i];
        net->acts[i + 1] = alloc_floats((size_t)cap * L->out_size);
        if (!net->acts[i + 1])
            goto fail;
        if (train && L->spec.kind == NN_LAYER_MAXPOOL) {
            net->pool_idx[i] = calloc((size_t)cap * L->out_size, sizeof(int32_t));
            if (!net->pool_idx[i])
                goto fail;
        }
        if (train && L->spec.kind == NN_LAYER_DROPOUT) {
            net->masks[i] = alloc_floats((size_t)cap * L->out_size);
            if (!net->masks[i])
                goto fail;
        }
        if (L->spec.kind == NN_LAYER_CONV2D && nn_conv_scratch_floats(L, cap) > col)
            col = nn_conv_scratch_floats(L, cap);
        if (train && L->spec.kind == NN_LAYER_CONV2D && !train_direct(m, i)) {
            /* keeping the columns saves building them again in backward; optional (a miss
             * only costs time), and bounded so a huge layer does not take gigabytes */
            size_t n =
                (size_t)cap * L->in_c * L->spec.kernel * L->spec.kernel * L->out_h * L->out_w;
            if (n <= KEEP_COLS_MAX_FLOATS)
                net->cols[i] = malloc(n * sizeof(float));
        }
    }
    if (col) {
        net->scratch = alloc_floats(col);
        if (!net->scratch)
            goto fail;
    }
    if (train) {
        net->grad_a = alloc_floats((size_t)cap * max_act);
        net->grad_b = alloc_floats((size_t)cap * max_act);
        if (!net->grad_a || !net->grad_b)
            goto fail;
    }
    net->probs = alloc_floats((size_t)cap * nn_model_classes(m));
    if (!net->probs)
        goto fail;
    if (!train) { /* dense_sparse's lists: up to the largest layer input */
        size_t most = in > max_act ? in : max_act;
        net->nz_idx = calloc(most, sizeof *net->nz_idx);
        net->nz_val = alloc_floats(most);
        if (!net->nz_idx || !net->nz_val)
            goto fail;
    }
    return NN_OK;
fail:
    nn_net_free(net);
    return NN_ENOMEM;
}

/* Element-wise activations over n values, split over threads for big batches. Pieces start
 * at multiples of 16 so that every element takes the same vector or tail code path as it
 * would on one thread: the result does not depend on the thread count. */
#define PAR_MIN_ELEMS 65536
typedef void (*act_fwd_fn)(float *y, const float *x, size_t n);
typedef void (*act_bwd_fn)(float *dx, const float *dy, const float *y, size_t n);

static void piece(size_t n, size_t *lo, size_t *hi)
{
    *lo = 0, *hi = n;
#ifdef _OPENMP
    size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
    *lo = n * t / nt / 16 * 16;
    *hi = t + 1 == nt ? n : n * (t + 1) / nt / 16 * 16;
#endif
}

static void act_forward(act_fwd_fn f, float *y, const float *x, size_t n, int threads)
{
    if (threads < 2 || n < PAR_MIN_ELEMS) { /* no team at all: even if(0) costs a microsecond */
        f(y, x, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t lo, hi;
        piece(n, &lo, &hi);
        f(y + lo, x + lo, hi - lo);
    }
}

static void act_backward(act_bwd_fn f, float *dx, const float *dy, const float *y, size_t n,
                         int threads)
{
    if (threads < 2 || n < PAR_MIN_ELEMS) {
        f(dx, dy, y, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t lo, hi;
        piece(n, &lo, &hi);
        f(dx + lo, dy + lo, y + lo, hi - lo);
    }
}

/* Inverted dropout: keep with probability 1-rate and scale by 1/(1-rate), so inference is the
 * identity. The mask is a pure function of (seed, element), independent of threads. */
static void dropout_forward(float *y, float *mask, const float *x, size_t n, float rate,
                            uint64_t seed)
{
    float keep = 1.0f - rate, scale = 1.0f / keep;
    for (size_t i = 0; i < n; i++) {
        float u = (float)(nn_hash3(seed, i, 0) >> 40) * (1.0f / 16777216.0f);
        mask[i] = u < keep ? scale : 0.0f;
        y[i] = x[i] * mask[i];
    }
}

/* Inference of a few images through dense layer i: each input that is mostly zero (an
 * MNIST-style digit: ~80%; a ReLU's output: often half) reads only its nonzero inputs' rows of
 * the transposed half-precision weights (nn_model_weights_half) instead of streaming every
 * weight. Returns 0 when that does not apply (then nothing was written). */
#define FEW_IMAGES 4 /* up to this many images, inference goes image by image */
static int dense_sparse(const struct nn_model *m, struct nn_net *net, int li, int N)
{
    const struct nn_layer *L = &m->layers[li];
    const int I = (int)L->in_size, O = (int)L->out_size;
    if (net->train || N > FEW_IMAGES)
        return 0;
    const uint16_t *wt = nn_model_weights_half(m, li);
    if (!wt)
        return 0;
    const float *w = m->params + L->w_off, *b = m->params + L->b_off;
    for (int n = 0; n < N; n++) {
        const float *x = net->acts[li] + (size_t)n * I;
        float *y = net->acts[li + 1] + (size_t)n * O;
        int nnz = nn_nonzeros(x, I, net->nz_idx, net->nz_val);
        if (2 * nnz > I) /* dense enough that streaming every row is faster */
            nn_dense_forward(y, x, w, b, 1, I, O, 1);
        else
            nn_spmv_half(y, b, net->nz_idx, net->nz_val, nnz, wt, nn_weights_half_ld(O), O);
    }
    return 1;
}

/* Inference of a few images through conv layer i by direct convolution (no im2col matrix
 * of 25x the image); 0 when that does not apply (then nothing was written). */
static int conv_direct(const struct nn_model *m, struct nn_net *net, int li, int N)
{
    const struct nn_layer *L = &m->layers[li];
    if (net->train || N > FEW_IMAGES || !nn_conv_direct_supported(L))
        return 0;
    const float *wt = nn_model_weights_t(m, li);
    if (!wt)
        return 0;
    for (int n = 0; n < N; n++)
        nn_conv_forward_direct(net->acts[li + 1] + (size_t)n * L->out_size,
                               net->acts[li] + (size_t)n * L->in_size, wt, m->params + L->b_off,
                               net->scratch, L);
    return 1;
}

static const float *forward_from(const struct nn_model *m, struct nn_net *net, int first, int N,
                                 uint64_t seed)
{
    int threads = net->threads;
    for (int i = first; i < m->n_layers; i++) {
        const struct nn_layer *L = &m->layers[i];
        const float *x = net->acts[i];
        float *y = net->acts[i + 1];
        const float *w = m->params + L->w_off, *b = m->params + L->b_off;
        size_t n = (size_t)N * L->out_size;
        switch (L->spec.kind) {
        case NN_LAYER_DENSE:
            if (i == 0 && net->first_io) {
                nn_dense_forward_io(y, x, w, b, N, (int)L->in_size, (int)L->out_size, &net->rows,
                                    threads);
                break;
            }
            if (dense_sparse(m, net, i, N))
                break;
            nn_dense_forward(y, x, w, b, N, (int)L->in_size, (int)L->out_size, threads);
            break;
        case NN_LAYER_CONV2D:
            if (conv_direct(m, net, i, N))
                break;
            if (net->train && train_direct(m, i) &&
                nn_conv_forward_train_direct(y, x, w, b, L, N, threads) == NN_OK)
                break;
            nn_conv_forward(y, x, w, b, net->scratch, net->train ? net->cols[i] : NULL, L, N,
                            threads);
            break;
        case NN_LAYER_MAXPOOL:
            nn_maxpool_forward(y, net->train ? net->pool_idx[i] : NULL, x, L, N, threads);
            break;
        case NN_LAYER_RELU: act_forward(nn_relu_forward, y, x, n, threads); break;
        case NN_LAYER_SIGMOID: act_forward(nn_sigmoid_forward, y, x, n, threads); break;
        case NN_LAYER_TANH: act_forward(nn_tanh_forward, y, x, n, threads); break;
        case NN_LAYER_DROPOUT:
            if (net->train && !net->train_no_dropout && L->spec.rate > 0.0f) {
                dropout_forward(y, net->masks[i], x, n, L->spec.rate,
                                nn_hash3(seed, (uint64_t)i, 7));
            } else {
                memcpy(y, x, n * sizeof *y); /* identity at inference */
            }
            break;
        case NN_LAYER_FLATTEN: memcpy(y, x, n * sizeof *y); break;
        }
    }
    return net->acts[m->n_layers];
}

const float *nn_net_forward(const struct nn_model *m, struct nn_net *net, int N, uint64_t seed)
{
    return forward_from(m, net, 0, N, seed);
}

int nn_net_first_io_possible(const struct nn_model *m)
{
    return m->n_layers > 0 && m->layers[0].spec.kind == NN_LAYER_DENSE;
}

int nn_net_first_io_init(struct nn_net *net, const struct nn_model *m)
{
    /* on failure nn_net_free frees what was allocated */
    return nn_sparse_rows_alloc(&net->rows, (size_t)net->cap, (size_t)nn_model_input_size(m));
}

int nn_net_byte_input(const struct nn_model *m)
{
    return m->n_layers > 0 && m->layers[0].spec.kind == NN_LAYER_DENSE &&
           m->layers[0].out_size <= 16 && nn_sgemm_isa_best() == NN_GEMM_AVX512;
}

const float *nn_net_forward_u8(const struct nn_model *m, struct nn_net *net, const uint8_t *images,
                               const uint32_t *idx, int N, uint64_t seed)
{
    const struct nn_layer *L = &m->layers[0];
    if (nn_dense_forward_u8(net->acts[1], images, idx, m->params + L->w_off, m->params + L->b_off,
                            N, (int)L->in_size, (int)L->out_size, net->threads) != NN_OK)
        return NULL;
    return forward_from(m, net, 1, N, seed);
}

/* Backward over layers [last, first]; returns the gradient w.r.t. the input of layer first. */
static const float *backward_to(const struct nn_model *m, struct nn_net *net, const float *dlogits,
                                int first, int N, float *grads)
{
    const float *dy = dlogits;
    int threads = net->threads;
    for (int i = m->n_layers - 1; i >= first; i--) {
        const struct nn_layer *L = &m->layers[i];
        /* ping-pong: layer i writes dx into whichever gradient buffer dy is not in */
        float *dx = (dy == net->grad_a) ? net->grad_b : net->grad_a;
        const float *x = net->acts[i], *y = net->acts[i + 1];
        const float *w = m->params + L->w_off;
        size_t n = (size_t)N * L->in_size;
        int need_dx = i > 0;
        switch (L->spec.kind) {
        case NN_LAYER_DENSE:
            if (i == 0 && net->first_io) {
                float *dw = net->sgd_w ? net->sgd_w : grads + L->w_off;
                nn_dense_backward_io(dw, net->sgd_w ? -net->sgd_lr : 1.0f, grads + L->b_off, dy, x,
                                     N, (int)L->in_size, (int)L->out_size, &net->rows, threads);
                break;
            }
            nn_dense_backward(need_dx ? dx : NULL, grads + L->w_off, grads + L->b_off, dy, x, w, N,
                              (int)L->in_size, (int)L->out_size, threads);
            break;
        case NN_LAYER_CONV2D:
            if (train_direct(m, i) && nn_conv_backward_dw_direct(grads + L->w_off, grads + L->b_off,
                                                                 dy, x, L, N, threads) == NN_OK)
                break;
            nn_conv_backward(need_dx ? dx : NULL, grads + L->w_off, grads + L->b_off, dy, x, w,
                             net->scratch, net->cols[i], L, N, threads);
            break;
        case NN_LAYER_MAXPOOL: nn_maxpool_backward(dx, dy, net->pool_idx[i], L, N, threads); break;
        case NN_LAYER_RELU: act_backward(nn_relu_backward, dx, dy, y, n, threads); break;
        case NN_LAYER_SIGMOID: act_backward(nn_sigmoid_backward, dx, dy, y, n, threads); break;
        case NN_LAYER_TANH: act_backward(nn_tanh_backward, dx, dy, y, n, threads); break;
        case NN_LAYER_DROPOUT:
            if (!net->train_no_dropout && L->spec.rate > 0.0f) {
                for (size_t j = 0; j < n; j++)
                    dx[j] = dy[j] * net->masks[i][j];
            } else {
                memcpy(dx, dy, n * sizeof *dx);
            }
            break;
        case NN_LAYER_FLATTEN: memcpy(dx, dy, n * sizeof *dx); break;
        }
        dy = dx;
    }
    return dy;
}

void nn_net_backward(const struct nn_model *m, struct nn_net *net, const float *dlogits, int N,
                     float *grads)
{
    backward_to(m, net, dlogits, 0, N, grads);
}

int nn_net_backward_u8(const struct nn_model *m, struct nn_net *net, const float *dlogits,
                       const uint8_t *images, const uint32_t *idx, int N, float *grads)
{
    const struct nn_layer *L = &m->layers[0];
    const float *dy = m->n_layers > 1 ? backward_to(m, net, dlogits, 1, N, grads) : dlogits;
    return nn_dense_backward_u8(grads + L->w_off, grads + L->b_off, dy, images, idx, N,
                                (int)L->in_size, (int)L->out_size, net->threads);
}

/* ---------------------------------------------------------------------------------------- */
/* Public inference API                                                                      */
/* ---------------------------------------------------------------------------------------- */

struct nn_workspace {
    struct nn_net net;
    int input_size, classes;
};

int nn_workspace_new(nn_workspace **out, const nn_model *model, int max_batch)
{
    *out = NULL;
    if (!model || max_batch < 1)
        return NN_EINVAL;
    nn_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NN_ENOMEM;
    int rc = nn_net_init(&ws->net, model, max_batch, 1, 0);
    if (rc) {
        free(ws);
        return rc;
    }
    ws->input_size = nn_model_input_size(model);
    ws->classes = nn_model_classes(model);
    *out = ws;
    return NN_OK;
}

void nn_workspace_free(nn_workspace *ws)
{
    if (!ws)
        return;
    nn_net_free(&ws->net);
    free(ws);
}

int nn_model_predict_batch(const nn_model *model, const float *x, int n, float *probs,
                           nn_workspace *ws)
{
    if (!model || !x || !probs || !ws || n < 0 || ws->input_size != nn_model_input_size(model) ||
        ws->classes != nn_model_classes(model))
        return NN_EINVAL;
    for (int done = 0; done < n;) {
        int chunk = n - done < ws->net.cap ? n - done : ws->net.cap;
        memcpy(ws->net.acts[0], x + (size_t)done * ws->input_size,
               (size_t)chunk * ws->input_size * sizeof(float));
        const float *logits = nn_net_forward(model, &ws->net, chunk, 0);
        nn_softmax_xent(probs + (size_t)done * ws->classes, NULL, logits, NULL, chunk, ws->classes,
                        0.0f, 1);
        done += chunk;
    }
    return NN_OK;
}

int nn_model_predict(const nn_model *model, const float *x, float *probs, nn_workspace *ws)
{
    return nn_model_predict_batch(model, x, 1, probs, ws);
}

int nn_model_loss_grad(const nn_model *model, const float *x, const uint8_t *y, int n, float *grads,
                       double *loss)
{
    struct nn_net net;
    int rc = nn_net_init(&net, model, n, 1, 1);
    if (rc)
        return rc;
    /* training mode for buffers, but no dropout: rates are honoured only by the trainer */
    net.train_no_dropout = 1;
    memcpy(net.acts[0], x, (size_t)n * nn_model_input_size(model) * sizeof(float));
    int classes = nn_model_classes(model);
    const float *logits = nn_net_forward(model, &net, n, 0);
    memset(grads, 0, model->n_params * sizeof *grads);
    float *dlogits = net.grad_a;
    *loss = nn_softmax_xent(net.probs, dlogits, logits, y, n, classes, 1.0f / (float)n, 1) / n;
    nn_net_backward(model, &net, dlogits, n, grads);
    nn_net_free(&net);
    return NN_OK;
}
