/* A training run's state in its checkpoint's metadata: the recipe, the seed, the data it
 * trains on and where it stands, so that a resumed run continues exactly (shuffling and
 * dropout depend only on the seed, the epoch and the step). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train-impl.h"

void ncl_data_identity(const struct ncl_dataset *train, const struct ncl_dataset *test, char *out, size_t cap)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const struct ncl_dataset *sets[2] = {train, test};
    for (int k = 0; k < 2; k++) {
        size_t pixels = (size_t)sets[k]->count * sets[k]->rows * sets[k]->cols;
        for (size_t i = 0; i < pixels; i++)
            h = (h ^ sets[k]->images[i]) * 0x100000001b3ull;
        for (int64_t i = 0; i < sets[k]->count; i++)
            h = (h ^ sets[k]->labels[i]) * 0x100000001b3ull;
    }
    snprintf(out, cap, "%lld/%lld/%016llx", (long long)train->count, (long long)test->count, (unsigned long long)h);
}

enum ncl_status ncl_train_state_save(struct ncl_graph *g, const char *path, const struct ncl_train_run_id *run,
                                     const struct ncl_train_progress_state *p, const struct ncl_train_history *h)
{
    char v[16][64];
    char *hist = ncl_history_encode(h);
    if (!hist)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory saving %s", path);
    const struct ncl_model_recipe *r = &run->recipe;
    const char *keys[] = {"format", "model", "epochs", "batch", "resize", "lr", "momentum", "weight_decay", "seed",
                          "train_limit", "test_limit", "epoch", "batch_index", "step", "partial_loss",
                          "partial_correct", "partial_count", "partial_seconds", "history", "data"};
    snprintf(v[0], 64, "%d", r->epochs);
    snprintf(v[1], 64, "%d", r->batch);
    snprintf(v[2], 64, "%d", r->input_size);
    snprintf(v[3], 64, "%.9g", r->lr);
    snprintf(v[4], 64, "%.9g", r->momentum);
    snprintf(v[5], 64, "%.9g", r->weight_decay);
    snprintf(v[6], 64, "%llu", (unsigned long long)run->seed);
    snprintf(v[7], 64, "%lld", (long long)run->train_limit);
    snprintf(v[8], 64, "%lld", (long long)run->test_limit);
    snprintf(v[9], 64, "%d", p->epoch);
    snprintf(v[10], 64, "%d", p->batch_index);
    snprintf(v[11], 64, "%llu", (unsigned long long)p->step);
    snprintf(v[12], 64, "%.17g", p->partial_loss);
    snprintf(v[13], 64, "%lld", (long long)p->partial_correct);
    snprintf(v[14], 64, "%lld", (long long)p->partial_count);
    snprintf(v[15], 64, "%.17g", p->partial_seconds);
    const char *values[] = {NCL_TRAIN_FORMAT, run->model, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                            v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], hist, run->data_id};
    enum ncl_status s = ncl_checkpoint_save(g, path, keys, values, (int)(sizeof keys / sizeof keys[0]));
    free(hist);
    return s;
}

/* A metadata value that must be there; the first missing one is reported and sets *bad. */
static const char *meta_need(const struct ncl_st_file *f, const char *key, const char *path, int *bad)
{
    const char *v = ncl_st_meta(f, key);
    if (!v && !*bad) {
        ncl_fail(NCL_ERR_FORMAT, "%s has no '%s' in its metadata: not a nincl training checkpoint", path, key);
        *bad = 1;
    }
    return v ? v : "0";
}

/* A metadata number, parsed strictly (the whole text, within [min, max]); a bad one is reported
 * once, naming the file, the key and the value, and sets *bad. */
static double meta_num(const struct ncl_st_file *f, const char *key, const char *path, double min, double max,
                       int integer, int *bad)
{
    const char *v = meta_need(f, key, path, bad);
    if (*bad)
        return min;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(d) || d < min || d > max || (integer && d != floor(d))) {
        ncl_fail(NCL_ERR_FORMAT, "%s: metadata '%s' is '%.40s', not %s in [%g, %g]: the checkpoint is damaged", path,
                 key, v, integer ? "an integer" : "a number", min, max);
        *bad = 1;
        return min;
    }
    return d;
}

