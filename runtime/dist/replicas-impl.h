/* Private: the model replicas of a data parallel run (runtime/dist/replicas.c). Each replica is a
 * context and a graph on one device; every step the global batch is split between the
 * replicas of all processes, each runs its slice forward and backward, the gradients are
 * summed (in this process, then across processes), and every replica applies the same SGD step,
 * so their parameters stay identical. One replica in one process is the plain loop. */
#ifndef NCL_REPLICAS_IMPL_H
#define NCL_REPLICAS_IMPL_H

#include "ctx-impl.h"
#include "dist-impl.h"

struct ncl_replica {
    struct ncl_ctx *ctx;
    struct ncl_graph *g;
    struct ncl_device_data *train_dd;
    int offset, count;          /* this step's slice of the global batch */
    int turn_after;             /* the last earlier replica of this process on the same device, or -1 */
};

/* A bucket of gradients: the arena range [lo, hi), final once layer `last_layer`'s backward
 * has run. Buckets go from the output side down, so the first is ready first. */
struct ncl_bucket {
    size_t lo, hi;
    int last_layer;
};

struct ncl_replicas {
    struct ncl_replica *r;
    int count;                  /* in this process */
    int first, total;           /* index of this process's first replica among all processes', and their number */
    double *shares;             /* [total]: each replica's share of the global batch, summing to 1 */
    float **host;               /* [count]: each replica's gradients on the host (host[0] takes the sum) */
    size_t floats;
    struct ncl_bucket *buckets; /* one covering everything when the reduction is not overlapped */
    int bucket_count;
    cl_event *ready;            /* [count x bucket_count]: a replica's read of a bucket, this step */
    const struct ncl_dist *dist;
    /* per step, summed over `steps`: waiting for the devices until the host held the last
     * bucket; summing (host adds, allreduce, writing back); and the part of summing done while
     * backward still ran */
    double compute_s, reduce_s, overlap_s;
    long steps;
    int shared_device;          /* some device holds two replicas of this process (they take turns) */
};

/* One device per entry of `list`: "P:D" (indices as `nincl devices` shows them), a name or type
 * substring as ncl_ctx_params.device takes, or "all" (every device); entries may repeat.
 * *out is malloc'ed (free it); an empty string in a pick means "not given". */
struct ncl_device_pick {
    char platform[16], device[128];
};
enum ncl_status ncl_device_list_parse(const char *list, struct ncl_device_pick **out, int *count);

/* Contexts, graphs of `model` (max batch: the largest slice a replica can get) and the training
 * data on each picked device (NULL: the one device `base` selects); kernel, GEMM and convolution
 * choices come from base. Shares from `split`: "even" (NULL), or "auto" (in proportion to each
 * replica's measured speed; a replica too slow to help gets none). Replicas on the same device
 * must fit its memory together. Whether the gradient sum overlaps backward, and the bucket
 * size, are rank 0's (ranks may differ in their devices, never in the buckets). */
struct ncl_replicas_params {
    const char *model;
    struct ncl_shape input;
    const char *split;
    const char *overlap;        /* "on", "off" or "auto" (NULL), as ncl_train_config.overlap */
    double bucket_mb;           /* 0: NCL_BUCKET_MB_DEFAULT */
    uint64_t seed;
};
#define NCL_BUCKET_MB_DEFAULT 2.0

enum ncl_status ncl_replicas_create(const struct ncl_device_pick *picks, int count,
                                    const struct ncl_ctx_params *base, const struct ncl_dist *dist,
                                    const struct ncl_replicas_params *p, const struct ncl_dataset *train,
                                    struct ncl_replicas *out);
void ncl_replicas_free(struct ncl_replicas *set);

/* Replica 0's parameters (and momentum) to every replica of every process (rank 0's). */
enum ncl_status ncl_replicas_sync_params(struct ncl_replicas *set);
/* One training step on examples order[first .. first + n): NCL_OK once every replica has
 * enqueued its SGD step. */
enum ncl_status ncl_replicas_step(struct ncl_replicas *set, int64_t first, int n, uint64_t step,
                                  const struct ncl_sgd_params *sgd);
/* The metrics of all replicas of all processes, summed. */
enum ncl_status ncl_replicas_read_metrics(struct ncl_replicas *set, struct ncl_metrics *m, int reset);
enum ncl_status ncl_replicas_set_order(struct ncl_replicas *set, const int32_t *order, int64_t count);
/* NCL_ERR_NUMERIC naming the replica and tensor whose parameters differ from replica 0's. */
enum ncl_status ncl_replicas_check_identical(struct ncl_replicas *set);
enum ncl_status ncl_replicas_finish(struct ncl_replicas *set);

/* The gradient reduction (runtime/dist/reduce.c). Buckets of about cap_floats each (0: one for
 * everything), the same on every rank, and the host buffers. */
enum ncl_status ncl_reduce_setup(struct ncl_replicas *set, size_t cap_floats);
void ncl_reduce_free(struct ncl_replicas *set);
/* Replica i's backward, reading each bucket to the host as soon as the layers that write it
 * have run. */
enum ncl_status ncl_reduce_backward(struct ncl_replicas *set, int i);
/* Once every replica's backward is enqueued: sums each bucket as it arrives, over the
 * replicas in order and then across processes, and writes the sum into every replica. */
enum ncl_status ncl_reduce_gradients(struct ncl_replicas *set);

#endif
