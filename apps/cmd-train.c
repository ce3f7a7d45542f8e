/* nincl train: the d2l recipe (train_ch6) on Fashion-MNIST, with progress, metrics.csv,
 * curves.svg and safetensors checkpoints every epoch and on Ctrl-C; --resume continues a run
 * exactly (shuffling and dropout depend only on the seed, the epoch and the step). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "run-util.h"

#define MAX_EPOCHS 10000

struct recipe {
    const char *model;
    int epochs, batch, resize;
    float lr, momentum, weight_decay;
    uint64_t seed;
    int train_limit, test_limit;
};

/* Where a run stands; saved in the checkpoint's metadata. */
struct progress {
    int epoch;                  /* completed epochs */
    int batch_index;            /* batches done in the current epoch */
    uint64_t step;              /* optimizer steps so far */
    double partial_loss, partial_seconds;   /* the current epoch's metrics before an interruption */
    int64_t partial_correct, partial_count;
};

struct history {
    int count;
    double *loss, *train_acc, *test_acc, *speed, *seconds;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int history_add(struct history *h, double loss, double train_acc, double test_acc, double speed,
                       double seconds)
{
    double **cols[5] = {&h->loss, &h->train_acc, &h->test_acc, &h->speed, &h->seconds};
    double vals[5] = {loss, train_acc, test_acc, speed, seconds};
    for (int i = 0; i < 5; i++) {
        double *p = realloc(*cols[i], (size_t)(h->count + 1) * sizeof *p);
        if (!p)
            return -1;
        p[h->count] = vals[i];
        *cols[i] = p;
    }
    h->count++;
    return 0;
}

static void history_free(struct history *h)
{
    free(h->loss);
    free(h->train_acc);
    free(h->test_acc);
    free(h->speed);
    free(h->seconds);
}

/* "loss,train_acc,test_acc,speed,seconds;..." with %.17g so a resumed run rewrites metrics.csv
 * with exactly the numbers the original printed. */
static char *history_encode(const struct history *h)
{
    size_t cap = 32 + (size_t)h->count * 5 * 26;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = 0;
    s[0] = 0;
    for (int i = 0; i < h->count; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%.17g,%.17g,%.17g,%.17g,%.17g", i ? ";" : "", h->loss[i],
                              h->train_acc[i], h->test_acc[i], h->speed[i], h->seconds[i]);
    return s;
}

static int history_decode(const char *s, struct history *h)
{
    while (s && *s) {
        double v[5];
        int used = 0;
        if (sscanf(s, "%lf,%lf,%lf,%lf,%lf%n", &v[0], &v[1], &v[2], &v[3], &v[4], &used) != 5)
            return -1;
        if (history_add(h, v[0], v[1], v[2], v[3], v[4]))
            return -1;
        s += used;
        if (*s == ';')
            s++;
    }
    return 0;
}

static int write_metrics(const char *dir, const struct history *h, int epochs_total)
{
    size_t cap = 128 + (size_t)h->count * 128;
    char *csv = malloc(cap), path[4200];
    if (!csv)
        return -1;
    size_t n = (size_t)snprintf(csv, cap, "epoch,train_loss,train_acc,test_acc,examples_per_sec,train_seconds\n");
    for (int i = 0; i < h->count; i++)
        n += (size_t)snprintf(csv + n, cap - n, "%d,%.6f,%.6f,%.6f,%.1f,%.3f\n", i + 1, h->loss[i], h->train_acc[i],
                              h->test_acc[i], h->speed[i], h->seconds[i]);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    int rc = write_file_atomic(path, csv, n);
    free(csv);
    snprintf(path, sizeof path, "%s/curves.svg", dir);
    return rc | write_curves_svg(path, epochs_total, h->count, h->loss, h->train_acc, h->test_acc);
}

/* "<train count>/<test count>/<FNV-1a 64 of images and labels>": a resumed run must see the very
 * data it started on (the checksum of Fashion-MNIST takes a few tens of milliseconds). */
static void data_identity(const struct ncl_dataset *train, const struct ncl_dataset *test, char *out, size_t cap)
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

/* Saves DIR/checkpoint.safetensors with the recipe and the progress in its metadata. */
static enum ncl_status save_checkpoint(struct ncl_graph *g, const char *dir, const struct recipe *r,
                                       const struct progress *p, const struct history *h, const char *data_id)
{
    char path[4200], v[16][64];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    char *hist = history_encode(h);
    if (!hist)
        return NCL_ERR_NO_MEMORY;
    const char *keys[] = {"format", "model", "epochs", "batch", "resize", "lr", "momentum", "weight_decay", "seed",
                          "train_limit", "test_limit", "epoch", "batch_index", "step", "partial_loss",
                          "partial_correct", "partial_count", "partial_seconds", "history", "data"};
    snprintf(v[0], 64, "%d", r->epochs);
    snprintf(v[1], 64, "%d", r->batch);
    snprintf(v[2], 64, "%d", r->resize);
    snprintf(v[3], 64, "%.9g", r->lr);
    snprintf(v[4], 64, "%.9g", r->momentum);
    snprintf(v[5], 64, "%.9g", r->weight_decay);
    snprintf(v[6], 64, "%llu", (unsigned long long)r->seed);
    snprintf(v[7], 64, "%d", r->train_limit);
    snprintf(v[8], 64, "%d", r->test_limit);
    snprintf(v[9], 64, "%d", p->epoch);
    snprintf(v[10], 64, "%d", p->batch_index);
    snprintf(v[11], 64, "%llu", (unsigned long long)p->step);
    snprintf(v[12], 64, "%.17g", p->partial_loss);
    snprintf(v[13], 64, "%lld", (long long)p->partial_correct);
    snprintf(v[14], 64, "%lld", (long long)p->partial_count);
    snprintf(v[15], 64, "%.17g", p->partial_seconds);
    const char *values[] = {"nincl-train-1", r->model, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                            v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], hist, data_id};
    enum ncl_status s = ncl_checkpoint_save(g, path, keys, values, (int)(sizeof keys / sizeof keys[0]));
    free(hist);
    return s;
}

