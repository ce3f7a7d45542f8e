/* Data parallel training across the devices of this process and the processes of an MPI run
 * (the pattern of PyTorch DDP and Horovod): replicas start from identical parameters, each
 * runs its slice of the same global batch (ncl_graph_set_batch_slice: the masks and the loss
 * scale of the whole batch), the gradients are summed in a fixed order, and every replica
 * applies the same SGD step. The sum of N slices' gradients is one device's gradient up to the
 * order of float additions, so N replicas follow one device's trajectory. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
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

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

enum ncl_status ncl_device_list_parse(const char *list, struct ncl_device_pick **out, int *count)
{
    *out = NULL;
    *count = 0;
    if (!list || !*list)
        return ncl_fail(NCL_ERR_ARG, "the device list is empty");
    struct ncl_device_pick *picks = NULL;
    int n = 0;
    for (const char *s = list; ; s++) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        struct ncl_device_info *all = NULL;
        int add = 1;
        if (len == 0 || len >= sizeof picks->device) {
            free(picks);
            return ncl_fail(NCL_ERR_ARG, "device list '%s': entry %d is %s", list, n + 1,
                            len ? "too long" : "empty");
        }
        if (len == 3 && strncmp(s, "all", 3) == 0) {
            enum ncl_status st = ncl_device_list(&all, &add);
            if (st != NCL_OK) {
                free(picks);
                return st;
            }
        }
        struct ncl_device_pick *grown = realloc(picks, (size_t)(n + add) * sizeof *grown);
        if (!grown) {
            free(all);
            free(picks);
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the device list");
        }
        picks = grown;
        memset(picks + n, 0, (size_t)add * sizeof *picks);
        const char *colon = memchr(s, ':', len);
        if (all) {
            for (int i = 0; i < add; i++) {
                snprintf(picks[n + i].platform, sizeof picks->platform, "%d", all[i].platform_index);
                snprintf(picks[n + i].device, sizeof picks->device, "%d", all[i].device_index);
            }
            free(all);
        } else if (colon && all_digits(s, (size_t)(colon - s)) && all_digits(colon + 1, len - (size_t)(colon - s) - 1)) {
            snprintf(picks[n].platform, sizeof picks->platform, "%.*s", (int)(colon - s), s);
            snprintf(picks[n].device, sizeof picks->device, "%.*s", (int)(len - (size_t)(colon - s) - 1), colon + 1);
        } else {
            snprintf(picks[n].device, sizeof picks->device, "%.*s", (int)len, s);
        }
        n += add;
        if (!end)
            break;
        s = end;
    }
    if (n == 0) {
        free(picks);
        return ncl_fail(NCL_ERR_NO_DEVICE, "device list '%s': 'all' found no OpenCL device", list);
    }
    *out = picks;
    *count = n;
    return NCL_OK;
}

void ncl_replicas_free(struct ncl_replicas *set)
{
    for (int i = 0; set->r && i < set->count; i++) {
        ncl_device_data_free(set->r[i].train_dd);
        ncl_graph_free(set->r[i].g);
        ncl_ctx_free(set->r[i].ctx);
    }
    ncl_reduce_free(set);
    free(set->r);
    free(set->shares);
    memset(set, 0, sizeof *set);
}

/* Replica k's slice of n images: by cumulative shares, so the slices tile 0..n. */
static int slice_start(const struct ncl_replicas *set, int k, int n)
{
    double cum = 0;
    for (int i = 0; i < k; i++)
        cum += set->shares[i];
    int at = k == set->total ? n : (int)floor(cum * n + 1e-9);
    return at > n ? n : at;
}

