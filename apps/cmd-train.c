/* nincl train: the command-line layer over ncl_train (runtime/train/trainer.c): flags to a training
 * config, progress as a bar on a terminal or plain lines, the epoch lines, and exit codes
 * (0 done, 130 stopped by Ctrl-C / SIGTERM with a checkpoint, 1 runtime failure, 2 bad input). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "run-util.h"

#define MAX_EPOCHS 10000

struct printer {
    int tty;
    int bar_open;               /* a progress bar line waits for its newline */
    char device[128];           /* from on_start, whose strings last only during the call */
};

static void close_bar(struct printer *pr)
{
    if (pr->bar_open)
        fputc('\n', stderr);
    pr->bar_open = 0;
}

static void on_start(const struct ncl_train_start *s, void *user)
{
    struct printer *pr = user;
    snprintf(pr->device, sizeof pr->device, "%s", s->device);
    printf("training %s on %s: %lld training / %lld test images at %dx%d, batch %d, lr %g, %d epochs, seed %llu%s\n",
           s->model, s->device, (long long)s->train_count, (long long)s->test_count, s->recipe.input_size,
           s->recipe.input_size, s->recipe.batch, s->recipe.lr, s->recipe.epochs, (unsigned long long)s->seed,
           s->resumed ? " (resumed)" : "");
    printf("output: %s\n", s->out_dir);
    fflush(stdout);
}

static void on_progress(const struct ncl_train_progress *p, void *user)
{
    struct printer *pr = user;
    int eta = (int)p->eta_seconds;
    if (pr->tty) {
        int width = 24, fill = p->total ? (int)(width * p->done / p->total) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.3f acc %.3f %.1f img/s ETA %d:%02d  ", p->epoch,
                p->epochs, bar, (long long)p->done, (long long)p->total, p->loss, p->acc, p->examples_per_sec,
                eta / 60, eta % 60);
        pr->bar_open = 1;
    } else {
        fprintf(stderr, "epoch %d/%d: %lld/%lld examples, loss %.3f, acc %.3f, %.1f examples/sec, ETA %ds\n", p->epoch,
                p->epochs, (long long)p->done, (long long)p->total, p->loss, p->acc, p->examples_per_sec, eta);
    }
    fflush(stderr);
}

static void on_epoch(const struct ncl_train_epoch *e, void *user)
{
    struct printer *pr = user;
    close_bar(pr);
    printf("epoch %d/%d: loss %.3f, train acc %.3f, test acc %.3f, %.1f examples/sec on %s\n", e->epoch, e->epochs,
           e->train_loss, e->train_acc, e->test_acc, e->examples_per_sec, pr->device);
    fflush(stdout);
}

static void on_warning(const char *message, void *user)
{
    close_bar(user);
    fprintf(stderr, "nincl train: warning: %s\n", message);
}

static int flag_was_set(const struct flag *flags, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(flags[i].name, name))
            return flags[i].set;
    return 0;
}

/* On --resume the recipe is the checkpoint's; only these flags may be given with it. */
static int allowed_on_resume(const char *name)
{
    static const char *const allowed[] = {"resume", "epochs", "data", "progress", "platform", "device",
                                          "kernel-dir", "gemm", "conv", "devices", "split",
                                          "overlap", "bucket-mb"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!strcmp(name, allowed[i]))
            return 1;
    return 0;
}

/* What rank 0 (or the only process) prints at the end of a run; the exit code. */
static int report(enum ncl_status s, const struct ncl_train_result *res, const struct printer *pr)
{
    if (s == NCL_STOPPED) {
        fprintf(stderr, "interrupted: checkpoint saved to %s; continue with: nincl train --resume %s\n",
                res->checkpoint, res->out_dir);
        return 130;
    }
    if (s == NCL_ERR_NUMERIC) {
        fprintf(stderr, "nincl train: %s. Try a smaller --lr.\n", ncl_last_error());
        return EXIT_FAILURE_RUNTIME;
    }
    if (s != NCL_OK) {
        fprintf(stderr, "nincl train: %s\n", ncl_last_error());
        return exit_code_for(s);
    }
    if (res->epochs_done) {
        printf("loss %.3f, train acc %.3f, test acc %.3f\n", res->train_loss, res->train_acc, res->test_acc);
        printf("%.1f examples/sec on %s\n", res->examples_per_sec, pr->device);
    }
    if (res->replicas > 1)
        printf("data parallel: %d replicas; per step %s\n", res->replicas, parallel_step_figures(res));
    printf("checkpoint: %s\nmetrics: %s/metrics.csv, %s/curves.svg\n", res->checkpoint, res->out_dir, res->out_dir);
    return EXIT_OK;
}

