/* Helpers shared by the eval and bench commands: data loading with a message, timing, class
 * names. */
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

/* Under mpirun or srun (their environment says so): starts MPI (*mpi = 1, *rank); a build
 * without MPI is a usage error, printed. Returns -1 to go on, or an exit code. */
int mpi_start_if_launched(const char *command, int *mpi, int *rank);

/* A data parallel run's per-step figures in words: compute, gradient sum, overlap (static). */
const char *parallel_step_figures(const struct ncl_train_result *res);

#endif