static const char *meta_need(const struct ncl_st_file *f, const char *key, const char *path, int *bad)
{
    const char *v = ncl_st_meta(f, key);
    if (!v && !*bad) {
        fprintf(stderr, "nincl train: %s has no '%s' in its metadata: not a nincl training checkpoint\n", path, key);
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
        fprintf(stderr, "nincl train: %s: metadata '%s' is '%.40s', not %s in [%g, %g]: the checkpoint is damaged\n",
                path, key, v, integer ? "an integer" : "a number", min, max);
        *bad = 1;
        return min;
    }
    return d;
}

/* Reads the recipe and progress of a run from its checkpoint's metadata, checking every value. */
static int read_resume_meta(const struct ncl_st_file *f, const char *path, struct recipe *r, struct progress *p,
                            struct history *h, char *model, size_t model_cap)
{
    int bad = 0;
    const char *fmt = meta_need(f, "format", path, &bad);
    if (!bad && strcmp(fmt, "nincl-train-1") != 0) {
        fprintf(stderr, "nincl train: %s: unknown checkpoint format '%s'\n", path, fmt);
        return EXIT_USAGE;
    }
    snprintf(model, model_cap, "%s", meta_need(f, "model", path, &bad));
    r->model = model;
    int epochs = (int)meta_num(f, "epochs", path, 1, MAX_EPOCHS, 1, &bad);
    r->batch = (int)meta_num(f, "batch", path, 1, 65536, 1, &bad);
    r->resize = (int)meta_num(f, "resize", path, 1, 4096, 1, &bad);
    r->lr = (float)meta_num(f, "lr", path, 1e-30, 1e6, 0, &bad);
    r->momentum = (float)meta_num(f, "momentum", path, 0, 1, 0, &bad);
    r->weight_decay = (float)meta_num(f, "weight_decay", path, 0, 1, 0, &bad);
    const char *seed = meta_need(f, "seed", path, &bad);
    char *end = NULL;
    errno = 0;
    r->seed = strtoull(seed, &end, 10);
    if (!bad && (!*seed || *end || errno || seed[0] == '-')) {
        fprintf(stderr, "nincl train: %s: metadata 'seed' is '%.40s', not a non-negative integer: the checkpoint is "
                        "damaged\n",
                path, seed);
        bad = 1;
    }
    r->train_limit = (int)meta_num(f, "train_limit", path, 0, 1e9, 1, &bad);
    r->test_limit = (int)meta_num(f, "test_limit", path, 0, 1e9, 1, &bad);
    p->epoch = (int)meta_num(f, "epoch", path, 0, MAX_EPOCHS, 1, &bad);
    p->batch_index = (int)meta_num(f, "batch_index", path, 0, 1e9, 1, &bad);
    p->step = (uint64_t)meta_num(f, "step", path, 0, 9e15, 1, &bad);
    p->partial_loss = meta_num(f, "partial_loss", path, 0, 1e300, 0, &bad);
    p->partial_correct = (int64_t)meta_num(f, "partial_correct", path, 0, 1e9, 1, &bad);
    p->partial_count = (int64_t)meta_num(f, "partial_count", path, 0, 1e9, 1, &bad);
    p->partial_seconds = meta_num(f, "partial_seconds", path, 0, 1e12, 0, &bad);
    if (bad)
        return EXIT_USAGE;
    if (history_decode(ncl_st_meta(f, "history"), h) || h->count != p->epoch ||
        p->partial_correct > p->partial_count || (p->batch_index == 0 && p->partial_count != 0)) {
        fprintf(stderr, "nincl train: %s: inconsistent training metadata (history of %d epochs, epoch %d, batch %d, "
                        "%lld of %lld examples correct)\n",
                path, h->count, p->epoch, p->batch_index, (long long)p->partial_correct, (long long)p->partial_count);
        return EXIT_USAGE;
    }
    if (r->epochs == 0)
        r->epochs = epochs;
    return -1;
}

