/* Private: the processes of a data parallel run (runtime/dist/dist.c). Built with MPI when CMake
 * found it (NCL_HAVE_MPI); otherwise, and in a run without MPI, one process of rank 0 for
 * which every collective is a no-op. */
#ifndef NCL_DIST_IMPL_H
#define NCL_DIST_IMPL_H

#include <stddef.h>

#include "status-impl.h"

struct ncl_dist {
    int rank, size;             /* MPI_COMM_WORLD's, or 0 and 1 */
    int local_rank;             /* among the ranks on this machine */
};

/* This process alone (rank 0 of 1), or MPI_COMM_WORLD when `mpi` (ncl_mpi_init called). */
enum ncl_status ncl_dist_open(struct ncl_dist *d, int mpi);

/* In-place sums over every rank, the same result on each (NCL_ERR_ARG past INT_MAX elements). */
enum ncl_status ncl_dist_sum_floats(const struct ncl_dist *d, float *buf, size_t n);
enum ncl_status ncl_dist_sum_doubles(const struct ncl_dist *d, double *buf, size_t n);
/* Rank 0's bytes to every rank. */
enum ncl_status ncl_dist_broadcast(const struct ncl_dist *d, void *buf, size_t bytes);
/* Every rank's `bytes` at all[rank * bytes]. */
enum ncl_status ncl_dist_gather_all(const struct ncl_dist *d, const void *mine, void *all, size_t bytes);
/* Whether every rank got NCL_OK: returns the status of the lowest rank that failed, and gives
 * every rank that rank's message (prefixed "rank N: " on the others), so that rank 0 can report
 * it and all ranks stop together instead of waiting for each other. */
enum ncl_status ncl_dist_agree(const struct ncl_dist *d, enum ncl_status s);
/* Ends every rank of the job (a rank failed in the middle of a step, when the others already
 * wait for it in a collective). */
void ncl_dist_abort(const struct ncl_dist *d, int code);

#endif
