/*
 * report.h - the reports digits-train and digits-eval write next to a model: its history as CSV
 * and as an SVG chart, a PNG grid of test digits with the mistakes framed, and the text of the
 * confusion matrix and of a digit in ASCII. Program code beside libnn, not part of it (nn.h).
 */
#ifndef NN_BIN_REPORT_H
#define NN_BIN_REPORT_H

#include "nn/nn.h"

#include <stddef.h>
#include <stdint.h>

/* Per-point history as CSV with a header row (epoch,step,lr,train_loss,...). Atomic write. */
int nn_report_history_csv(const char *path, const struct nn_history_point *h, int n, char *err,
                          size_t errlen);
/* Loss and accuracy curves as a standalone SVG (two panels, axes with ticks and labels,
 * legend, title). NaN points (not evaluated) are skipped. Atomic write. */
int nn_report_history_svg(const char *path, const struct nn_history_point *h, int n,
                          const char *title, char *err, size_t errlen);
/* PNG grid of the first `count` digits of ds, each labelled "pred/true", misclassified ones
 * framed in red. predicted[i] is the model's label for ds image i. Atomic write. */
int nn_report_digit_grid_png(const char *path, const struct nn_dataset *ds,
                             const uint8_t *predicted, int count, char *err, size_t errlen);
/* A confusion matrix ([true][predicted], 10 classes) as an aligned text table with a heading
 * line; returns the length needed, like snprintf. */
int nn_report_confusion_text(char *buf, size_t len,
                             const uint32_t conf[NN_CLASSES_MAX][NN_CLASSES_MAX]);
/* One rows x cols byte image as ASCII art (one line per row, ' ' to '@' by intensity) into
 * buf; returns the length needed, like snprintf. */
int nn_report_ascii_digit(char *buf, size_t len, const uint8_t *pixels, int rows, int cols);

/* 0 if everything the program printed to stdout reached it; else says so on stderr ("PROG:
 * writing to standard output: ...": a full disk, a closed pipe) and returns -1, so that a
 * summary a script reads is never silently lost. */
int nn_report_stdout_written(const char *prog);

#endif