/* Where the checkpoint stands must fit the data set it continues on: the same number of
 * batches per epoch (else the shuffling and the dropout masks differ from the original run). */
static int check_resume_fits(const char *path, const struct recipe *r, const struct progress *p, int64_t ntrain)
{
    int64_t batches = (ntrain + r->batch - 1) / r->batch;
    int64_t done = (int64_t)p->batch_index * r->batch < ntrain ? (int64_t)p->batch_index * r->batch : ntrain;
    if (p->batch_index > batches || p->partial_count != done ||
        p->step != (uint64_t)p->epoch * (uint64_t)batches + (uint64_t)p->batch_index) {
        fprintf(stderr, "nincl train: %s stopped at step %llu (epoch %d, batch %d, %lld examples), which does not fit "
                        "%lld training images in batches of %d: resume with the run's own --data\n",
                path, (unsigned long long)p->step, p->epoch + 1, p->batch_index, (long long)p->partial_count,
                (long long)ntrain, r->batch);
        return EXIT_USAGE;
    }
    return -1;
}

/* Whether every parameter on the device is finite; names the first bad tensor. A step with a
 * huge learning rate can turn the weights into NaN after the last loss was read, so this is
 * checked before a checkpoint is written or the epoch reported. */
static enum ncl_status params_finite(struct ncl_graph *g, int *finite, char *bad, size_t bad_cap)
{
    *finite = 1;
    int n = ncl_graph_param_count(g);
    for (int i = 0; i < n && *finite; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(g, i, &info);
        float *host = malloc(info.count * sizeof *host);
        if (!host)
            return NCL_ERR_NO_MEMORY;
        enum ncl_status s = ncl_graph_read_param(g, i, host);
        for (size_t k = 0; s == NCL_OK && k < info.count && *finite; k++)
            if (!isfinite(host[k])) {
                *finite = 0;
                snprintf(bad, bad_cap, "the parameters became %s (tensor %s)", isnan(host[k]) ? "NaN" : "infinite",
                         info.name);
            }
        free(host);
        if (s != NCL_OK)
            return s;
    }
    return NCL_OK;
}

static void print_progress(int tty, int epoch, int epochs, int64_t done, int64_t total, double loss, double acc,
                           double speed)
{
    double eta = speed > 0 ? (total - done) / speed : 0;
    if (tty) {
        int width = 24, fill = total ? (int)(width * done / total) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.3f acc %.3f %.1f img/s ETA %d:%02d  ", epoch, epochs, bar,
                (long long)done, (long long)total, loss, acc, speed, (int)eta / 60, (int)eta % 60);
    } else {
        fprintf(stderr, "epoch %d/%d: %lld/%lld examples, loss %.3f, acc %.3f, %.1f examples/sec, ETA %ds\n", epoch,
                epochs, (long long)done, (long long)total, loss, acc, speed, (int)eta);
    }
    fflush(stderr);
}

