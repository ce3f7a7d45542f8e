/* The gradient sum of a data parallel step, in buckets overlapped with backward (the pattern of
 * PyTorch DDP's buckets and Horovod's tensor fusion). The parameters lie in the arenas in layer
 * order and backward runs from the last layer down, so the gradients complete from the end of
 * the arena backwards: a bucket is a range of whole layers, and the moment the last of them has
 * its backward enqueued, a non-blocking read of its range follows on the same in-order queue.
 * The host then takes the buckets as they arrive, adds the replicas in order and allreduces the
 * bucket across processes while the device still runs the layers below. Every element is summed
 * in the same order whatever the buckets, so an overlapped run is bit-identical to one that
 * sums everything after backward (one bucket). */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph-impl.h"
#include "replicas-impl.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The arena range of layer l's parameters; 0 when it has none. */
static int layer_range(const struct ncl_graph *g, int l, size_t *lo, size_t *hi)
{
    const struct ncl_layer *layer = &g->layers[l];
    if (layer->nparams == 0)
        return 0;
    *lo = (size_t)-1;
    *hi = 0;
    for (int k = 0; k < layer->nparams; k++) {
        const struct ncl_param *p = layer_param(layer, k);
        if (p->offset < *lo)
            *lo = p->offset;
        if (p->offset + p->count > *hi)
            *hi = p->offset + p->count;
    }
    return 1;
}

/* Buckets of at least cap_floats (the last may be smaller) from the output side down; one for
 * the whole arena when cap_floats is 0 or the layers' ranges do not tile the arena downwards. */
static enum ncl_status plan_buckets(struct ncl_replicas *set, const struct ncl_graph *g, size_t cap_floats)
{
    int cap = g->layer_count > 0 ? g->layer_count : 1;
    set->buckets = calloc((size_t)cap, sizeof *set->buckets);
    if (!set->buckets)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the gradient buckets");
    int n = 0, tiled = 1;
    size_t top = g->param_floats;   /* where the next (lower) layer's range must end */
    struct ncl_bucket open = {top, top, 0};
    for (int l = g->layer_count - 1; cap_floats && tiled && l >= 0; l--) {
        size_t lo, hi;
        if (!layer_range(g, l, &lo, &hi))
            continue;
        if (hi != top || hi - lo > g->param_floats) {
            tiled = 0;
            break;
        }
        top = open.lo = lo;
        open.last_layer = l;
        if (open.hi - open.lo >= cap_floats) {
            set->buckets[n++] = open;
            open = (struct ncl_bucket){lo, lo, 0};
        }
    }
    if (open.hi > open.lo)
        set->buckets[n++] = open;
    if (!cap_floats || !tiled || top != 0 || n == 0) {
        set->buckets[0] = (struct ncl_bucket){0, g->param_floats, 0};
        n = 1;
    }
    set->bucket_count = n;
    return NCL_OK;
}

enum ncl_status ncl_reduce_setup(struct ncl_replicas *set, size_t cap_floats)
{
    NCL_TRY(plan_buckets(set, set->r[0].g, cap_floats));
    set->host = calloc((size_t)set->count, sizeof *set->host);
    set->ready = calloc((size_t)set->count * (size_t)set->bucket_count, sizeof *set->ready);
    if (!set->host || !set->ready)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the gradient reduction");
    for (int i = 0; i < set->count; i++)
        if (!(set->host[i] = malloc(set->floats * sizeof(float))))
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the gradient reduction (%zu MiB a replica)",
                            set->floats * sizeof(float) >> 20);
    return NCL_OK;
}

static void release_events(struct ncl_replicas *set)
{
    for (int k = 0; set->ready && k < set->count * set->bucket_count; k++)
        if (set->ready[k]) {
            clReleaseEvent(set->ready[k]);
            set->ready[k] = NULL;
        }
}

void ncl_reduce_free(struct ncl_replicas *set)
{
    release_events(set);
    for (int i = 0; set->host && i < set->count; i++)
        free(set->host[i]);
    free(set->host);
    free(set->ready);
    free(set->buckets);
    set->host = NULL;
    set->ready = NULL;
    set->buckets = NULL;
}

struct read_hook {
    struct ncl_replicas *set;
    int replica;
};

