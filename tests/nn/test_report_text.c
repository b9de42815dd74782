/* test_report_text.c - the confusion matrix as text, as digits-train and digits-eval print it. */
#include "nn/nn.h"
#include "nn/bin/report.h"

#include <criterion/criterion.h>
#include <string.h>

Test(report_text, confusion_table_has_a_row_per_digit_with_its_counts)
{
    uint32_t conf[NN_CLASSES_MAX][NN_CLASSES_MAX] = {{0}};
    char buf[2048], tiny[16];
    for (int y = 0; y < 10; y++)
        conf[y][y] = 1000 + (uint32_t)y;
    conf[4][9] = 7;
    int n = nn_report_confusion_text(buf, sizeof buf, (const uint32_t(*)[NN_CLASSES_MAX])conf);
    cr_assert_eq((size_t)n, strlen(buf));
    cr_expect(strstr(buf, "rows: true digit") != NULL);
    const char *row4 = strstr(buf, "\n  4: ");
    cr_assert_not_null(row4);
    cr_expect(strncmp(row4 + 1,
                      "  4:       0      0      0      0   1004      0      0      0      0      7",
                      75) == 0,
              "%.80s", row4 + 1);
    /* a short buffer is truncated, terminated, and told the size it needed */
    int need = nn_report_confusion_text(tiny, sizeof tiny, (const uint32_t(*)[NN_CLASSES_MAX])conf);
    cr_expect_eq(need, n);
    cr_expect_eq(strlen(tiny), sizeof tiny - 1);
}