/* Replicas that share a device must fit its memory together. */
static enum ncl_status check_shared_memory(const struct ncl_replicas *set)
{
    for (int i = 0; i < set->count; i++) {
        const struct ncl_device_info *d = ncl_ctx_device(set->r[i].ctx);
        uint64_t need = 0;
        int same = 0, first = 1;
        for (int j = 0; j < set->count; j++) {
            const struct ncl_device_info *e = ncl_ctx_device(set->r[j].ctx);
            if (e->platform_index != d->platform_index || e->device_index != d->device_index)
                continue;
            first &= j >= i;
            same++;
            need += ncl_graph_device_bytes(set->r[j].g) + ncl_ctx_device_bytes(set->r[j].ctx);
        }
        if (first && same > 1 && need > d->global_mem_bytes)
            return ncl_fail(NCL_ERR_ARG,
                            "device %d:%d (%s) is listed %d times: %d replicas need %.1f MiB, it has %.1f MiB", 
                            d->platform_index, d->device_index, d->name, same, same, need / 1048576.0,
                            d->global_mem_bytes / 1048576.0);
    }
    return NCL_OK;
}

/* --split auto: each replica's time for two training steps of an even slice, gathered from
 * every process; shares in proportion to speed, none for a replica under 5% of the total. */
static enum ncl_status measure_shares(struct ncl_replicas *set, int batch)
{
    double *mine = calloc((size_t)set->count, sizeof *mine), *speed = calloc((size_t)set->total, sizeof *speed);
    int32_t *order = malloc((size_t)batch * sizeof *order);
    enum ncl_status s = mine && speed && order ? NCL_OK : ncl_fail(NCL_ERR_NO_MEMORY, "out of memory");
    int slice = (batch + set->total - 1) / set->total;
    for (int i = 0; s == NCL_OK && i < batch; i++)
        order[i] = i;
    for (int i = 0; s == NCL_OK && i < set->count; i++) {
        struct ncl_replica *r = &set->r[i];
        s = ncl_device_data_set_order(r->train_dd, order, batch);
        double t0 = 0;
        for (int rep = 0; s == NCL_OK && rep < 3; rep++) {   /* the first compiles kernels: not timed */
            if (rep == 1)
                t0 = now_seconds();
            if ((s = ncl_graph_load_batch(r->g, r->train_dd, 0, slice)) == NCL_OK &&
                (s = ncl_graph_forward(r->g, slice, NCL_MODE_TRAIN, 0)) == NCL_OK &&
                (s = ncl_graph_loss(r->g, slice)) == NCL_OK && (s = ncl_graph_backward(r->g, slice)) == NCL_OK)
                s = ncl_ctx_finish(r->ctx);
        }
        mine[i] = s == NCL_OK ? slice * 2 / (now_seconds() - t0) : 0;
        if (s == NCL_OK)
            s = ncl_graph_zero_grads(r->g);
        if (s == NCL_OK)
            s = ncl_graph_read_metrics(r->g, NULL, 1);
    }
    /* every process's speeds: its own in its replicas' places, zeros elsewhere, then summed */
    for (int i = 0; s == NCL_OK && i < set->count; i++)
        speed[set->first + i] = mine[i];
    if (s == NCL_OK)
        s = ncl_dist_sum_doubles(set->dist, speed, (size_t)set->total);
    double total = 0;
    for (int k = 0; s == NCL_OK && k < set->total; k++)
        total += speed[k];
    for (int pass = 0; s == NCL_OK && pass < 2; pass++) {   /* drop the slow ones, then renormalise */
        double kept = 0;
        for (int k = 0; k < set->total; k++) {
            if (pass == 1 && speed[k] < 0.05 * total)
                speed[k] = 0;
            kept += speed[k];
        }
        for (int k = 0; k < set->total; k++)
            set->shares[k] = speed[k] / kept;
    }
    free(mine);
    free(speed);
    free(order);
    return s;
}

/* Rank 0's bucket size in floats, 0 when the sum does not overlap backward: by default only
 * where every replica is a GPU or accelerator, whose host thread idles while it computes (on
 * a CPU device the host's cores are the device, and an MPI rank waiting in an allreduce spins). */