int cmd_train(int argc, char **argv)
{
    struct device_flags df = {0};
    struct ncl_model_recipe r = {.epochs = 10, .batch = 128, .lr = 0.1f};
    const char *model = "nin", *data = DEFAULT_DATA_DIR, *out = NULL, *resume = NULL, *progress = "auto";
    const char *devices = NULL, *split = "even", *init = NULL, *overlap = "auto";
    float bucket_mb = 0;
    uint64_t seed = 1;
    int train_limit = 0, test_limit = 0;
    struct flag flags[] = {
        {"model", FLAG_STRING, &model,
         "model: nin (d2l, 224x224), nin-small (28x28; 5 epochs, batch 64, lr 0.02, momentum 0.9) or lenet, lenet-bn, "
         "alexnet, vgg11, googlenet, resnet18, densenet (the book's recipe each: docs/models.md), or an .onnx file "
         "exported from PyTorch (nin's recipe at the file's input size)", 0, 0, 0, 0},
        {"init", FLAG_STRING, &init,
         "starting weights: xavier (train_ch6's, from --seed) or, for an .onnx model, file (its own; the default)", 0,
         0, 0, 0},
        {"epochs", FLAG_INT, &r.epochs, "training epochs", 1, MAX_EPOCHS, 0, 0},
        {"batch", FLAG_INT, &r.batch, "batch size (the last partial batch is kept)", 1, 65536, 0, 0},
        {"lr", FLAG_FLOAT, &r.lr, "SGD learning rate", 0, 1e6, 1, 0},
        {"momentum", FLAG_FLOAT, &r.momentum, "SGD momentum (d2l: 0)", 0, 1, 0, 0},
        {"weight-decay", FLAG_FLOAT, &r.weight_decay, "SGD weight decay (d2l: 0)", 0, 1, 0, 0},
        {"resize", FLAG_INT, &r.input_size, "resize images to this size on the device (0: the model's recipe size)",
         0, 4096, 0, 0},
        {"seed", FLAG_U64, &seed, "seed of initialisation, shuffling and dropout", 0, 0, 0, 0},
        {"data", FLAG_STRING, &data, "folder with the Fashion-MNIST IDX files (.gz or raw)", 0, 0, 0, 0},
        {"out", FLAG_STRING, &out, "output folder, new or without a checkpoint (default: a new folder under runs/)", 0,
         0, 0, 0},
        {"resume", FLAG_STRING, &resume, "continue the run in this folder from its checkpoint", 0, 0, 0, 0},
        {"train-limit", FLAG_INT, &train_limit, "use only the first N training images (0: all 60000)", 0, 1e9, 0,
         0},
        {"test-limit", FLAG_INT, &test_limit, "use only the first N test images (0: all 10000)", 0, 1e9, 0, 0},
        {"progress", FLAG_STRING, &progress, "progress bar: auto (on a terminal), on or off (plain lines)", 0, 0, 0,
         0},
        {"devices", FLAG_STRING, &devices,
         "data parallel: one replica per entry of a comma-separated list of P:D, name substrings or 'all' (entries "
         "may repeat); under mpirun, per rank",
         0, 0, 0, 0},
        {"split", FLAG_STRING, &split, "how the batch is split between replicas: even or auto (by measured speed)", 0,
         0, 0, 0},
        OVERLAP_FLAGS(overlap, bucket_mb),
        DEVICE_FLAGS(df),
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int rc = flags_parse("train", "Train a model on Fashion-MNIST with the d2l recipe (lr 0.1, 10 epochs, batch 128, "
                                  "224x224, Xavier init, plain SGD).",
                         flags, nflags, argc, argv);
    if (rc >= 0)
        return rc;
    if (strcmp(split, "even") && strcmp(split, "auto")) {
        fprintf(stderr, "nincl train: --split takes even or auto, not '%s'\n", split);
        return EXIT_USAGE;
    }
    if (strcmp(overlap, "auto") && strcmp(overlap, "on") && strcmp(overlap, "off")) {
        fprintf(stderr, "nincl train: --overlap takes auto, on or off, not '%s'\n", overlap);
        return EXIT_USAGE;
    }
    if (strcmp(progress, "auto") && strcmp(progress, "on") && strcmp(progress, "off")) {
        fprintf(stderr, "nincl train: --progress takes auto, on or off, not '%s'\n", progress);
        return EXIT_USAGE;
    }
    for (int i = 0; resume && i < nflags; i++)
        if (flags[i].set && !allowed_on_resume(flags[i].name)) {
            fprintf(stderr, "nincl train: --%s cannot be changed on --resume (the run's recipe is in its checkpoint)\n",
                    flags[i].name);
            return EXIT_USAGE;
        }

    struct ncl_train_config cfg;
    enum ncl_status s = ncl_train_config_init(&cfg, model);
    if (s != NCL_OK && !resume) {
        fprintf(stderr, "nincl train: %s\n", ncl_last_error());
        return EXIT_USAGE;
    }
    /* the model's own recipe where the flags leave it open */
    if (flag_was_set(flags, nflags, "epochs"))
        cfg.recipe.epochs = r.epochs;
    if (flag_was_set(flags, nflags, "batch"))
        cfg.recipe.batch = r.batch;
    if (flag_was_set(flags, nflags, "lr"))
        cfg.recipe.lr = r.lr;
    if (flag_was_set(flags, nflags, "momentum"))
        cfg.recipe.momentum = r.momentum;
    if (flag_was_set(flags, nflags, "weight-decay"))
        cfg.recipe.weight_decay = r.weight_decay;
    if (r.input_size)
        cfg.recipe.input_size = r.input_size;
    cfg.seed = seed;
    cfg.init = init;
    cfg.data_dir = data;
    cfg.train_limit = train_limit;
    cfg.test_limit = test_limit;
    cfg.out_dir = out;
    cfg.resume_dir = resume;
    cfg.resume_epochs = resume && flag_was_set(flags, nflags, "epochs") ? r.epochs : 0;
    cfg.device = (struct ncl_ctx_params){.platform = df.platform, .device = df.device, .kernel_dir = df.kernel_dir,
                                         .gemm = df.gemm, .conv = df.conv, .kernels = df.kernels};
    cfg.devices = devices;
    cfg.split = split;
    cfg.overlap = overlap;
    cfg.bucket_mb = bucket_mb;
    int rank = 0;
    if ((rc = mpi_start_if_launched("train", &cfg.mpi, &rank)) >= 0)
        return rc;
    struct printer pr = {.tty = !strcmp(progress, "on") || (!strcmp(progress, "auto") && isatty(STDERR_FILENO))};
    cfg.progress_interval_s = pr.tty ? 0.5 : 10.0;
    cfg.on_start = on_start;
    cfg.on_progress = on_progress;
    cfg.on_epoch = on_epoch;
    cfg.on_warning = on_warning;
    cfg.user = &pr;

    struct ncl_train_result res;
    s = ncl_train(&cfg, &res);
    close_bar(&pr);
    /* rank 0 reports for the job, before MPI ends: a rank that leaves with an error makes mpirun
     * kill the others, and rank 0 must have said why by then */
    rc = rank == 0 ? report(s, &res, &pr) : s == NCL_OK ? EXIT_OK : s == NCL_STOPPED ? 130 : exit_code_for(s);
    fflush(stdout);
    if (cfg.mpi)
        ncl_mpi_finalize();
    return rc;
}
