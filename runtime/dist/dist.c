/* The processes of a data parallel run: MPI_COMM_WORLD through Open MPI when the library is
 * built with it, else a single process. Collectives on host buffers: gradients are summed
 * after each replica's backward (runtime/dist/replicas.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist-impl.h"

#ifdef NCL_HAVE_MPI
#include <mpi.h>

int ncl_mpi_available(void)
{
    return 1;
}

enum ncl_status ncl_mpi_init(int *argc, char ***argv, int *rank, int *size)
{
    int on = 0;
    MPI_Initialized(&on);
    if (!on && MPI_Init(argc, argv) != MPI_SUCCESS)
        return ncl_fail(NCL_ERR_ARG, "MPI_Init failed");
    /* a failing collective returns an error instead of aborting, so it can be reported */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rank)
        MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (size)
        MPI_Comm_size(MPI_COMM_WORLD, size);
    return NCL_OK;
}

void ncl_mpi_finalize(void)
{
    int on = 0, off = 0;
    MPI_Initialized(&on);
    MPI_Finalized(&off);
    if (on && !off) {
        /* every rank waits here for the others: one leaving first with an error exit makes mpirun
         * kill the rest, perhaps before rank 0 has printed why */
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Finalize();
    }
}

static enum ncl_status mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return ncl_fail(NCL_ERR_OPENCL, "%s failed: %s (another rank probably died)", what, msg);
}

#define MPI_TRY(call, what)                  \
    do {                                     \
        int mpi_rc_ = (call);                \
        if (mpi_rc_ != MPI_SUCCESS)          \
            return mpi_fail(mpi_rc_, what);  \
    } while (0)

enum ncl_status ncl_dist_open(struct ncl_dist *d, int mpi)
{
    *d = (struct ncl_dist){0, 1, 0};
    if (!mpi)
        return NCL_OK;
    int on = 0;
    MPI_Initialized(&on);
    if (!on)
        return ncl_fail(NCL_ERR_ARG, "an MPI run needs ncl_mpi_init first");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm local;
    MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local),
            "MPI_Comm_split_type");
    MPI_Comm_rank(local, &d->local_rank);
    MPI_Comm_free(&local);
    return NCL_OK;
}

static enum ncl_status sum(const struct ncl_dist *d, void *buf, size_t n, MPI_Datatype type)
{
    if (d->size == 1 || n == 0)
        return NCL_OK;
    if (n > INT_MAX)
        return ncl_fail(NCL_ERR_ARG, "an allreduce of %zu elements is over MPI's limit", n);
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    return NCL_OK;
}

enum ncl_status ncl_dist_sum_floats(const struct ncl_dist *d, float *buf, size_t n)
{
    return sum(d, buf, n, MPI_FLOAT);
}

enum ncl_status ncl_dist_sum_doubles(const struct ncl_dist *d, double *buf, size_t n)
{
    return sum(d, buf, n, MPI_DOUBLE);
}

enum ncl_status ncl_dist_broadcast(const struct ncl_dist *d, void *buf, size_t bytes)
{
    if (d->size == 1 || bytes == 0)
        return NCL_OK;
    if (bytes > INT_MAX)
        return ncl_fail(NCL_ERR_ARG, "a broadcast of %zu bytes is over MPI's limit", bytes);
    MPI_TRY(MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    return NCL_OK;
}

enum ncl_status ncl_dist_gather_all(const struct ncl_dist *d, const void *mine, void *all, size_t bytes)
{
    if (d->size == 1) {
        memcpy(all, mine, bytes);
        return NCL_OK;
    }
    MPI_TRY(MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgather");
    return NCL_OK;
}

enum ncl_status ncl_dist_agree(const struct ncl_dist *d, enum ncl_status s)
{
    if (d->size == 1)
        return s;
    int mine = s == NCL_OK ? INT_MAX : d->rank, first = INT_MAX;
    MPI_TRY(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    if (first == INT_MAX)
        return NCL_OK;
    char msg[4096];
    int status = (int)s;
    snprintf(msg, sizeof msg, "%s", ncl_last_error());
    MPI_TRY(MPI_Bcast(&status, 1, MPI_INT, first, MPI_COMM_WORLD), "MPI_Bcast");
    MPI_TRY(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD), "MPI_Bcast");
    msg[sizeof msg - 1] = 0;
    if (first == d->rank)
        return (enum ncl_status)status;
    return ncl_fail((enum ncl_status)status, "rank %d: %s", first, msg);
}

void ncl_dist_abort(const struct ncl_dist *d, int code)
{
    if (d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}

#else /* without MPI: one process */

int ncl_mpi_available(void)
{
    return 0;
}

enum ncl_status ncl_mpi_init(int *argc, char ***argv, int *rank, int *size)
{
    (void)argc;
    (void)argv;
    if (rank)
        *rank = 0;
    if (size)
        *size = 1;
    return ncl_fail(NCL_ERR_ARG, "this nincl was built without MPI: install libopenmpi-dev and rebuild "
                                 "(CMake finds it) to train across processes");
}

void ncl_mpi_finalize(void)
{
}

enum ncl_status ncl_dist_open(struct ncl_dist *d, int mpi)
{
    *d = (struct ncl_dist){0, 1, 0};
    return mpi ? ncl_mpi_init(NULL, NULL, NULL, NULL) : NCL_OK;
}

enum ncl_status ncl_dist_sum_floats(const struct ncl_dist *d, float *buf, size_t n)
{
    (void)d, (void)buf, (void)n;
    return NCL_OK;
}

enum ncl_status ncl_dist_sum_doubles(const struct ncl_dist *d, double *buf, size_t n)
{
    (void)d, (void)buf, (void)n;
    return NCL_OK;
}

enum ncl_status ncl_dist_broadcast(const struct ncl_dist *d, void *buf, size_t bytes)
{
    (void)d, (void)buf, (void)bytes;
    return NCL_OK;
}

enum ncl_status ncl_dist_gather_all(const struct ncl_dist *d, const void *mine, void *all, size_t bytes)
{
    (void)d;
    memcpy(all, mine, bytes);
    return NCL_OK;
}

enum ncl_status ncl_dist_agree(const struct ncl_dist *d, enum ncl_status s)
{
    (void)d;
    return s;
}

void ncl_dist_abort(const struct ncl_dist *d, int code)
{
    (void)d, (void)code;
}
#endif