static enum ncl_status choose_buckets(const struct ncl_replicas *set, const struct ncl_replicas_params *p,
                                      double *cap_floats)
{
    int on = p->overlap && strcmp(p->overlap, "on") == 0;
    if (!p->overlap || strcmp(p->overlap, "auto") == 0) {
        on = 1;
        for (int i = 0; i < set->count; i++)
            on &= strcmp(ncl_ctx_device(set->r[i].ctx)->type, "CPU") != 0;
    }
    *cap_floats = on ? (p->bucket_mb > 0 ? p->bucket_mb : NCL_BUCKET_MB_DEFAULT) * 1048576.0 / sizeof(float) : 0;
    return ncl_dist_broadcast(set->dist, cap_floats, sizeof *cap_floats);
}

enum ncl_status ncl_replicas_create(const struct ncl_device_pick *picks, int count,
                                    const struct ncl_ctx_params *base, const struct ncl_dist *dist,
                                    const struct ncl_replicas_params *p, const struct ncl_dataset *train,
                                    struct ncl_replicas *out)
{
    memset(out, 0, sizeof *out);
    const char *split = p->split;
    struct ncl_shape input = p->input;
    int autosplit = split && strcmp(split, "auto") == 0;
    if (split && !autosplit && strcmp(split, "even") != 0)
        return ncl_fail(NCL_ERR_ARG, "unknown split '%s' (choose even or auto)", split);
    if (p->overlap && strcmp(p->overlap, "on") && strcmp(p->overlap, "off") && strcmp(p->overlap, "auto"))
        return ncl_fail(NCL_ERR_ARG, "unknown overlap '%s' (choose on, off or auto)", p->overlap);
    if (!(p->bucket_mb >= 0 && p->bucket_mb <= 4096))
        return ncl_fail(NCL_ERR_ARG, "a gradient bucket of %g MiB: give 0 (the default) up to 4096", p->bucket_mb);
    int local = picks ? count : 1;
    out->dist = dist;
    out->count = local;
    /* every process has the same number of replicas (checked below), in rank order */
    int *counts = calloc((size_t)dist->size, sizeof *counts);
    out->r = calloc((size_t)local, sizeof *out->r);
    if (!counts || !out->r) {
        free(counts);
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for %d replicas", local);
    }
    enum ncl_status s = ncl_dist_gather_all(dist, &local, counts, sizeof local);
    for (int k = 0; s == NCL_OK && k < dist->size; k++) {
        if (k < dist->rank)
            out->first += counts[k];
        out->total += counts[k];
    }
    free(counts);
    NCL_TRY(s);
    if (input.n < out->total)
        return ncl_fail(NCL_ERR_ARG, "a batch of %d cannot be split between %d replicas", input.n, out->total);
    out->shares = calloc((size_t)out->total, sizeof *out->shares);
    if (!out->shares)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory");
    for (int k = 0; k < out->total; k++)
        out->shares[k] = 1.0 / out->total;
    /* the largest slice an even split gives; auto may give any replica the whole batch */
    struct ncl_shape max = input;
    if (!autosplit)
        max.n = (input.n + out->total - 1) / out->total;
    for (int i = 0; i < local; i++) {
        struct ncl_replica *r = &out->r[i];
        struct ncl_ctx_params cp = *base;
        if (picks) {
            cp.platform = picks[i].platform[0] ? picks[i].platform : NULL;
            cp.device = picks[i].device;
        }
        if ((s = ncl_ctx_create(&cp, &r->ctx)) != NCL_OK)
            return picks ? ncl_fail_prefix(s, "replica %d (device '%s%s%s')", out->first + i, picks[i].platform,
                                           picks[i].platform[0] ? ":" : "", picks[i].device)
                         : s;
        NCL_TRY(ncl_model_build(r->ctx, p->model, max, &r->g));
        ncl_graph_set_seed(r->g, p->seed);
        NCL_TRY(ncl_device_data_create(r->ctx, train, &r->train_dd));
    }
    NCL_TRY(check_shared_memory(out));
    for (int i = 0; i < local; i++) {
        out->r[i].turn_after = -1;
        for (int j = 0; j < i; j++) {
            const struct ncl_device_info *a = ncl_ctx_device(out->r[i].ctx), *b = ncl_ctx_device(out->r[j].ctx);
            if (a->platform_index == b->platform_index && a->device_index == b->device_index)
                out->r[i].turn_after = j;
        }
        out->shared_device |= out->r[i].turn_after >= 0;
    }
    out->floats = out->r[0].g->param_floats;
    if (out->total > 1) {
        double cap = 0;
        NCL_TRY(choose_buckets(out, p, &cap));
        NCL_TRY(ncl_reduce_setup(out, (size_t)cap));
    }
    if (autosplit && out->total > 1)
        NCL_TRY(measure_shares(out, input.n));
    return NCL_OK;
}

