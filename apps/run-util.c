/* Helpers shared by the train, eval and bench commands. */
#define _DEFAULT_SOURCE
#include "run-util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flags.h"

const char *const fashion_mnist_classes[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                               "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int load_split(const char *dir, const char *split, int64_t limit, struct ncl_dataset *ds)
{
    enum ncl_status s = ncl_dataset_load(dir, split, 10, ds);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl: %s\n", ncl_last_error());
        return exit_code_for(s);
    }
    if (limit > 0 && limit < ds->count)
        ds->count = limit;
    return -1;
}

/* Under mpirun or srun (their environment says so), every rank trains its part of one run. */
int mpi_start_if_launched(const char *command, int *mpi, int *rank)
{
    static const char *const launched[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    *mpi = 0;
    for (size_t i = 0; i < sizeof launched / sizeof launched[0]; i++)
        if (getenv(launched[i]))
            *mpi = 1;
    if (!*mpi)
        return -1;
    int size = 1;
    if (ncl_mpi_init(NULL, NULL, rank, &size) != NCL_OK) {
        fprintf(stderr, "nincl %s: started by an MPI launcher, but %s\n", command, ncl_last_error());
        return EXIT_USAGE;
    }
    return -1;
}

const char *parallel_step_figures(const struct ncl_train_result *res)
{
    static char line[256];
    double compute = res->compute_seconds_per_step * 1e3, reduce = res->reduce_seconds_per_step * 1e3,
           overlap = res->overlap_seconds_per_step * 1e3, step = compute + reduce - overlap;
    snprintf(line, sizeof line,
             "%.1f ms forward and backward, %.1f ms summing gradients in %d bucket%s, %.1f ms of it overlapped "
             "with backward (%.1f%% of the step waits for the sum)",
             compute, reduce, res->buckets, res->buckets == 1 ? "" : "s", overlap,
             step > 0 ? 100 * (reduce - overlap) / step : 0.0);
    return line;
}
