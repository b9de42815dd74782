/*
 * read.h - the POST /read handler: a whole number from one image, without any HTTP library.
 *
 * The same bodies, options, limits and errors as /predict (predict.h: one parser for both),
 * answered by nn_read_number (nn/segment.c): the digits left to right with their boxes and
 * probabilities, and the number as a string of digits (it may begin with 0s).
 */
#ifndef SRV_READ_H
#define SRV_READ_H

#include "metrics.h"
#include "models.h"
#include "predict.h"

#include <stddef.h>

/*
 * Answers one /read request (arguments as for srv_predict). Each image, whatever its size
 * (a 28x28 "pixels" array too), is read as ink: {"number":"2026","digits":[{"prediction":2,
 * "probabilities":[...],"box":[x,y,w,h]},...],"model":"...","elapsed_us":N}, with "input" (the
 * 28x28 each digit became) in every digit when return_input is set; no ink gives
 * {"number":null,"reason":"blank","digits":[],...}; {"images":[...]} gives {"results":[...]}.
 * More than NN_READ_MAX_DIGITS digits (or NN_READ_MAX_MARKS separate marks) is a 400 for the
 * whole request. Never fails for input; metrics may be NULL. Thread-safe.
 */
void srv_read(struct srv_response *res, struct srv_registry *reg, struct srv_metrics *metrics,
              const char *content_type, const char *body, size_t len, const char *q_model,
              const char *q_return_input);

#endif