/* Checks --out before any work: it must be a folder or not exist yet, and must not hold the
 * checkpoint of another run (training into it would overwrite that checkpoint at the end of the
 * first epoch). The folder itself is created only when training starts, so a run refused for
 * bad input leaves nothing behind. */
static int check_out_dir(const char *out)
{
    struct stat st;
    char ckpt[4200];
    if (stat(out, &st) != 0) {   /* to be created: its parent must be a folder */
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", out);
        char *slash = strrchr(parent, '/');
        while (slash && slash > parent && slash[1] == 0) {   /* "a/b/" */
            *slash = 0;
            slash = strrchr(parent, '/');
        }
        if (!slash)
            return -1;
        slash[slash == parent ? 1 : 0] = 0;
        if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "nincl train: cannot create output folder %s: %s is not a folder\n", out, parent);
            return EXIT_USAGE;
        }
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "nincl train: --out %s is not a folder\n", out);
        return EXIT_USAGE;
    }
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    if (stat(ckpt, &st) == 0) {
        fprintf(stderr, "nincl train: --out %s already holds a run's checkpoint (%s): continue it with nincl train "
                        "--resume %s, or choose another --out\n",
                out, ckpt, out);
        return EXIT_USAGE;
    }
    return -1;
}

/* Creates the output folder (--out, else a new folder under runs/ named after the model and
 * the time); *created says whether this run made it. */
static int make_out_dir(const char *out, const char *model, char *dir, size_t cap, int *created)
{
    *created = 0;
    if (out) {
        snprintf(dir, cap, "%s", out);
        if (mkdir(dir, 0755) == 0)
            *created = 1;
        else if (errno != EEXIST) {
            fprintf(stderr, "nincl train: cannot create output folder %s: %s\n", dir, strerror(errno));
            return EXIT_USAGE;
        }
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "nincl train: --out %s is not a folder\n", dir);
            return EXIT_USAGE;
        }
        return -1;
    }
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    mkdir("runs", 0755);
    /* a new folder, never one of another run started in the same second */
    for (int k = 1; k < 1000; k++) {
        int n = snprintf(dir, cap, "runs/%s-%04d%02d%02d-%02d%02d%02d", model, tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (k > 1 && n > 0 && (size_t)n < cap)
            snprintf(dir + n, cap - (size_t)n, "-%d", k);
        if (mkdir(dir, 0755) == 0) {
            *created = 1;
            return -1;
        }
        if (errno != EEXIST)
            break;
    }
    fprintf(stderr, "nincl train: cannot create output folder %s: %s\n", dir, strerror(errno));
    return EXIT_FAILURE_RUNTIME;
}

struct run {
    struct ncl_ctx *ctx;
    struct ncl_graph *g;
    struct ncl_dataset train, test;
    struct ncl_device_data *train_dd, *test_dd;
    int32_t *order;
    struct history hist;
    struct ncl_st_file meta;
    int have_checkpoint;        /* DIR/checkpoint.safetensors is this run's (resumed or saved) */
    char data_id[96];           /* the data a run trains on, saved so --resume can check it */
};

static void run_free(struct run *r)
{
    free(r->order);
    history_free(&r->hist);
    ncl_st_free(&r->meta);
    ncl_device_data_free(r->train_dd);
    ncl_device_data_free(r->test_dd);
    ncl_graph_free(r->g);
    ncl_ctx_free(r->ctx);
    ncl_dataset_free(&r->train);
    ncl_dataset_free(&r->test);
}

static int fail(const char *what)
{
    fprintf(stderr, "nincl train: %s%s%s\n", what ? what : "", what ? ": " : "", ncl_last_error());
    return EXIT_FAILURE_RUNTIME;
}

/* Training diverged (`what`: the loss or a parameter became NaN or infinite): stop without
 * saving, and say which checkpoint is still good. */
