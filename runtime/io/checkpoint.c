/* Checkpoints: the graph's parameters as a safetensors file whose tensors are the PyTorch
 * state_dict of the reference nn.Sequential ("0.0.weight", ...), so that
 * safetensors.torch.load_file + load_state_dict works on it; training state (epoch, step,
 * seed, ...) rides in the file's __metadata__. SGD momentum, when used, goes to a second
 * file beside it so the first stays loadable with strict=True. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph-impl.h"

/* The number of tensors gather() makes: the parameters, and with them the state (running
 * statistics) unless it is the velocity. */
static int gather_count(const struct ncl_graph *g, int velocity)
{
    return g->param_count + (velocity ? 0 : g->state_count);
}

/* Reads every parameter (or velocity) into freshly allocated safetensors entries, then the
 * state (BatchNorm's running statistics, num_batches_tracked as I64) after the parameters. */
static enum ncl_status gather(struct ncl_graph *g, int velocity, struct ncl_st_tensor **out)
{
    struct ncl_st_tensor *t = calloc((size_t)gather_count(g, velocity) + 1, sizeof *t);
    if (!t)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    *out = t;
    for (int i = 0; !velocity && i < g->state_count; i++) {
        const struct ncl_param *p = &g->states[i];
        struct ncl_st_tensor *e = &t[g->param_count + i];
        snprintf(e->name, sizeof e->name, "%s", p->name);
        e->ndim = p->ndim;
        memcpy(e->dims, p->dims, sizeof e->dims);
        e->is_i64 = p->is_i64;
        if (p->is_i64)
            e->data_i64 = malloc(p->count * sizeof(int64_t));
        else
            e->data = malloc(p->count * sizeof(float));
        if (!e->data && !e->data_i64)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        NCL_TRY(ncl_graph_read_state(g, i, p->is_i64 ? (void *)e->data_i64 : (void *)e->data));
    }
    for (int i = 0; i < g->param_count; i++) {
        const struct ncl_param *p = &g->params[i];
        snprintf(t[i].name, sizeof t[i].name, "%s", p->name);
        t[i].ndim = p->ndim;
        memcpy(t[i].dims, p->dims, sizeof t[i].dims);
        t[i].data = malloc(p->count * sizeof(float));
        if (!t[i].data)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        NCL_TRY(velocity ? ncl_graph_read_velocity(g, i, t[i].data) : ncl_graph_read_param(g, i, t[i].data));
    }
    return NCL_OK;
}

static void gather_free(struct ncl_st_tensor *t, int count)
{
    for (int i = 0; t && i < count; i++) {
        free(t[i].data);
        free(t[i].data_i64);
    }
    free(t);
}

void ncl_checkpoint_optimizer_path(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    const char *ext = ".safetensors";
    size_t e = strlen(ext);
    if (n > e && strcmp(path + n - e, ext) == 0)
        snprintf(out, cap, "%.*s.optimizer%s", (int)(n - e), path, ext);
    else
        snprintf(out, cap, "%s.optimizer", path);
}

/* Momentum protocol. The optimizer file is written (atomically) under a ".pending" name
 * first, then the checkpoint, then the pending file is renamed to the optimizer path. A kill
 * at any moment leaves a checkpoint whose momentum (same "step") is in one of the two files,
 * which is what ncl_checkpoint_load looks for. The checkpoint records "momentum_state" = "1" so a
 * lost momentum file is an error, not a silent restart from zero. */
static void pending_path(const char *opt, char *out, size_t cap)
{
    snprintf(out, cap, "%s.pending", opt);
}

enum ncl_status ncl_checkpoint_save(struct ncl_graph *g, const char *path, const char *const *keys,
                                    const char *const *values, int meta_count)
{
    struct ncl_st_tensor *t = NULL;
    enum ncl_status s = NCL_OK;
    char opt[1200], pending[1300];
    ncl_checkpoint_optimizer_path(path, opt, sizeof opt);
    pending_path(opt, pending, sizeof pending);
    if (g->momentum_started) {
        s = gather(g, 1, &t);
        if (s == NCL_OK)
            s = ncl_st_write(pending, t, gather_count(g, 1), keys, values, meta_count);
        gather_free(t, gather_count(g, 1));
        t = NULL;
        NCL_TRY(s);
    }
    const char **k = malloc(((size_t)meta_count + 1) * sizeof *k), **v = malloc(((size_t)meta_count + 1) * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    }
    for (int i = 0; i < meta_count; i++) {
        k[i] = keys[i];
        v[i] = values[i];
    }
    k[meta_count] = "momentum_state";
    v[meta_count] = g->momentum_started ? "1" : "0";
    s = gather(g, 0, &t);
    if (s == NCL_OK)
        s = ncl_st_write(path, t, gather_count(g, 0), k, v, meta_count + 1);
    gather_free(t, gather_count(g, 0));
    free(k);
    free(v);
    if (s == NCL_OK && g->momentum_started && rename(pending, opt) != 0)
        s = ncl_fail(NCL_ERR_IO, "cannot rename %s to %s: %s", pending, opt, strerror(errno));
    return s;
}

enum ncl_status ncl_st_check_finite(const struct ncl_st_file *f, const char *path)
{
    for (int i = 0; i < f->count; i++) {
        const struct ncl_st_tensor *t = &f->tensors[i];
        if (t->is_i64)
            continue;
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= (size_t)t->dims[d];
        for (size_t j = 0; j < n; j++)
            if (!isfinite(t->data[j]))
                return ncl_fail(NCL_ERR_FORMAT, "%s: tensor %s holds %s at element %zu: the checkpoint is damaged",
                                path, t->name, isnan(t->data[j]) ? "NaN" : "infinity", j);
    }
    return NCL_OK;
}