/* After layer `layer`'s backward: the read of the bucket it completes, if any. */
static enum ncl_status read_ready_bucket(void *user, int layer)
{
    struct read_hook *h = user;
    struct ncl_replicas *set = h->set;
    struct ncl_graph *g = set->r[h->replica].g;
    for (int b = 0; b < set->bucket_count; b++) {
        const struct ncl_bucket *k = &set->buckets[b];
        if (k->last_layer != layer)
            continue;
        cl_event *ev = &set->ready[h->replica * set->bucket_count + b];
        NCL_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, g->grad_buf, CL_FALSE, k->lo * sizeof(float),
                                       (k->hi - k->lo) * sizeof(float), set->host[h->replica] + k->lo, 0, NULL, ev),
                   "reading the gradients");
        /* submitted now, not when the queue is next flushed: the host waits for it first */
        NCL_CL_TRY(clFlush(g->ctx->queue), "submitting the gradient read");
    }
    return NCL_OK;
}

enum ncl_status ncl_reduce_backward(struct ncl_replicas *set, int i)
{
    struct read_hook h = {set, i};
    return ncl_graph_backward_each(set->r[i].g, set->r[i].count, read_ready_bucket, &h);
}

/* Waits for every replica's read of bucket b. */
static enum ncl_status wait_bucket(struct ncl_replicas *set, int b)
{
    for (int i = 0; i < set->count; i++) {
        cl_event *ev = &set->ready[i * set->bucket_count + b];
        if (!*ev)
            continue;
        cl_int err = clWaitForEvents(1, ev);
        clReleaseEvent(*ev);
        *ev = NULL;
        NCL_CL_TRY(err, "reading the gradients");
    }
    return NCL_OK;
}

/* Bucket b summed over this process's replicas, in replica order, into host[0]. A replica with
 * no images this step (a last batch smaller than the replica count) adds nothing. */
static void add_bucket(struct ncl_replicas *set, int b)
{
    const struct ncl_bucket *k = &set->buckets[b];
    float *sum = set->host[0] + k->lo;
    size_t n = k->hi - k->lo;
    int have = 0;
    for (int i = 0; i < set->count; i++) {
        if (set->r[i].count == 0)
            continue;
        const float *part = set->host[i] + k->lo;
        if (!have && i > 0)
            memcpy(sum, part, n * sizeof *sum);
        for (size_t e = 0; have && e < n; e++)
            sum[e] += part[e];
        have = 1;
    }
    if (!have)
        memset(sum, 0, n * sizeof *sum);
}

/* Whether some replica's read of bucket b is still to come: its device is still in backward. */
static int still_running(const struct ncl_replicas *set, int b)
{
    for (int i = 0; i < set->count; i++) {
        cl_event ev = set->ready[i * set->bucket_count + b];
        cl_int status = CL_COMPLETE;
        if (ev && clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL) == CL_SUCCESS &&
            status > CL_COMPLETE)
            return 1;
    }
    return 0;
}

enum ncl_status ncl_reduce_gradients(struct ncl_replicas *set)
{
    double t0 = now_seconds(), summing = 0, overlapped = 0;
    enum ncl_status s = NCL_OK;
    for (int b = 0; s == NCL_OK && b < set->bucket_count; b++) {
        s = wait_bucket(set, b);   /* the devices getting there */
        double t = now_seconds();
        if (s == NCL_OK)
            add_bucket(set, b);
        if (s == NCL_OK)
            s = ncl_dist_sum_floats(set->dist, set->host[0] + set->buckets[b].lo,
                                    set->buckets[b].hi - set->buckets[b].lo);
        double took = now_seconds() - t;
        summing += took;
        /* overlapped only if a device was still in backward all along (conservative: a sum
           during which the devices finished counts as exposed) */
        if (b + 1 < set->bucket_count && still_running(set, b + 1))
            overlapped += took;
    }
    release_events(set);   /* after a failure, reads may be left */
    NCL_TRY(s);
    double t = now_seconds();
    for (int i = 0; i < set->count; i++) {
        struct ncl_graph *g = set->r[i].g;
        /* blocking: the next step's first read may overwrite host[0] before a queued write has run */
        NCL_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->grad_buf, CL_TRUE, 0, set->floats * sizeof(float),
                                        set->host[0], 0, NULL, NULL),
                   "writing the summed gradients");
    }
    double end = now_seconds();
    summing += end - t;
    /* the step's wall time from here = compute + summing - overlapped */
    set->compute_s += end - t0 - (summing - overlapped);
    set->reduce_s += summing;
    set->overlap_s += overlapped;
    set->steps++;
    return NCL_OK;
}
