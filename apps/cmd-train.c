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

/* Saves DIR/checkpoint.safetensors with the recipe and the progress in its metadata. */
static enum ncl_status save_checkpoint(struct ncl_graph *g, const char *dir, const struct recipe *r,
                                       const struct progress *p, const struct history *h)
{
    char path[4200], v[17][64];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    char *hist = history_encode(h);
    if (!hist)
        return NCL_ERR_NO_MEMORY;
    const char *keys[] = {"format", "model", "epochs", "batch", "resize", "lr", "momentum", "weight_decay", "seed",
                          "train_limit", "test_limit", "epoch", "batch_index", "step", "partial_loss",
                          "partial_correct", "partial_count", "partial_seconds", "history"};
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
                            v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], hist};
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

/* Reads the recipe and progress of a run from its checkpoint's metadata. */
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
    int epochs = atoi(meta_need(f, "epochs", path, &bad));
    r->batch = atoi(meta_need(f, "batch", path, &bad));
    r->resize = atoi(meta_need(f, "resize", path, &bad));
    r->lr = strtof(meta_need(f, "lr", path, &bad), NULL);
    r->momentum = strtof(meta_need(f, "momentum", path, &bad), NULL);
    r->weight_decay = strtof(meta_need(f, "weight_decay", path, &bad), NULL);
    r->seed = strtoull(meta_need(f, "seed", path, &bad), NULL, 10);
    r->train_limit = atoi(meta_need(f, "train_limit", path, &bad));
    r->test_limit = atoi(meta_need(f, "test_limit", path, &bad));
    p->epoch = atoi(meta_need(f, "epoch", path, &bad));
    p->batch_index = atoi(meta_need(f, "batch_index", path, &bad));
    p->step = strtoull(meta_need(f, "step", path, &bad), NULL, 10);
    p->partial_loss = strtod(meta_need(f, "partial_loss", path, &bad), NULL);
    p->partial_correct = atoll(meta_need(f, "partial_correct", path, &bad));
    p->partial_count = atoll(meta_need(f, "partial_count", path, &bad));
    p->partial_seconds = strtod(meta_need(f, "partial_seconds", path, &bad), NULL);
    if (bad)
        return EXIT_USAGE;
    if (history_decode(ncl_st_meta(f, "history"), h) || h->count != p->epoch || r->batch < 1 || r->resize < 1 ||
        !(r->lr > 0) || p->epoch < 0 || p->batch_index < 0) {
        fprintf(stderr, "nincl train: %s: inconsistent training metadata\n", path);
        return EXIT_USAGE;
    }
    if (r->epochs == 0)
        r->epochs = epochs;
    return -1;
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

static int make_out_dir(const char *out, const char *model, char *dir, size_t cap)
{
    if (out) {
        snprintf(dir, cap, "%s", out);
    } else {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        mkdir("runs", 0755);
        snprintf(dir, cap, "runs/%s-%04d%02d%02d-%02d%02d%02d", model, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
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

struct run {
    struct ncl_ctx *ctx;
    struct ncl_graph *g;
    struct ncl_dataset train, test;
    struct ncl_device_data *train_dd, *test_dd;
    int32_t *order;
    struct history hist;
    struct ncl_st_file meta;
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
                    fprintf(stderr, "\nnincl train: the loss became %s at epoch %d, step %llu; stopping. The last "
                                    "good checkpoint is %s (epoch %d). Try a smaller --lr.\n",
                            isnan(loss) ? "NaN" : "infinite", p->epoch + 1, (unsigned long long)p->step, ckpt,
                            p->epoch);
                    return EXIT_FAILURE_RUNTIME;
                }
                if (interrupted) {
                    p->batch_index = b + 1;
                    p->partial_loss += m.loss_sum;
                    p->partial_correct += m.correct;
                    p->partial_count += m.count;
                    p->partial_seconds += now - t0;
                    if (show_tty)
                        fputc('\n', stderr);
                    if (save_checkpoint(g, dir, r, p, &run->hist))
                        return fail("saving the checkpoint");
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
        if (save_checkpoint(g, dir, r, &next, &run->hist))
            return fail("saving the checkpoint");
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
        {"model", FLAG_STRING, &r.model, "model: nin (d2l, 224x224) or nin-small (28x28)", 0, 0, 0, 0},
        {"epochs", FLAG_INT, &r.epochs, "training epochs", 1, MAX_EPOCHS, 0, 0},
        {"batch", FLAG_INT, &r.batch, "batch size (the last partial batch is kept)", 1, 65536, 0, 0},
        {"lr", FLAG_FLOAT, &r.lr, "SGD learning rate", 0, 1e6, 1, 0},
        {"momentum", FLAG_FLOAT, &r.momentum, "SGD momentum (d2l: 0)", 0, 1, 0, 0},
        {"weight-decay", FLAG_FLOAT, &r.weight_decay, "SGD weight decay (d2l: 0)", 0, 1, 0, 0},
        {"resize", FLAG_INT, &r.resize, "resize images to this size on the device (0: 224 for nin, 28 for nin-small)",
         0, 4096, 0, 0},
        {"seed", FLAG_U64, &r.seed, "seed of initialisation, shuffling and dropout", 0, 0, 0, 0},
        {"data", FLAG_STRING, &data, "folder with the Fashion-MNIST IDX files (.gz or raw)", 0, 0, 0, 0},
        {"out", FLAG_STRING, &out, "output folder (default: a new folder under runs/)", 0, 0, 0, 0},
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

    struct run run = {0};
    struct progress p = {0};
    char dir[4096], model[64], ckpt[4200];
    if (resume) {
        /* the recipe comes from the checkpoint; only --epochs may extend the run */
        for (int i = 0; i < nflags; i++)
            if (flags[i].set && strcmp(flags[i].name, "resume") && strcmp(flags[i].name, "epochs") &&
                strcmp(flags[i].name, "data") && strcmp(flags[i].name, "progress") &&
                strcmp(flags[i].name, "platform") && strcmp(flags[i].name, "device") &&
                strcmp(flags[i].name, "kernel-dir") && strcmp(flags[i].name, "gemm")) {
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
        if ((rc = read_resume_meta(&run.meta, ckpt, &r, &p, &run.hist, model, sizeof model)) >= 0) {
            run_free(&run);
            return rc;
        }
        ncl_st_free(&run.meta);
        memset(&run.meta, 0, sizeof run.meta);
    } else {
        if (!r.resize)
            r.resize = strcmp(r.model, "nin-small") == 0 ? 28 : 224;
        if ((rc = make_out_dir(out, r.model, dir, sizeof dir)) >= 0)
            return rc;
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    }
    if ((rc = load_split(data, "train", r.train_limit, &run.train)) >= 0 ||
        (rc = load_split(data, "t10k", r.test_limit, &run.test)) >= 0) {
        run_free(&run);
        return rc;
    }
    if ((rc = open_device(&df, 0, &run.ctx)) >= 0) {
        run_free(&run);
        return rc;
    }
    enum ncl_status s = ncl_model_build(run.ctx, r.model, (struct ncl_shape){r.batch, 1, r.resize, r.resize}, &run.g);
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
    if (p.epoch >= r.epochs) {
        fprintf(stderr, "nincl train: %s already finished %d of %d epochs; pass --epochs N to train further\n", dir,
                p.epoch, r.epochs);
        run_free(&run);
        return EXIT_USAGE;
    }
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
    run_free(&run);
    return rc;
}
