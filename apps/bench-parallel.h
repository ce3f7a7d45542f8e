/* nincl bench for data parallel runs (apps/bench-parallel.c). */
#ifndef NCL_BENCH_PARALLEL_H
#define NCL_BENCH_PARALLEL_H

#include "nincl.h"

struct parallel_bench {
    const char *model, *devices, *split, *overlap, *data_dir;
    double bucket_mb;
    int batch, resize, steps, json;
    struct ncl_ctx_params device;
};
/* Prints the figures (text or one JSON object, rank 0 only); returns an exit code. */
int bench_parallel(const struct parallel_bench *b);

#endif