/* One tensor of the model present with its shape and dtype. */
static enum ncl_status check_tensor(const struct ncl_param *p, const struct ncl_st_file *f, const char *path)
{
    const struct ncl_st_tensor *t = ncl_st_find(f, p->name);
    if (!t)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor %s is missing (is it a checkpoint of this model?)", path, p->name);
    if (t->is_i64 != p->is_i64)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor %s has dtype %s, the model needs %s", path, p->name,
                        t->is_i64 ? "I64" : "F32", p->is_i64 ? "I64" : "F32");
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++)
        same = t->dims[d] == p->dims[d];
    if (!same) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < p->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)p->dims[d]);
        for (int d = 0; d < t->ndim && d < 4; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->dims[d]);
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor %s has shape [%s], the model needs [%s]", path, p->name, got,
                        want);
    }
    return NCL_OK;
}

/* Every parameter (and, with_states, every state tensor) present with its shape, nothing extra. */
static enum ncl_status check_tensors(const struct ncl_graph *g, const struct ncl_st_file *f, const char *path,
                                     int with_states)
{
    for (int i = 0; i < g->param_count; i++)
        NCL_TRY(check_tensor(&g->params[i], f, path));
    for (int i = 0; with_states && i < g->state_count; i++)
        NCL_TRY(check_tensor(&g->states[i], f, path));
    for (int i = 0; i < f->count; i++) {
        int known = 0;
        for (int j = 0; j < g->param_count && !known; j++)
            known = strcmp(f->tensors[i].name, g->params[j].name) == 0;
        for (int j = 0; with_states && j < g->state_count && !known; j++)
            known = strcmp(f->tensors[i].name, g->states[j].name) == 0;
        if (!known)
            return ncl_fail(NCL_ERR_FORMAT, "%s: unexpected tensor %s (is it a checkpoint of this model?)", path,
                            f->tensors[i].name);
    }
    return NCL_OK;
}

/* Reads and checks the momentum saved with the checkpoint of `step`: in the optimizer file,
 * or still in its pending file if the save was interrupted after the checkpoint's rename. */
static enum ncl_status read_momentum(const struct ncl_graph *g, const char *path, const char *step,
                                     struct ncl_st_file *out)
{
    char opt[1200], pending[1300];
    ncl_checkpoint_optimizer_path(path, opt, sizeof opt);
    pending_path(opt, pending, sizeof pending);
    const char *candidates[2] = {opt, pending};
    for (int c = 0; c < 2; c++) {
        if (access(candidates[c], F_OK) != 0)
            continue;
        NCL_TRY(ncl_st_read(candidates[c], out));
        const char *ostep = ncl_st_meta(out, "step");
        enum ncl_status s = NCL_OK;
        if (step && ostep && strcmp(step, ostep) == 0) {
            s = check_tensors(g, out, candidates[c], 0);
            if (s == NCL_OK)
                s = ncl_st_check_finite(out, candidates[c]);
            if (s == NCL_OK)
                return NCL_OK;
        }
        ncl_st_free(out);
        memset(out, 0, sizeof *out);
        NCL_TRY(s);   /* else: another step's momentum, try the other file */
    }
    return ncl_fail(NCL_ERR_FORMAT, "%s was saved with SGD momentum, but neither %s nor %s holds the momentum of its "
                                    "step %s",
                    path, opt, pending, step ? step : "?");
}

/* Everything is read and checked before the graph is touched: a failed load leaves it as it was. */
enum ncl_status ncl_checkpoint_load(struct ncl_graph *g, const char *path, struct ncl_st_file *meta)
{
    struct ncl_st_file f = {0}, o = {0};
    NCL_TRY(ncl_st_read(path, &f));
    enum ncl_status s = check_tensors(g, &f, path, 1);
    if (s == NCL_OK)
        s = ncl_st_check_finite(&f, path);
    const char *momentum = ncl_st_meta(&f, "momentum_state");
    int has_momentum = momentum && strcmp(momentum, "1") == 0;
    if (s == NCL_OK && has_momentum)
        s = read_momentum(g, path, ncl_st_meta(&f, "step"), &o);
    for (int i = 0; s == NCL_OK && i < g->param_count; i++)
        s = ncl_graph_write_param(g, i, ncl_st_find(&f, g->params[i].name)->data);
    for (int i = 0; s == NCL_OK && i < g->state_count; i++) {
        const struct ncl_st_tensor *t = ncl_st_find(&f, g->states[i].name);
        s = ncl_graph_write_state(g, i, t->is_i64 ? (const void *)t->data_i64 : (const void *)t->data);
    }
    if (s == NCL_OK) {
        g->momentum_started = 0;
        s = ncl_fill(g, g->velocity_buf, 0, g->param_floats, 0.0f);
    }
    if (s == NCL_OK)
        s = ncl_graph_zero_grads(g);
    for (int i = 0; s == NCL_OK && has_momentum && i < g->param_count; i++)
        s = ncl_graph_write_velocity(g, i, ncl_st_find(&o, g->params[i].name)->data);
    ncl_st_free(&o);
    if (s == NCL_OK && meta)
        *meta = f;
    else
        ncl_st_free(&f);
    return s;
}
