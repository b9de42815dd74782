/* test_arch.c - the architecture spec: parsing, implicit activations, canonical form, errors. */
#include "nn/nn.h"

#include <criterion/criterion.h>
#include <string.h>

struct arch_case {
    const char *spec;
    int act;
    const char *canonical; /* NULL: must be rejected */
};

static const struct arch_case cases[] = {
    {"dense:256,dense:10", NN_LAYER_SIGMOID, "dense:256,sigmoid,dense:10"},
    {"dense:10", NN_LAYER_RELU, "dense:10"},
    {"conv:32:5,pool:2,dense:256,dropout:0.3,dense:10", NN_LAYER_RELU,
     "conv:32:5:1:2,relu,pool:2:2,dense:256,relu,dropout:0.3,dense:10"},
    {"dense:64,tanh,dense:10", NN_LAYER_RELU, "dense:64,tanh,dense:10"},
    {"conv:8:3:2:0,flatten,dense:10", NN_LAYER_TANH, "conv:8:3:2:0,tanh,flatten,dense:10"},
    {"", NN_LAYER_RELU, NULL},
    {"dense:0,dense:10", NN_LAYER_RELU, NULL},
    {"dense:10,", NN_LAYER_RELU, NULL},
    {"dense:256,relu", NN_LAYER_RELU, NULL},
    {"dense:-4,dense:10", NN_LAYER_RELU, NULL},
    {"dropout:1.0,dense:10", NN_LAYER_RELU, NULL},
    {"bogus,dense:10", NN_LAYER_RELU, NULL},
    {"dense:12x,dense:10", NN_LAYER_RELU, NULL},
};

static void check_case(const struct arch_case *c)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    int n = -1;
    char err[256] = "", canon[512];
    int rc = nn_arch_parse(l, NN_MAX_LAYERS, &n, c->spec, c->act, err, sizeof err);
    if (!c->canonical) {
        cr_expect_eq(rc, NN_EINVAL, "'%s' should be rejected", c->spec);
        cr_expect_neq(err[0], '\0', "rejection of '%s' explains itself", c->spec);
        return;
    }
    cr_assert_eq(rc, NN_OK, "'%s': %s", c->spec, err);
    nn_arch_format(canon, sizeof canon, l, n);
    cr_expect_str_eq(canon, c->canonical);
    /* the canonical form parses back to itself */
    struct nn_layer_spec l2[NN_MAX_LAYERS];
    int n2;
    cr_assert_eq(nn_arch_parse(l2, NN_MAX_LAYERS, &n2, canon, c->act, err, sizeof err), NN_OK);
    cr_expect_eq(n2, n);
    cr_expect_eq(memcmp(l, l2, sizeof l[0] * (size_t)n), 0);
}

Test(arch, parses_a_table_of_specs_to_canonical_form_or_rejects_them)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
}

Test(arch, model_rejects_layers_that_do_not_fit_the_input)
{
    struct nn_layer_spec l[NN_MAX_LAYERS];
    int n;
    char err[256] = "";
    nn_model *m = NULL;
    cr_assert_eq(nn_arch_parse(l, NN_MAX_LAYERS, &n, "conv:4:5:1:0,pool:8,dense:10", NN_LAYER_RELU,
                               err, sizeof err),
                 NN_OK);
    cr_expect_lt(nn_model_new(&m, 1, 8, 8, l, n, NULL, err, sizeof err), 0);
    cr_expect_null(m);
    cr_expect(strstr(err, "pool") != NULL, "message names the layer: %s", err);
}