enum ncl_status ncl_train_state_read(const struct ncl_st_file *f, const char *path, struct ncl_train_run_id *run,
                                     struct ncl_train_progress_state *p, struct ncl_train_history *h)
{
    int bad = 0;
    const char *fmt = meta_need(f, "format", path, &bad);
    if (!bad && strcmp(fmt, NCL_TRAIN_FORMAT) != 0)
        return ncl_fail(NCL_ERR_FORMAT, "%s: unknown checkpoint format '%.40s'", path, fmt);
    snprintf(run->model, sizeof run->model, "%s", meta_need(f, "model", path, &bad));
    struct ncl_model_recipe *r = &run->recipe;
    r->epochs = (int)meta_num(f, "epochs", path, 1, NCL_TRAIN_MAX_EPOCHS, 1, &bad);
    r->batch = (int)meta_num(f, "batch", path, 1, 65536, 1, &bad);
    r->input_size = (int)meta_num(f, "resize", path, 1, 4096, 1, &bad);
    r->lr = (float)meta_num(f, "lr", path, 1e-30, 1e6, 0, &bad);
    r->momentum = (float)meta_num(f, "momentum", path, 0, 1, 0, &bad);
    r->weight_decay = (float)meta_num(f, "weight_decay", path, 0, 1, 0, &bad);
    const char *seed = meta_need(f, "seed", path, &bad);
    char *end = NULL;
    errno = 0;
    run->seed = strtoull(seed, &end, 10);
    if (!bad && (!*seed || *end || errno || seed[0] == '-')) {
        ncl_fail(NCL_ERR_FORMAT,
                 "%s: metadata 'seed' is '%.40s', not a non-negative integer: the checkpoint is damaged", path, seed);
        bad = 1;
    }
    run->train_limit = (int64_t)meta_num(f, "train_limit", path, 0, 1e9, 1, &bad);
    run->test_limit = (int64_t)meta_num(f, "test_limit", path, 0, 1e9, 1, &bad);
    p->epoch = (int)meta_num(f, "epoch", path, 0, NCL_TRAIN_MAX_EPOCHS, 1, &bad);
    p->batch_index = (int)meta_num(f, "batch_index", path, 0, 1e9, 1, &bad);
    p->step = (uint64_t)meta_num(f, "step", path, 0, 9e15, 1, &bad);
    p->partial_loss = meta_num(f, "partial_loss", path, 0, 1e300, 0, &bad);
    p->partial_correct = (int64_t)meta_num(f, "partial_correct", path, 0, 1e9, 1, &bad);
    p->partial_count = (int64_t)meta_num(f, "partial_count", path, 0, 1e9, 1, &bad);
    p->partial_seconds = meta_num(f, "partial_seconds", path, 0, 1e12, 0, &bad);
    if (bad)
        return NCL_ERR_FORMAT;
    if (ncl_history_decode(ncl_st_meta(f, "history"), h) || h->count != p->epoch ||
        p->partial_correct > p->partial_count || (p->batch_index == 0 && p->partial_count != 0))
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: inconsistent training metadata (history of %d epochs, epoch %d, batch %d, %lld of %lld "
                        "examples correct)",
                        path, h->count, p->epoch, p->batch_index, (long long)p->partial_correct,
                        (long long)p->partial_count);
    const char *id = ncl_st_meta(f, "data");   /* absent in older checkpoints */
    snprintf(run->data_id, sizeof run->data_id, "%s", id ? id : "");
    return NCL_OK;
}

enum ncl_status ncl_train_state_check_fits(const char *path, const struct ncl_train_run_id *run,
                                           const struct ncl_train_progress_state *p, int64_t ntrain)
{
    int batch = run->recipe.batch;
    int64_t batches = (ntrain + batch - 1) / batch;
    int64_t done = (int64_t)p->batch_index * batch < ntrain ? (int64_t)p->batch_index * batch : ntrain;
    if (p->batch_index > batches || p->partial_count != done ||
        p->step != (uint64_t)p->epoch * (uint64_t)batches + (uint64_t)p->batch_index)
        return ncl_fail(NCL_ERR_ARG,
                        "%s stopped at step %llu (epoch %d, batch %d, %lld examples), which does not fit %lld "
                        "training images in batches of %d: resume with the run's own data",
                        path, (unsigned long long)p->step, p->epoch + 1, p->batch_index, (long long)p->partial_count,
                        (long long)ntrain, batch);
    return NCL_OK;
}
