/* net.h - private: the batch executor shared by inference, training and evaluation. */
#ifndef NN_NET_H
#define NN_NET_H

#include "nn_impl.h"

struct nn_net {
    int cap, threads, train;
    int train_no_dropout;             /* training buffers but dropout disabled */
    float *acts[NN_MAX_LAYERS + 1];   /* acts[0] = input (cap * input), acts[i+1] = out of i */
    int32_t *pool_idx[NN_MAX_LAYERS]; /* per maxpool layer, when training */
    float *masks[NN_MAX_LAYERS];      /* per dropout layer, when training */
    float *scratch;                   /* largest nn_conv_scratch_floats over conv layers */
    float *cols[NN_MAX_LAYERS];       /* training: conv layers' im2col columns, kept from
                                           * forward for backward (NULL: built again) */
    float *grad_a, *grad_b;           /* cap * max activation, ping-pong */
    float *probs;                     /* cap * classes */
    int32_t *nz_idx;                  /* inference: one dense layer input's nonzero */
    float *nz_val;                    /* positions and values (largest input size) */
    /* training, first layer dense: when first_io is set, its weights (and their gradients)
     * are stored transposed, (I,O), and its zero inputs are skipped (nn_dense_forward_io);
     * the trainer sets it for the length of an epoch */
    int first_io;
    struct nn_sparse_rows rows;
    /* training, with first_io: when not NULL, backward updates these first-layer weights with
     * plain SGD at rate sgd_lr instead of adding their gradient to grads */
    float *sgd_w;
    float sgd_lr;
};

/* Allocates buffers for up to cap samples. train: keep what backward needs. */
int nn_net_init(struct nn_net *net, const struct nn_model *m, int cap, int threads, int train);
void nn_net_free(struct nn_net *net);
/* Forward over N <= cap samples already in net->acts[0]; returns the logits (N, classes).
 * seed drives dropout masks when training. */
const float *nn_net_forward(const struct nn_model *m, struct nn_net *net, int N, uint64_t seed);
/* Backward from dlogits (N, classes), which must not be net->grad_b; accumulates into grads
 * (n_params floats, not zeroed here). Needs a forward with the same N just before. */
void nn_net_backward(const struct nn_model *m, struct nn_net *net, const float *dlogits, int N,
                     float *grads);

/* Whether the first layer can be kept transposed while training (it is dense): see first_io.
 * nn_net_first_io_init allocates the lists (rows) that first_io needs: NN_OK or NN_ENOMEM. */
int nn_net_first_io_possible(const struct nn_model *m);
int nn_net_first_io_init(struct nn_net *net, const struct nn_model *m);

/*
 * Byte input for a first dense layer with few outputs (the full-batch seed000 preset): the
 * dataset bytes are read in place, sample n being images + idx[n]*input (idx NULL: n*input),
 * instead of being converted into acts[0] first. Same bits as converting with
 * nn_bytes_to_float and calling nn_net_forward / nn_net_backward. Use only when
 * nn_net_byte_input(m) says the byte kernels exist for this model and CPU.
 * forward_u8 returns NULL on allocation failure; backward_u8 returns NN_OK or NN_ENOMEM.
 */
int nn_net_byte_input(const struct nn_model *m);
const float *nn_net_forward_u8(const struct nn_model *m, struct nn_net *net, const uint8_t *images,
                               const uint32_t *idx, int N, uint64_t seed);
int nn_net_backward_u8(const struct nn_model *m, struct nn_net *net, const float *dlogits,
                       const uint8_t *images, const uint32_t *idx, int N, float *grads);

#endif
