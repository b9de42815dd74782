/*
 * samples_route.h - the /samples routes over samples.h, without any HTTP library: http.c hands
 * over the body, the query values and the part of the path after "/samples", and gets back a
 * response (tests call the same functions).
 *
 *   POST   /samples?label=D   any body /predict takes, or JSON {"label":D, ...}: 201 {"id":N}
 *   GET    /samples?label=&limit=&offset=
 *   GET    /samples/{id}, /samples/{id}.png
 *   GET    /samples/export    a tar of samples-images-idx3-ubyte and samples-labels-idx1-ubyte
 *   DELETE /samples/{id}
 *
 * A sample is one image: it is read, normalised and predicted exactly as /predict does
 * (srv_predict_parse_body, srv_predict_image), and what the model answered is kept beside the
 * label the person gave.
 */
#ifndef SRV_SAMPLES_ROUTE_H
#define SRV_SAMPLES_ROUTE_H

#include "metrics.h"
#include "models.h"
#include "predict.h"
#include "samples.h"

#include <stddef.h>

#define SRV_SAMPLES_LIST_MAX 1000 /* most samples one GET /samples returns */

void srv_samples_post(struct srv_response *res, struct srv_samples *db, struct srv_registry *reg,
                      struct srv_metrics *metrics, const char *content_type, const char *body,
                      size_t len, const char *q_model, const char *q_label);
void srv_samples_list_json(struct srv_response *res, struct srv_samples *db, const char *q_label,
                           const char *q_limit, const char *q_offset);
/* rest: what follows "/samples/" ("12", "12.png" or "export"). */
void srv_samples_get_one(struct srv_response *res, struct srv_samples *db, const char *rest);
void srv_samples_delete_one(struct srv_response *res, struct srv_samples *db, const char *rest);

#endif
