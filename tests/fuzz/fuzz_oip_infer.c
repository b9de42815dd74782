/*
 * fuzz_oip_infer.c - the Open Inference Protocol's infer body (server/oip.c): JSON tensors
 * read in place by jscan, Triton's binary tensor extension, BYTES images through the decoders,
 * and the answer written back in JSON or binary.
 *
 * Input: byte 0 says whether an Inference-Header-Content-Length header is sent (bit 0) and
 * bytes 1-2 its value (big-endian); the rest is the body. The model is a small random dense
 * network saved to a temporary file once, so that every body goes the whole way. Every answer
 * must be 200 with an "outputs" JSON object (its JSON part, when binary, no longer than the
 * body), or a 4xx/503 whose body is {"error": a non-empty string}; anything else aborts.
 * Replayed over tests/fuzz/corpus/oip_infer by `make test`, run with libFuzzer by `make fuzz`
 * (dictionary: oip_infer.dict).
 */
#include "server/metrics.h"
#include "server/models.h"
#include "server/oip.h"
#include "server/predict.h"

#include "nn/nn.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct srv_registry *registry(void)
{
    static struct srv_registry *reg;
    if (reg)
        return reg;
    struct nn_layer_spec l[NN_MAX_LAYERS];
    struct nn_rng rng;
    nn_model *m = NULL;
    int n;
    char err[512], path[] = "/tmp/fuzz-oip-XXXXXX";
    nn_rng_seed(&rng, 1);
    int fd = mkstemp(path);
    if (fd < 0 || nn_arch_parse(l, NN_MAX_LAYERS, &n, "dense:8,dense:10", NN_LAYER_RELU, NULL, 0) ||
        nn_model_new(&m, 1, 28, 28, l, n, &rng, err, sizeof err))
        abort();
    struct nn_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.name, sizeof meta.name, "m");
    if (nn_model_set_meta(m, &meta) != NN_OK || nn_model_save(m, path, err, sizeof err))
        abort();
    close(fd);
    nn_model_free(m);
    const char *paths[] = {path};
    if (srv_registry_new(&reg, paths, 1, err, sizeof err) != 0)
        abort();
    unlink(path);
    return reg;
}

static void check_answer(const struct srv_response *res, size_t body_len)
{
    if (!res->body || !res->len)
        abort();
    size_t json_len = res->has_json_len ? res->json_len : res->len;
    if (json_len > res->len)
        abort();
    cJSON *j = cJSON_ParseWithLength(res->body, json_len);
    if (!j)
        abort();
    if (res->status == 200) {
        if (!cJSON_IsArray(cJSON_GetObjectItem(j, "outputs")))
            abort();
    } else {
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        if (res->status < 400 || (res->status >= 500 && res->status != 503) || res->has_json_len ||
            !cJSON_IsString(e) || !e->valuestring[0])
            abort();
    }
    (void)body_len;
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct srv_metrics metrics;
    if (size < 3)
        return 0;
    char header[16];
    const char *json_len = NULL;
    if (data[0] & 1) {
        snprintf(header, sizeof header, "%u", (unsigned)data[1] << 8 | data[2]);
        json_len = header;
    }
    /* the server's buffers end in a NUL after the body (http.c): so do ours */
    char *body = malloc(size - 3 + 1);
    if (!body)
        return 0;
    memcpy(body, data + 3, size - 3);
    body[size - 3] = '\0';
    struct srv_oip_path p;
    if (srv_oip_path_parse(&p, "/v2/models/m/infer") != SRV_OIP_INFER)
        abort();
    struct srv_response res;
    srv_oip_infer(&res, registry(), &metrics, &p, json_len, body, size - 3);
    check_answer(&res, size - 3);
    srv_response_free(&res);
    free(body);
    return 0;
}