static int diverged(const struct run *run, const struct progress *p, const char *what, const char *ckpt)
{
    char last[4400];
    if (run->have_checkpoint && p->batch_index == 0)
        snprintf(last, sizeof last, "The last good checkpoint is %s (saved after epoch %d)", ckpt, p->epoch);
    else if (run->have_checkpoint)   /* still in the epoch a resumed run started inside */
        snprintf(last, sizeof last, "The last good checkpoint is %s (saved in epoch %d after batch %d)", ckpt,
                 p->epoch + 1, p->batch_index);
    else
        snprintf(last, sizeof last, "No checkpoint was saved (no epoch finished)");
    fprintf(stderr, "\nnincl train: %s at epoch %d, step %llu; stopping. %s. Try a smaller --lr.\n", what,
            p->epoch + 1, (unsigned long long)p->step, last);
    return EXIT_FAILURE_RUNTIME;
}

static int train_loop(struct run *run, const struct recipe *r, struct progress *p, const char *dir, int show_tty)
{
    struct ncl_graph *g = run->g;
    const char *device = ncl_ctx_device(run->ctx)->name;
    int64_t ntrain = run->train.count, ntest = run->test.count;
    int batches = (int)((ntrain + r->batch - 1) / r->batch);
    struct ncl_sgd_params sgd = {r->lr, r->momentum, r->weight_decay};
    enum ncl_status s;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    for (; p->epoch < r->epochs; p->epoch++) {
        epoch_order(r->seed, p->epoch, run->order, ntrain);
        if ((s = ncl_device_data_set_order(run->train_dd, run->order, ntrain)) ||
            (s = ncl_graph_read_metrics(g, NULL, 1)))
            return fail(NULL);
        double t0 = now_seconds(), last_report = t0;
        struct ncl_metrics m = {0};
        for (int b = p->batch_index; b < batches; b++) {
            int64_t first = (int64_t)b * r->batch;
            int n = ntrain - first < r->batch ? (int)(ntrain - first) : r->batch;
            if ((s = ncl_graph_load_batch(g, run->train_dd, first, n)) ||
                (s = ncl_graph_forward(g, n, NCL_MODE_TRAIN, p->step)) || (s = ncl_graph_loss(g, n)) ||
                (s = ncl_graph_backward(g, n)) || (s = ncl_graph_sgd_step(g, &sgd)) ||
                (s = ncl_ctx_throttle(run->ctx, 2)))
                return fail("training step");
            p->step++;
            double now = now_seconds();
            int last = b == batches - 1;
            if (interrupted || last || now - last_report > (show_tty ? 0.5 : 10.0)) {
                if ((s = ncl_graph_read_metrics(g, &m, 0)))
                    return fail(NULL);
                now = now_seconds();
                last_report = now;
                double loss = (p->partial_loss + m.loss_sum) / (double)(p->partial_count + m.count);
                if (!isfinite(loss)) {
                    char what[64];
                    snprintf(what, sizeof what, "the loss became %s", isnan(loss) ? "NaN" : "infinite");
                    return diverged(run, p, what, ckpt);
                }
                if (interrupted) {
                    char bad[160];
                    int finite;
                    if ((s = params_finite(g, &finite, bad, sizeof bad)))
                        return fail("reading the parameters");
                    if (!finite)
                        return diverged(run, p, bad, ckpt);
                    p->batch_index = b + 1;
                    p->partial_loss += m.loss_sum;
                    p->partial_correct += m.correct;
                    p->partial_count += m.count;
                    p->partial_seconds += now - t0;
                    if (show_tty)
                        fputc('\n', stderr);
                    if (save_checkpoint(g, dir, r, p, &run->hist, run->data_id))
                        return fail("saving the checkpoint");
                    run->have_checkpoint = 1;
                    fprintf(stderr, "interrupted: checkpoint saved to %s; continue with: nincl train --resume %s\n",
                            ckpt, dir);
                    return 130;
                }
                double done = (double)(p->partial_count + m.count);
                print_progress(show_tty, p->epoch + 1, r->epochs, (int64_t)done, ntrain, loss,
                               (p->partial_correct + m.correct) / done,
                               m.count / (now - t0 > 1e-9 ? now - t0 : 1e-9));
            }
        }
        if ((s = ncl_ctx_finish(run->ctx)))
            return fail(NULL);
        char bad[160];
        int finite;
        if ((s = params_finite(g, &finite, bad, sizeof bad)))
            return fail("reading the parameters");
        if (!finite) {
            if (show_tty)
                fputc('\n', stderr);
            return diverged(run, p, bad, ckpt);
        }
        double seconds = p->partial_seconds + now_seconds() - t0;
        double loss = (p->partial_loss + m.loss_sum) / (double)(p->partial_count + m.count);
        double train_acc = (double)(p->partial_correct + m.correct) / (double)(p->partial_count + m.count);
        if (show_tty)
            fputc('\n', stderr);
        int64_t correct = 0;
        if ((s = evaluate(g, run->test_dd, ntest, r->batch, &correct, NULL)))
            return fail("evaluating");
        double test_acc = (double)correct / (double)ntest, speed = ntrain / seconds;
        if (history_add(&run->hist, loss, train_acc, test_acc, speed, seconds))
            return fail("out of memory");
        printf("epoch %d/%d: loss %.3f, train acc %.3f, test acc %.3f, %.1f examples/sec on %s\n", p->epoch + 1,
               r->epochs, loss, train_acc, test_acc, speed, device);
        fflush(stdout);
        struct progress next = *p;
        next.epoch = p->epoch + 1;
        next.batch_index = 0;
        next.partial_loss = next.partial_seconds = 0;
        next.partial_correct = next.partial_count = 0;
        if (save_checkpoint(g, dir, r, &next, &run->hist, run->data_id))
            return fail("saving the checkpoint");
        run->have_checkpoint = 1;
        if (write_metrics(dir, &run->hist, r->epochs))
            fprintf(stderr, "nincl train: warning: cannot write metrics.csv / curves.svg in %s\n", dir);
        *p = next;
        p->epoch--;   /* the for loop's increment */
        if (interrupted) {
            fprintf(stderr, "interrupted: checkpoint saved to %s; continue with: nincl train --resume %s\n", ckpt,
                    dir);
            return 130;
        }
    }
    const struct history *h = &run->hist;
    if (h->count) {
        double examples = 0, seconds = 0;
        for (int i = 0; i < h->count; i++) {
            examples += h->speed[i] * h->seconds[i];
            seconds += h->seconds[i];
        }
        int last = h->count - 1;
        printf("loss %.3f, train acc %.3f, test acc %.3f\n", h->loss[last], h->train_acc[last], h->test_acc[last]);
        printf("%.1f examples/sec on %s\n", examples / seconds, device);
    }
    printf("checkpoint: %s\nmetrics: %s/metrics.csv, %s/curves.svg\n", ckpt, dir, dir);
    return EXIT_OK;
}