/* Copies replica 0's arena (parameters or momentum) to the other local replicas and, from rank
 * 0, to every process. */
static enum ncl_status sync_arena(struct ncl_replicas *set, int velocity)
{
    float *host = malloc(set->floats * sizeof *host);
    if (!host)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory");
    struct ncl_graph *g0 = set->r[0].g;
    cl_mem b0 = velocity ? g0->velocity_buf : g0->param_buf;
    cl_int err = clEnqueueReadBuffer(g0->ctx->queue, b0, CL_TRUE, 0, set->floats * sizeof *host, host, 0, NULL, NULL);
    enum ncl_status s = err == CL_SUCCESS ? NCL_OK : ncl_cl_fail(err, "reading the parameters");
    if (s == NCL_OK)
        s = ncl_dist_broadcast(set->dist, host, set->floats * sizeof *host);
    for (int i = set->dist->rank == 0 ? 1 : 0; s == NCL_OK && i < set->count; i++) {
        struct ncl_graph *g = set->r[i].g;
        err = clEnqueueWriteBuffer(g->ctx->queue, velocity ? g->velocity_buf : g->param_buf, CL_TRUE, 0,
                                   set->floats * sizeof *host, host, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            s = ncl_cl_fail(err, "writing the parameters");
    }
    free(host);
    return s;
}

enum ncl_status ncl_replicas_sync_params(struct ncl_replicas *set)
{
    if (set->total == 1)
        return NCL_OK;
    int started = set->r[0].g->momentum_started;
    NCL_TRY(ncl_dist_broadcast(set->dist, &started, sizeof started));
    NCL_TRY(sync_arena(set, 0));
    if (started)
        NCL_TRY(sync_arena(set, 1));
    for (int i = 0; i < set->count; i++)
        set->r[i].g->momentum_started = started;
    return NCL_OK;
}

enum ncl_status ncl_replicas_set_order(struct ncl_replicas *set, const int32_t *order, int64_t count)
{
    for (int i = 0; i < set->count; i++)
        NCL_TRY(ncl_device_data_set_order(set->r[i].train_dd, order, count));
    return NCL_OK;
}

enum ncl_status ncl_replicas_step(struct ncl_replicas *set, int64_t first, int n, uint64_t step,
                                  const struct ncl_sgd_params *sgd)
{
    for (int i = 0; i < set->count; i++) {
        struct ncl_replica *r = &set->r[i];
        int k = set->first + i;
        /* Replicas sharing a device take turns: PoCL 3.1 running two contexts' kernels at once on
         * one device can abort in its kernel cache ("pocl_release_dlhandle_cache: Assertion
         * `found->ref_count > 0' failed", seen once in CI's sanitizer run under load). On one
         * device the turns cost little: each kernel already uses all of it. */
        if (r->turn_after >= 0)
            NCL_TRY(ncl_ctx_finish(set->r[r->turn_after].ctx));
        r->offset = set->total > 1 ? slice_start(set, k, n) : 0;
        r->count = set->total > 1 ? slice_start(set, k + 1, n) - r->offset : n;
        if (r->count == 0)   /* a slice of nothing: it adds nothing to the sum */
            continue;
        NCL_TRY(ncl_graph_set_batch_slice(r->g, set->total > 1 ? r->offset : 0, set->total > 1 ? n : 0));
        NCL_TRY(ncl_graph_load_batch(r->g, r->train_dd, first + r->offset, r->count));
        NCL_TRY(ncl_graph_forward(r->g, r->count, NCL_MODE_TRAIN, step));
        NCL_TRY(ncl_graph_loss(r->g, r->count));
        NCL_TRY(set->total > 1 ? ncl_reduce_backward(set, i) : ncl_graph_backward(r->g, r->count));
        NCL_TRY(ncl_graph_set_batch_slice(r->g, 0, 0));   /* evaluation runs whole batches */
    }
    if (set->total > 1)
        NCL_TRY(ncl_reduce_gradients(set));
    for (int i = 0; i < set->count; i++) {
        if (set->r[i].turn_after >= 0)
            NCL_TRY(ncl_ctx_finish(set->r[set->r[i].turn_after].ctx));
        NCL_TRY(ncl_graph_sgd_step(set->r[i].g, sgd));
        NCL_TRY(ncl_ctx_throttle(set->r[i].ctx, 2));
    }
    if (set->shared_device)   /* the next step's first forward must not meet this step's SGD */
        NCL_TRY(ncl_replicas_finish(set));
    return NCL_OK;
}

enum ncl_status ncl_replicas_read_metrics(struct ncl_replicas *set, struct ncl_metrics *m, int reset)
{
    double sum[3] = {0, 0, 0};
    for (int i = 0; i < set->count; i++) {
        struct ncl_metrics one = {0};
        NCL_TRY(ncl_graph_read_metrics(set->r[i].g, m ? &one : NULL, reset));
        sum[0] += one.loss_sum;
        sum[1] += (double)one.correct;
        sum[2] += (double)one.count;
    }
    if (m) {
        NCL_TRY(ncl_dist_sum_doubles(set->dist, sum, 3));
        m->loss_sum = sum[0];
        m->correct = (int64_t)sum[1];
        m->count = (int64_t)sum[2];
    }
    return NCL_OK;
}

static uint64_t fnv1a(const void *data, size_t bytes)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The first tensor of g whose floats differ between a and b. */
static const char *first_difference(const struct ncl_graph *g, const float *a, const float *b)
{
    for (int t = 0; t < g->param_count; t++)
        if (memcmp(a + g->params[t].offset, b + g->params[t].offset, g->params[t].count * sizeof *a) != 0)
            return g->params[t].name;
    return "?";
}

enum ncl_status ncl_replicas_check_identical(struct ncl_replicas *set)
{
    if (set->total == 1)
        return NCL_OK;
    size_t bytes = set->floats * sizeof(float);
    float *ref = set->host[0], *other = set->count > 1 ? set->host[1] : NULL;   /* free between steps */
    for (int i = 0; i < set->count; i++) {
        struct ncl_graph *g = set->r[i].g;
        NCL_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, g->param_buf, CL_TRUE, 0, bytes, i ? other : ref, 0, NULL,
                                       NULL),
                   "reading the parameters");
        if (i && memcmp(ref, other, bytes) != 0)
            return ncl_fail(NCL_ERR_NUMERIC, "replica %d's parameters differ from replica %d's (tensor %s)",
                            set->first + i, set->first, first_difference(g, ref, other));
    }
    uint64_t mine = fnv1a(ref, bytes), *all = malloc((size_t)set->dist->size * sizeof *all);
    if (!all)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory");
    enum ncl_status s = ncl_dist_gather_all(set->dist, &mine, all, sizeof mine);
    for (int k = 1; s == NCL_OK && k < set->dist->size; k++)
        if (all[k] != all[0])
            s = ncl_fail(NCL_ERR_NUMERIC, "rank %d's parameters differ from rank 0's (checksum %016llx, rank 0 %016llx)",
                         k, (unsigned long long)all[k], (unsigned long long)all[0]);
    free(all);
    return s;
}

enum ncl_status ncl_replicas_finish(struct ncl_replicas *set)
{
    for (int i = 0; i < set->count; i++)
        NCL_TRY(ncl_ctx_finish(set->r[i].ctx));
    return NCL_OK;
}
