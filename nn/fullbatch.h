/*
 * fullbatch.h - private to libnn: the gradient of a small MLP over a whole byte dataset, all
 * layers fused (the full-batch gradient descent of the seed000 preset).
 *
 * The trainer uses it when every step sees the whole training set and the model is
 * dense(I -> H) [ReLU] dense(H -> C) with H, C <= 16 on a CPU with AVX-512; see fullbatch.c.
 */
#ifndef NN_FULLBATCH_H
#define NN_FULLBATCH_H

#include "nn_impl.h"

typedef struct nn_fullbatch nn_fullbatch;

/* 1 if nn_fullbatch can compute m's gradient on this CPU, else 0. */
int nn_fullbatch_supported(const struct nn_model *m);

/*
 * Lists the nonzero pixels of every image of ds once (6 bytes per nonzero pixel) and
 * copies its labels; ds may be freed afterwards. m must be supported, with ds's image size as
 * its input, and more outputs than ds's largest label. Returns NN_OK, NN_EINVAL or NN_ENOMEM.
 */
int nn_fullbatch_new(nn_fullbatch **out, const struct nn_model *m, const struct nn_dataset *ds);
void nn_fullbatch_free(nn_fullbatch *fb);

/*
 * Adds to grads (m->n_params floats, in the model's layout) scale times the gradient of the
 * summed softmax cross-entropy of m over every sample of the dataset, like nn_net_forward,
 * nn_softmax_xent and nn_net_backward over all of it would (other rounding: the sums run in
 * another order). Returns the summed loss; *correct gets the number of samples whose most
 * probable class is their label. The result does not depend on threads.
 */
double nn_fullbatch_grad(nn_fullbatch *fb, const struct nn_model *m, float *grads, float scale,
                         size_t *correct, int threads);

#endif