int cmd_train(int argc, char **argv)
{
    struct device_flags df = {0};
    struct recipe r = {.model = "nin", .epochs = 10, .batch = 128, .resize = 0, .lr = 0.1f, .seed = 1};
    const char *data = DEFAULT_DATA_DIR, *out = NULL, *resume = NULL, *progress = "auto";
    struct flag flags[] = {
        {"model", FLAG_STRING, &r.model,
         "model: nin (d2l, 224x224), nin-small (28x28; 5 epochs, batch 64, lr 0.02, momentum 0.9) or lenet, lenet-bn, "
         "alexnet, vgg11, googlenet, resnet18, densenet (the book's recipe each: docs/models.md)", 0,
         0, 0, 0},
        {"epochs", FLAG_INT, &r.epochs, "training epochs", 1, MAX_EPOCHS, 0, 0},
        {"batch", FLAG_INT, &r.batch, "batch size (the last partial batch is kept)", 1, 65536, 0, 0},
        {"lr", FLAG_FLOAT, &r.lr, "SGD learning rate", 0, 1e6, 1, 0},
        {"momentum", FLAG_FLOAT, &r.momentum, "SGD momentum (d2l: 0)", 0, 1, 0, 0},
        {"weight-decay", FLAG_FLOAT, &r.weight_decay, "SGD weight decay (d2l: 0)", 0, 1, 0, 0},
        {"resize", FLAG_INT, &r.resize, "resize images to this size on the device (0: 224 for nin, 28 for nin-small)",
         0, 4096, 0, 0},
        {"seed", FLAG_U64, &r.seed, "seed of initialisation, shuffling and dropout", 0, 0, 0, 0},
        {"data", FLAG_STRING, &data, "folder with the Fashion-MNIST IDX files (.gz or raw)", 0, 0, 0, 0},
        {"out", FLAG_STRING, &out, "output folder, new or without a checkpoint (default: a new folder under runs/)", 0,
         0, 0, 0},
        {"resume", FLAG_STRING, &resume, "continue the run in this folder from its checkpoint", 0, 0, 0, 0},
        {"train-limit", FLAG_INT, &r.train_limit, "use only the first N training images (0: all 60000)", 0, 1e9, 0,
         0},
        {"test-limit", FLAG_INT, &r.test_limit, "use only the first N test images (0: all 10000)", 0, 1e9, 0, 0},
        {"progress", FLAG_STRING, &progress, "progress bar: auto (on a terminal), on or off (plain lines)", 0, 0, 0,
         0},
        DEVICE_FLAGS(df),
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int rc = flags_parse("train", "Train a model on Fashion-MNIST with the d2l recipe (lr 0.1, 10 epochs, batch 128, "
                                  "224x224, Xavier init, plain SGD).",
                         flags, nflags, argc, argv);
    if (rc >= 0)
        return rc;
    if (strcmp(progress, "auto") && strcmp(progress, "on") && strcmp(progress, "off")) {
        fprintf(stderr, "nincl train: --progress takes auto, on or off, not '%s'\n", progress);
        return EXIT_USAGE;
    }
    int show_tty = !strcmp(progress, "on") || (!strcmp(progress, "auto") && isatty(STDERR_FILENO));
    struct ncl_model_recipe mr;
    if (strcmp(r.model, "nin") && ncl_model_recipe(r.model, &mr) == NCL_OK) {
        /* the model's own recipe (docs/models.md) where the flags leave it open */
        struct flag *f = flags;
        for (int i = 0; i < nflags; i++, f++) {
            if (f->set)
                continue;
            if (!strcmp(f->name, "epochs"))
                r.epochs = mr.epochs;
            else if (!strcmp(f->name, "batch"))
                r.batch = mr.batch;
            else if (!strcmp(f->name, "lr"))
                r.lr = mr.lr;
            else if (!strcmp(f->name, "momentum"))
                r.momentum = mr.momentum;
        }
    }

    struct run run = {0};
    struct progress p = {0};
    char dir[4096], model[64], ckpt[4200], resume_data_id[96] = "";
    if (resume) {
        /* the recipe comes from the checkpoint; only --epochs may extend the run */
        for (int i = 0; i < nflags; i++)
            if (flags[i].set && strcmp(flags[i].name, "resume") && strcmp(flags[i].name, "epochs") &&
                strcmp(flags[i].name, "data") && strcmp(flags[i].name, "progress") &&
                strcmp(flags[i].name, "platform") && strcmp(flags[i].name, "device") &&
                strcmp(flags[i].name, "kernel-dir") && strcmp(flags[i].name, "gemm") &&
                strcmp(flags[i].name, "conv")) {
                fprintf(stderr, "nincl train: --%s cannot be changed on --resume (the run's recipe is in its "
                                "checkpoint)\n",
                        flags[i].name);
                return EXIT_USAGE;
            }
        snprintf(dir, sizeof dir, "%s", resume);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
        enum ncl_status s = ncl_st_read(ckpt, &run.meta);
        if (s != NCL_OK) {
            fprintf(stderr, "nincl train: cannot resume: %s\n", ncl_last_error());
            return exit_code_for(s);
        }
        int epochs_flag = flags[1].set ? r.epochs : 0;
        r.epochs = epochs_flag;
        if ((rc = read_resume_meta(&run.meta, ckpt, &r, &p, &run.hist, model, sizeof model)) < 0 &&
            ncl_st_check_finite(&run.meta, ckpt) != NCL_OK) {
            fprintf(stderr, "nincl train: %s\n", ncl_last_error());
            rc = EXIT_USAGE;
        }
        if (rc >= 0) {
            run_free(&run);
            return rc;
        }
        const char *id = ncl_st_meta(&run.meta, "data");   /* absent in older checkpoints */
        snprintf(resume_data_id, sizeof resume_data_id, "%s", id ? id : "");
        ncl_st_free(&run.meta);
        memset(&run.meta, 0, sizeof run.meta);
        if (p.epoch >= r.epochs) {
            /* metrics.csv lags the checkpoint when a run was killed between the two writes */
            if (run.hist.count)
                write_metrics(dir, &run.hist, r.epochs);
            fprintf(stderr, "nincl train: %s already finished %d of %d epochs; pass --epochs N to train further\n",
                    dir, p.epoch, r.epochs);
            run_free(&run);
            return EXIT_USAGE;
        }
        run.have_checkpoint = 1;
    } else {
        if (!r.resize)
            r.resize = ncl_model_input_size(r.model);
        if (out && (rc = check_out_dir(out)) >= 0)
            return rc;
    }
    if ((rc = load_split(data, "train", r.train_limit, &run.train)) >= 0 ||
        (rc = load_split(data, "t10k", r.test_limit, &run.test)) >= 0) {
        run_free(&run);
        return rc;
    }
    if (run.train.rows != run.test.rows || run.train.cols != run.test.cols) {
        fprintf(stderr, "nincl train: %s: the training images are %dx%d but the test images %dx%d: not one data set\n",
                data, run.train.rows, run.train.cols, run.test.rows, run.test.cols);
        run_free(&run);
        return EXIT_USAGE;
    }
    data_identity(&run.train, &run.test, run.data_id, sizeof run.data_id);
    if (resume && (rc = check_resume_fits(ckpt, &r, &p, run.train.count)) >= 0) {
        run_free(&run);
        return rc;
    }
    if (resume && resume_data_id[0] && strcmp(resume_data_id, run.data_id) != 0) {
        fprintf(stderr, "nincl train: %s was trained on other data (%s: training/test images and checksum) than %s "
                        "holds (%s): resume with the run's own --data\n",
                ckpt, resume_data_id, data, run.data_id);
        run_free(&run);
        return EXIT_USAGE;
    }
    if ((rc = open_device(&df, 0, &run.ctx)) >= 0) {
        run_free(&run);
        return rc;
    }
    enum ncl_status s = ncl_model_build(run.ctx, r.model, (struct ncl_shape){r.batch, 1, r.resize, r.resize}, &run.g);
    if (s != NCL_OK && resume) {   /* the model and its size came from the checkpoint */
        fprintf(stderr, "nincl train: %s: model '%s' at %dx%d, batch %d (from its metadata): %s\n", ckpt, r.model,
                r.resize, r.resize, r.batch, ncl_last_error());
        run_free(&run);
        return exit_code_for(s);
    }
    if (s == NCL_OK) {
        ncl_graph_set_seed(run.g, r.seed);
        s = resume ? ncl_checkpoint_load(run.g, ckpt, NULL) : ncl_graph_init_params(run.g, r.seed);
    }
    if (s == NCL_OK)
        s = ncl_device_data_create(run.ctx, &run.train, &run.train_dd);
    if (s == NCL_OK)
        s = ncl_device_data_create(run.ctx, &run.test, &run.test_dd);
    run.order = s == NCL_OK ? malloc((size_t)run.train.count * sizeof *run.order) : NULL;
    if (s == NCL_OK && !run.order)
        s = NCL_ERR_NO_MEMORY;
    if (s != NCL_OK) {
        fprintf(stderr, "nincl train: %s\n", ncl_last_error());
        run_free(&run);
        return exit_code_for(s);
    }
    int created = 0;
    if (!resume && (rc = make_out_dir(out, r.model, dir, sizeof dir, &created)) >= 0) {
        run_free(&run);
        return rc;
    }
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    printf("training %s on %s: %lld training / %lld test images at %dx%d, batch %d, lr %g, %d epochs, seed %llu%s\n",
           r.model, ncl_ctx_device(run.ctx)->name, (long long)run.train.count, (long long)run.test.count, r.resize,
           r.resize, r.batch, r.lr, r.epochs, (unsigned long long)r.seed, resume ? " (resumed)" : "");
    printf("output: %s\n", dir);
    fflush(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = train_loop(&run, &r, &p, dir, show_tty);
    if (rc != EXIT_OK && created && !run.have_checkpoint)
        rmdir(dir);   /* a run that saved nothing leaves no folder (rmdir keeps one that is not empty) */
    run_free(&run);
    return rc;
}
