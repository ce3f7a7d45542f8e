/* Helpers shared by train, eval and bench: data loading, evaluation, shuffling, timing,
 * and atomic writes of small text files. */
#ifndef NCL_RUN_UTIL_H
#define NCL_RUN_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "nincl.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

extern const char *const fashion_mnist_classes[10];

double now_seconds(void);

/* Loads a split ("train"/"t10k") keeping the first `limit` examples (0: all). Prints the
 * error and returns an exit code, or -1 on success. */
int load_split(const char *dir, const char *split, int64_t limit, struct ncl_dataset *ds);

/* The examples' order for an epoch: a permutation of 0..count-1 that depends only on
 * (seed, epoch), so a resumed run shuffles exactly as the original. */
void epoch_order(uint64_t seed, int epoch, int32_t *order, int64_t count);

/* Runs examples 0..count-1 of d through the graph in eval mode, `batch` at a time: counts the
 * correct predictions and fills logits [count, classes] when given. */
enum ncl_status evaluate(struct ncl_graph *g, struct ncl_device_data *d, int64_t count, int batch,
                         int64_t *correct, float *logits);

/* Writes text to path atomically (temporary file, fsync, rename). */
int write_file_atomic(const char *path, const char *text, size_t len);

/* Draws train loss, train acc and test acc against epoch as an SVG, like d2l's live plot. */
int write_curves_svg(const char *path, int epochs_total, int count, const double *loss, const double *train_acc,
                     const double *test_acc);

#endif
