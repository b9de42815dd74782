/*
 * The answer of a model with a "not a digit" class: the digit probabilities renormalised over
 * 0..9, p(not a digit), and the threshold from the model file that turns it into a rejection.
 */
#include "nn_impl.h"

#include <math.h>

float nn_model_reject_threshold(const nn_model *model) { return model->reject_threshold; }

int nn_model_set_reject_threshold(nn_model *model, float threshold)
{
    if (!(threshold >= 0.0f && threshold <= 1.0f))
        return NN_EINVAL;
    if (threshold > 0.0f && nn_model_classes(model) != NN_NOT_A_DIGIT_CLASS + 1)
        return NN_EINVAL;
    model->reject_threshold = threshold;
    return NN_OK;
}

int nn_model_answer(const nn_model *model, const float *probs, float p10[10], float *reject)
{
    const int classes = nn_model_classes(model);
    const int digits = classes < 10 ? classes : 10;
    float sum = 0.0f, r = classes > NN_NOT_A_DIGIT_CLASS ? probs[NN_NOT_A_DIGIT_CLASS] : 0.0f;
    for (int i = 0; i < 10; i++) {
        p10[i] = i < digits ? probs[i] : 0.0f;
        sum += p10[i];
    }
    if (classes <= NN_NOT_A_DIGIT_CLASS)
        ; /* a 10-class model's probabilities are given as they are, bit for bit */
    else if (sum > 0.0f)
        for (int i = 0; i < 10; i++)
            p10[i] /= sum;
    else /* everything on "not a digit": no digit is more likely than another */
        for (int i = 0; i < 10; i++)
            p10[i] = 0.1f;
    *reject = r;
    const float t = model->reject_threshold;
    if (t > 0.0f && r >= t)
        return NN_NOT_A_DIGIT;
    return nn_argmax(p10, 10);
}
