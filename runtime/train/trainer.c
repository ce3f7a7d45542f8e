/* ncl_train: the d2l loop (train_ch6: shuffle, SGD over the training split, evaluate on the
 * test split, every epoch) with a checkpoint every epoch and when stopped, metrics.csv and
 * curves.svg, an exact resume, and a stop when the loss or the parameters stop being finite.
 * The nincl command and users' programs drive this one loop. */
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

#include "replicas-impl.h"
#include "onnx-impl.h"
#include "train-impl.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define DEFAULT_PROGRESS_SECONDS 10.0

static volatile sig_atomic_t stop_requested;

void ncl_train_stop(void)
{
    stop_requested = 1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum ncl_status ncl_train_config_init(struct ncl_train_config *cfg, const char *model)
{
    if (!cfg)
        return ncl_fail(NCL_ERR_ARG, "ncl_train_config_init: cfg is NULL");
    memset(cfg, 0, sizeof *cfg);
    cfg->model = model;
    cfg->seed = 1;
    cfg->data_dir = DEFAULT_DATA_DIR;
    cfg->handle_signals = 1;
    return ncl_model_default_recipe(model, &cfg->recipe);
}

static enum ncl_status check_recipe(const struct ncl_model_recipe *r)
{
    if (r->epochs < 1 || r->epochs > NCL_TRAIN_MAX_EPOCHS)
        return ncl_fail(NCL_ERR_ARG, "epochs is %d, must be in [1, %d]", r->epochs, NCL_TRAIN_MAX_EPOCHS);
    if (r->batch < 1 || r->batch > 65536)
        return ncl_fail(NCL_ERR_ARG, "batch is %d, must be in [1, 65536]", r->batch);
    if (r->input_size < 1 || r->input_size > 4096)
        return ncl_fail(NCL_ERR_ARG, "input size is %d, must be in [1, 4096]", r->input_size);
    if (!(r->lr > 0 && r->lr <= 1e6f))
        return ncl_fail(NCL_ERR_ARG, "learning rate is %g, must be in (0, 1e6]", r->lr);
    if (!(r->momentum >= 0 && r->momentum <= 1) || !(r->weight_decay >= 0 && r->weight_decay <= 1))
        return ncl_fail(NCL_ERR_ARG, "momentum %g and weight decay %g must be in [0, 1]", r->momentum,
                        r->weight_decay);
    return NCL_OK;
}

/* The output folder must be a folder or not exist yet (with a folder as its parent), and must
 * not hold another run's checkpoint, which the first epoch would overwrite. It is created only
 * when training starts, so a run refused for bad input leaves nothing behind. */
static enum ncl_status check_out_dir(const char *out)
{
    struct stat st;
    if (stat(out, &st) != 0) {
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", out);
        char *slash = strrchr(parent, '/');
        while (slash && slash > parent && slash[1] == 0) {   /* "a/b/" */
            *slash = 0;
            slash = strrchr(parent, '/');
        }
        if (!slash)
            return NCL_OK;
        slash[slash == parent ? 1 : 0] = 0;
        if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
            return ncl_fail(NCL_ERR_IO, "cannot create output folder %s: %s is not a folder", out, parent);
        return NCL_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return ncl_fail(NCL_ERR_IO, "--out %s is not a folder", out);
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    if (stat(ckpt, &st) == 0)
        return ncl_fail(NCL_ERR_ARG,
                        "--out %s already holds a run's checkpoint (%s): continue it with nincl train --resume %s, "
                        "or choose another --out",
                        out, ckpt, out);
    return NCL_OK;
}

/* The ONNX model of a run is part of it: DIR/model.onnx, what its checkpoint's "model" names. */
#define RUN_ONNX_NAME "model.onnx"

/* Creates the output folder (out, else a new folder under runs/ named after the model and the
 * time, never one of another run started in the same second); *created says whether this run
 * made it. */
static enum ncl_status make_out_dir(const char *out, const char *model, char *dir, size_t cap, int *created)
{
    *created = 0;
    struct stat st;
    if (out) {
        snprintf(dir, cap, "%s", out);
        if (mkdir(dir, 0755) == 0)
            *created = 1;
        else if (errno != EEXIST)
            return ncl_fail(NCL_ERR_IO, "cannot create output folder %s: %s", dir, strerror(errno));
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return ncl_fail(NCL_ERR_IO, "--out %s is not a folder", dir);
        return NCL_OK;
    }
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    mkdir("runs", 0755);
    char stem[64];   /* "net" of a/b/net.onnx */
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    snprintf(stem, sizeof stem, "%.*s", (int)(ncl_onnx_name_len(base)), base);
    model = stem;
    for (int k = 1; k < 1000; k++) {
        int n = snprintf(dir, cap, "runs/%s-%04d%02d%02d-%02d%02d%02d", model, tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (k > 1 && n > 0 && (size_t)n < cap)
            snprintf(dir + n, cap - (size_t)n, "-%d", k);
        if (mkdir(dir, 0755) == 0) {
            *created = 1;
            return NCL_OK;
        }
        if (errno != EEXIST)
            break;
    }
    return ncl_fail(NCL_ERR_IO, "cannot create output folder %s: %s", dir, strerror(errno));
}

struct run {
    const struct ncl_train_config *cfg;
    struct ncl_dist dist;
    struct ncl_replicas reps;
    struct ncl_ctx *ctx;        /* replica 0's: it evaluates and its parameters are saved */
    struct ncl_graph *g;
    struct ncl_dataset train, test;
    struct ncl_device_data *test_dd;   /* on replica 0 of rank 0 */
    int32_t *order;
    struct ncl_train_run_id id;
    struct ncl_train_progress_state p;
    struct ncl_train_history hist;
    int have_checkpoint;        /* ckpt is this run's (resumed or saved) */
    char dir[4096], ckpt[4200];
    /* what the replicas build: a built-in model's name, or an ONNX file (the user's for a new
     * run, which the run folder gets a copy of as model.onnx; that copy when resuming) */
    char model_path[4200];
    int onnx;
};

static void run_free(struct run *r)
{
    free(r->order);
    ncl_history_free(&r->hist);
    ncl_device_data_free(r->test_dd);
    ncl_replicas_free(&r->reps);
    ncl_dataset_free(&r->train);
    ncl_dataset_free(&r->test);
}

static void warn(const struct ncl_train_config *cfg, const char *fmt, const char *arg)
{
    char msg[4400];
    snprintf(msg, sizeof msg, fmt, arg);
    if (cfg->on_warning)
        cfg->on_warning(msg, cfg->user);
    else
        fprintf(stderr, "nincl: warning: %s\n", msg);
}

/* Training diverged (`what`: the loss or a parameter became NaN or infinite): stop without
 * saving, and say which checkpoint is still good. */
static enum ncl_status diverged(const struct run *run, const char *what)
{
    const struct ncl_train_progress_state *p = &run->p;
    char last[4400];
    if (run->have_checkpoint && p->batch_index == 0)
        snprintf(last, sizeof last, "The last good checkpoint is %s (saved after epoch %d)", run->ckpt, p->epoch);
    else if (run->have_checkpoint)   /* still in the epoch a resumed run started inside */
        snprintf(last, sizeof last, "The last good checkpoint is %s (saved in epoch %d after batch %d)", run->ckpt,
                 p->epoch + 1, p->batch_index);
    else
        snprintf(last, sizeof last, "No checkpoint was saved (no epoch finished)");
    return ncl_fail(NCL_ERR_NUMERIC, "%s at epoch %d, step %llu; stopping. %s", what, p->epoch + 1,
                    (unsigned long long)p->step, last);
}

/* NCL_ERR_NUMERIC naming the first tensor that is not finite. A step with a huge learning rate
 * can turn the weights into NaN after the last loss was read, so this is checked before a
 * checkpoint is written or an epoch reported. */
static enum ncl_status check_params_finite(struct run *run)
{
    int n = ncl_graph_param_count(run->g);
    for (int i = 0; i < n; i++) {
        struct ncl_param_info info;
        ncl_graph_param_info(run->g, i, &info);
        float *host = malloc(info.count * sizeof *host);
        if (!host)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory reading parameter %s", info.name);
        enum ncl_status s = ncl_graph_read_param(run->g, i, host);
        size_t k = 0;
        while (s == NCL_OK && k < info.count && isfinite(host[k]))
            k++;
        if (s == NCL_OK && k < info.count) {
            char what[160];
            snprintf(what, sizeof what, "the parameters became %s (tensor %s)", isnan(host[k]) ? "NaN" : "infinite",
                     info.name);
            s = diverged(run, what);
        }
        free(host);
        if (s != NCL_OK)
            return s == NCL_ERR_NUMERIC ? s : ncl_fail_prefix(s, "reading the parameters");
    }
    return NCL_OK;
}

/* Rank 0 saves, once every replica of every rank is checked to hold the same parameters. */
static enum ncl_status save(struct run *run, const struct ncl_train_progress_state *p)
{
    NCL_TRY(ncl_replicas_check_identical(&run->reps));
    enum ncl_status s = run->dist.rank == 0 ? ncl_train_state_save(run->g, run->ckpt, &run->id, p, &run->hist)
                                            : NCL_OK;
    s = ncl_dist_agree(&run->dist, s);
    if (s != NCL_OK)
        return ncl_fail_prefix(s, "saving the checkpoint");
    run->have_checkpoint = 1;
    return NCL_OK;
}

/* Saves where the run stands inside an epoch and reports the stop. */
static enum ncl_status stop_inside_epoch(struct run *run, int batches_done, const struct ncl_metrics *m,
                                         double seconds)
{
    NCL_TRY(check_params_finite(run));
    struct ncl_train_progress_state *p = &run->p;
    p->batch_index = batches_done;
    p->partial_loss += m->loss_sum;
    p->partial_correct += m->correct;
    p->partial_count += m->count;
    p->partial_seconds += seconds;
    NCL_TRY(save(run, p));
    return ncl_fail(NCL_STOPPED, "stopped at epoch %d, step %llu: checkpoint saved to %s", p->epoch + 1,
                    (unsigned long long)p->step, run->ckpt);
}

/* One epoch from where the run stands to its end; the epoch's mean loss and accuracy. */
static enum ncl_status train_epoch(struct run *run, double *loss_out, double *acc_out, double *seconds_out)
{
    const struct ncl_train_config *cfg = run->cfg;
    const struct ncl_model_recipe *r = &run->id.recipe;
    struct ncl_train_progress_state *p = &run->p;
    int64_t ntrain = run->train.count;
    int batches = (int)((ntrain + r->batch - 1) / r->batch);
    struct ncl_sgd_params sgd = {r->lr, r->momentum, r->weight_decay};
    double interval = cfg->progress_interval_s > 0 ? cfg->progress_interval_s : DEFAULT_PROGRESS_SECONDS;
    enum ncl_status s;

    ncl_epoch_order(run->id.seed, p->epoch, run->order, ntrain);
    if ((s = ncl_replicas_set_order(&run->reps, run->order, ntrain)) ||
        (s = ncl_replicas_read_metrics(&run->reps, NULL, 1)))
        return s;
    double t0 = now_seconds(), last_report = t0;
    struct ncl_metrics m = {0};
    for (int b = p->batch_index; b < batches; b++) {
        int64_t first = (int64_t)b * r->batch;
        int n = ntrain - first < r->batch ? (int)(ntrain - first) : r->batch;
        if ((s = ncl_replicas_step(&run->reps, first, n, p->step, &sgd)))
            return ncl_fail_prefix(s, "training step");
        p->step++;
        double now = now_seconds();
        /* whether to stop or report: rank 0's clock and any rank's stop request decide for all */
        double flags[2] = {stop_requested, run->dist.rank == 0 && (b == batches - 1 || now - last_report > interval)};
        if ((s = ncl_dist_sum_doubles(&run->dist, flags, 2)))
            return s;
        int stop = flags[0] > 0;
        if (!stop && flags[1] == 0)
            continue;
        if ((s = ncl_replicas_read_metrics(&run->reps, &m, 0)))
            return s;
        now = now_seconds();
        last_report = now;
        double loss = (p->partial_loss + m.loss_sum) / (double)(p->partial_count + m.count);
        if (!isfinite(loss)) {
            char what[64];
            snprintf(what, sizeof what, "the loss became %s", isnan(loss) ? "NaN" : "infinite");
            return diverged(run, what);
        }
        if (!stop && cfg->on_progress && run->dist.rank == 0) {
            double done = (double)(p->partial_count + m.count), speed = m.count / (now - t0 > 1e-9 ? now - t0 : 1e-9);
            struct ncl_train_progress pr = {p->epoch + 1, r->epochs, (int64_t)done, ntrain, loss,
                                            (p->partial_correct + m.correct) / done, speed, (ntrain - done) / speed};
            cfg->on_progress(&pr, cfg->user);
        }
        flags[0] = stop_requested;   /* also when the callback itself asked */
        if ((s = ncl_dist_sum_doubles(&run->dist, flags, 1)))
            return s;
        if (flags[0] > 0)
            return stop_inside_epoch(run, b + 1, &m, now - t0);
    }
    if ((s = ncl_replicas_finish(&run->reps)))
        return s;
    NCL_TRY(check_params_finite(run));
    *seconds_out = p->partial_seconds + now_seconds() - t0;
    *loss_out = (p->partial_loss + m.loss_sum) / (double)(p->partial_count + m.count);
    *acc_out = (double)(p->partial_correct + m.correct) / (double)(p->partial_count + m.count);
    return NCL_OK;
}

static enum ncl_status train_loop(struct run *run)
{
    const struct ncl_train_config *cfg = run->cfg;
    const struct ncl_model_recipe *r = &run->id.recipe;
    struct ncl_train_progress_state *p = &run->p;
    int64_t ntrain = run->train.count, ntest = run->test.count;
    while (p->epoch < r->epochs) {
        double loss = 0, train_acc = 0, seconds = 0;
        NCL_TRY(train_epoch(run, &loss, &train_acc, &seconds));
        int64_t correct = 0;   /* rank 0 evaluates; the others wait at the next collective */
        enum ncl_status s =
            run->test_dd ? ncl_graph_evaluate(run->g, run->test_dd, ntest, ncl_graph_input_shape(run->g).n, &correct,
                                              NULL)
                         : NCL_OK;
        if (s != NCL_OK)
            return ncl_fail_prefix(s, "evaluating");
        double test_acc = (double)correct / (double)ntest, speed = ntrain / seconds;
        if (ncl_history_add(&run->hist, loss, train_acc, test_acc, speed, seconds))
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the metrics");
        struct ncl_train_progress_state next = {.epoch = p->epoch + 1, .step = p->step};
        NCL_TRY(save(run, &next));
        if (run->dist.rank == 0 && ncl_history_write_files(run->dir, &run->hist, r->epochs))
            warn(cfg, "cannot write metrics.csv / curves.svg in %s", run->dir);
        *p = next;
        if (cfg->on_epoch && run->dist.rank == 0) {
            struct ncl_train_epoch e = {p->epoch, r->epochs, loss, train_acc, test_acc, speed, seconds};
            cfg->on_epoch(&e, cfg->user);
        }
        double stop = stop_requested;
        NCL_TRY(ncl_dist_sum_doubles(&run->dist, &stop, 1));
        if (stop > 0 && p->epoch < r->epochs)
            return ncl_fail(NCL_STOPPED, "stopped after epoch %d: checkpoint saved to %s", p->epoch, run->ckpt);
    }
    return NCL_OK;
}

/* Reads the checkpoint of the run in resume_dir (run->ckpt): its recipe, progress and history. */
static enum ncl_status open_resume(struct run *run)
{
    const struct ncl_train_config *cfg = run->cfg;
    struct ncl_st_file meta = {0};
    enum ncl_status s = ncl_st_read(run->ckpt, &meta);
    if (s != NCL_OK)
        return ncl_fail_prefix(s, "cannot resume");
    s = ncl_train_state_read(&meta, run->ckpt, &run->id, &run->p, &run->hist);
    if (s == NCL_OK)
        s = ncl_st_check_finite(&meta, run->ckpt);
    ncl_st_free(&meta);
    if (s != NCL_OK)
        return s;
    if (cfg->resume_epochs)
        run->id.recipe.epochs = cfg->resume_epochs;
    if (run->p.epoch >= run->id.recipe.epochs) {
        /* metrics.csv lags the checkpoint when a run was killed between the two writes */
        if (run->hist.count)
            ncl_history_write_files(run->dir, &run->hist, run->id.recipe.epochs);
        return ncl_fail(NCL_ERR_ARG, "%s already finished %d of %d epochs; pass --epochs N to train further",
                        run->dir, run->p.epoch, run->id.recipe.epochs);
    }
    return NCL_OK;
}

static enum ncl_status load_data(struct run *run)
{
    const char *dir = run->cfg->data_dir ? run->cfg->data_dir : DEFAULT_DATA_DIR;
    NCL_TRY(ncl_dataset_load(dir, "train", 10, &run->train));
    NCL_TRY(ncl_dataset_load(dir, "t10k", 10, &run->test));
    if (run->id.train_limit > 0 && run->id.train_limit < run->train.count)
        run->train.count = run->id.train_limit;
    if (run->id.test_limit > 0 && run->id.test_limit < run->test.count)
        run->test.count = run->id.test_limit;
    if (run->train.rows != run->test.rows || run->train.cols != run->test.cols)
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: the training images are %dx%d but the test images %dx%d: not one data set", dir,
                        run->train.rows, run->train.cols, run->test.rows, run->test.cols);
    char id[96];
    ncl_data_identity(&run->train, &run->test, id, sizeof id);
    if (run->cfg->resume_dir) {
        NCL_TRY(ncl_train_state_check_fits(run->ckpt, &run->id, &run->p, run->train.count));
        if (run->id.data_id[0] && strcmp(run->id.data_id, id) != 0)
            return ncl_fail(NCL_ERR_ARG,
                            "%s was trained on other data (%s: training/test images and checksum) than %s holds (%s): "
                            "resume with the run's own --data",
                            run->ckpt, run->id.data_id, dir, id);
    }
    snprintf(run->id.data_id, sizeof run->id.data_id, "%s", id);
    return NCL_OK;
}

/* An MPI rank with no device named: the device of its local rank among the machine's GPUs (or
 * all its devices when it has none), round-robin when ranks outnumber them. */
static enum ncl_status pick_for_local_rank(const struct ncl_dist *d, struct ncl_device_pick *pick)
{
    struct ncl_device_info *list = NULL;
    int n = 0, gpus = 0;
    NCL_TRY(ncl_device_list(&list, &n));
    for (int i = 0; i < n; i++)
        gpus += strcmp(list[i].type, "GPU") == 0;
    int want = d->local_rank % (gpus ? gpus : n > 0 ? n : 1), k = 0;
    memset(pick, 0, sizeof *pick);
    for (int i = 0; i < n; i++) {
        if (gpus && strcmp(list[i].type, "GPU") != 0)
            continue;
        if (k++ == want) {
            snprintf(pick->platform, sizeof pick->platform, "%d", list[i].platform_index);
            snprintf(pick->device, sizeof pick->device, "%d", list[i].device_index);
            break;
        }
    }
    free(list);
    return n ? NCL_OK : ncl_fail(NCL_ERR_NO_DEVICE, "no OpenCL device");
}

/* The replicas (one device, or cfg->devices) with the model, its parameters (initialised, or
 * the checkpoint's on rank 0, then the same on every replica) and the data on the devices. */
static enum ncl_status open_model(struct run *run)
{
    const struct ncl_train_config *cfg = run->cfg;
    const struct ncl_model_recipe *r = &run->id.recipe;
    run->onnx = ncl_onnx_is_path(run->id.model);
    if (run->onnx && cfg->resume_dir)
        snprintf(run->model_path, sizeof run->model_path, "%s/%s", cfg->resume_dir, run->id.model);
    else
        snprintf(run->model_path, sizeof run->model_path, "%s", run->onnx ? cfg->model : run->id.model);
    struct ncl_device_pick *picks = NULL, one;
    int count = 0;
    enum ncl_status s = NCL_OK;
    if (cfg->devices) {
        s = ncl_device_list_parse(cfg->devices, &picks, &count);
    } else if (run->dist.size > 1 && !cfg->device.device && !getenv("NINCL_DEVICE")) {
        s = pick_for_local_rank(&run->dist, &one);
        count = 1;
    }
    /* the contexts' notes (a kernel-variant measurement, a damaged tuning cache) go where the
       run's warnings go, unless the caller gave the devices a channel of their own */
    struct ncl_ctx_params device = cfg->device;
    if (!device.on_warning) {
        device.on_warning = cfg->on_warning;
        device.warning_user = cfg->user;
    }
    struct ncl_replicas_params rp = {run->model_path, {r->batch, 1, r->input_size, r->input_size}, cfg->split,
                                     cfg->overlap, cfg->bucket_mb, run->id.seed};
    if (s == NCL_OK)
        s = ncl_replicas_create(cfg->devices ? picks : count ? &one : NULL, count, &device, &run->dist, &rp,
                                &run->train, &run->reps);
    free(picks);
    if (s != NCL_OK && cfg->resume_dir)   /* the model and its size came from the checkpoint */
        return ncl_fail_prefix(s, "%s: model '%s' at %dx%d, batch %d (from its metadata)", run->ckpt, run->model_path,
                               r->input_size, r->input_size, r->batch);
    NCL_TRY(s);
    run->ctx = run->reps.r[0].ctx;
    run->g = run->reps.r[0].g;
    int root = run->dist.rank == 0;
    /* an ONNX model starts from the file's weights unless asked to start as train_ch6 does */
    int keep_file_weights = run->onnx && !(cfg->init && strcmp(cfg->init, "xavier") == 0);
    NCL_TRY(cfg->resume_dir && root ? ncl_checkpoint_load(run->g, run->ckpt, NULL)
            : keep_file_weights     ? NCL_OK
                                    : ncl_graph_init_params(run->g, run->id.seed));
    if (root)
        NCL_TRY(ncl_device_data_create(run->ctx, &run->test, &run->test_dd));
    run->order = malloc((size_t)run->train.count * sizeof *run->order);
    if (!run->order)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the order of %lld examples",
                        (long long)run->train.count);
    return NCL_OK;
}

/* A new run's recipe from the config, checked. */
static enum ncl_status new_run(struct run *run)
{
    const struct ncl_train_config *cfg = run->cfg;
    int onnx = ncl_onnx_is_path(cfg->model);
    snprintf(run->id.model, sizeof run->id.model, "%s", onnx ? RUN_ONNX_NAME : cfg->model ? cfg->model : "");
    struct ncl_model_recipe known;
    NCL_TRY(ncl_model_default_recipe(onnx ? cfg->model : run->id.model, &known));
    if (cfg->init && strcmp(cfg->init, "xavier") != 0 && !(onnx && strcmp(cfg->init, "file") == 0))
        return ncl_fail(NCL_ERR_ARG, "init '%s': choose xavier%s", cfg->init,
                        onnx ? " or file (the ONNX file's weights, the default)" : " (file needs an ONNX model)");
    run->id.recipe = cfg->recipe;
    run->id.seed = cfg->seed;
    run->id.train_limit = cfg->train_limit > 0 ? cfg->train_limit : 0;
    run->id.test_limit = cfg->test_limit > 0 ? cfg->test_limit : 0;
    NCL_TRY(check_recipe(&run->id.recipe));
    if (cfg->out_dir && run->dist.rank == 0)
        NCL_TRY(check_out_dir(cfg->out_dir));
    return NCL_OK;
}

/* Every rank takes rank 0's run (its recipe, or on resume the checkpoint rank 0 read) and must
 * have been given the same one: ranks started with other flags would train another model. */
static enum ncl_status same_run_everywhere(struct run *run)
{
    if (run->dist.size == 1)
        return NCL_OK;
    struct {
        struct ncl_train_run_id id;
        struct ncl_train_progress_state p;
        int resume_epochs, resumed;
        char overlap[8];
        double bucket_mb;
    } mine = {run->id, run->p, run->cfg->resume_epochs, run->cfg->resume_dir != NULL, "", run->cfg->bucket_mb}, root;
    snprintf(mine.overlap, sizeof mine.overlap, "%s", run->cfg->overlap ? run->cfg->overlap : "auto");
    root = mine;
    NCL_TRY(ncl_dist_broadcast(&run->dist, &root, sizeof root));
    enum ncl_status s = NCL_OK;
    const struct ncl_model_recipe *a = &mine.id.recipe, *b = &root.id.recipe;
    if (mine.resumed != root.resumed || mine.resume_epochs != root.resume_epochs)
        s = ncl_fail(NCL_ERR_ARG, "was started with other --resume / --epochs than rank 0");
    else if (strcmp(mine.overlap, root.overlap) || mine.bucket_mb != root.bucket_mb)
        s = ncl_fail(NCL_ERR_ARG, "was started with --overlap %s --bucket-mb %g, rank 0 with %s and %g", mine.overlap,
                     mine.bucket_mb, root.overlap, root.bucket_mb);
    else if (!mine.resumed &&
             (strcmp(mine.id.model, root.id.model) || a->epochs != b->epochs || a->batch != b->batch ||
              a->input_size != b->input_size || a->lr != b->lr || a->momentum != b->momentum ||
              a->weight_decay != b->weight_decay || mine.id.seed != root.id.seed ||
              mine.id.train_limit != root.id.train_limit || mine.id.test_limit != root.id.test_limit))
        s = ncl_fail(NCL_ERR_ARG,
                     "was started with another recipe than rank 0 (model %s, batch %d, lr %g, %d epochs, seed "
                     "%llu; rank 0: %s, %d, %g, %d, %llu): start every rank with the same flags",
                     mine.id.model, a->batch, a->lr, a->epochs, (unsigned long long)mine.id.seed,
                     root.id.model, b->batch, b->lr, b->epochs, (unsigned long long)root.id.seed);
    run->id = root.id;
    run->p = root.p;
    return ncl_dist_agree(&run->dist, s);
}

/* Every rank's data must be rank 0's (same images in the same order). */
static enum ncl_status same_data_everywhere(struct run *run)
{
    if (run->dist.size == 1)
        return NCL_OK;
    char root[sizeof run->id.data_id];
    memcpy(root, run->id.data_id, sizeof root);
    NCL_TRY(ncl_dist_broadcast(&run->dist, root, sizeof root));
    enum ncl_status s = strcmp(root, run->id.data_id) == 0
                            ? NCL_OK
                            : ncl_fail(NCL_ERR_ARG, "its data (%s) is not rank 0's (%s): give every rank the same --data",
                                       run->id.data_id, root);
    return ncl_dist_agree(&run->dist, s);
}

static void fill_result(const struct run *run, struct ncl_train_result *res)
{
    memset(res, 0, sizeof *res);
    const struct ncl_train_history *h = &run->hist;
    snprintf(res->out_dir, sizeof res->out_dir, "%s", run->dir);
    if (run->have_checkpoint)
        snprintf(res->checkpoint, sizeof res->checkpoint, "%s", run->ckpt);
    res->epochs = run->id.recipe.epochs;
    res->epochs_done = h->count;
    res->steps = run->p.step;
    res->train_loss = res->train_acc = res->test_acc = NAN;
    res->replicas = run->reps.total;
    if (run->reps.steps) {
        res->compute_seconds_per_step = run->reps.compute_s / run->reps.steps;
        res->reduce_seconds_per_step = run->reps.reduce_s / run->reps.steps;
        res->overlap_seconds_per_step = run->reps.overlap_s / run->reps.steps;
    }
    res->buckets = run->reps.bucket_count;
    double examples = 0, seconds = 0;
    for (int i = 0; i < h->count; i++) {
        examples += h->speed[i] * h->seconds[i];
        seconds += h->seconds[i];
    }
    if (h->count) {
        res->train_loss = h->loss[h->count - 1];
        res->train_acc = h->train_acc[h->count - 1];
        res->test_acc = h->test_acc[h->count - 1];
        res->examples_per_sec = seconds > 0 ? examples / seconds : 0;
    }
}

/* The run folder keeps its ONNX model, so that resuming, evaluating and exporting it never
 * depend on the file it started from. */
static enum ncl_status copy_model(struct run *run)
{
    char *data;
    size_t len;
    char to[4200];
    snprintf(to, sizeof to, "%s/%s", run->dir, RUN_ONNX_NAME);
    if (ncl_read_file(run->model_path, (size_t)NCL_ONNX_MAX_FILE_BYTES, &data, &len) != 0)
        return ncl_fail(NCL_ERR_IO, "cannot read %s: %s", run->model_path, strerror(errno));
    int rc = ncl_write_file_atomic(to, data, len);
    free(data);
    if (rc != 0)
        return ncl_fail(NCL_ERR_IO, "cannot write %s: %s", to, strerror(errno));
    snprintf(run->model_path, sizeof run->model_path, "%s", to);
    return NCL_OK;
}

/* Everything before the first step: the recipe (the config's, or the checkpoint's on resume),
 * the data, the devices and model, and the output folder (*created: made by this run). In an
 * MPI run every rank takes each of these steps together and stops together if one fails. */
static enum ncl_status prepare(struct run *run, int *created)
{
    const struct ncl_train_config *cfg = run->cfg;
    NCL_TRY(ncl_dist_open(&run->dist, cfg->mpi));
    int root = run->dist.rank == 0;
    if (cfg->resume_dir) {
        snprintf(run->dir, sizeof run->dir, "%s", cfg->resume_dir);
        snprintf(run->ckpt, sizeof run->ckpt, "%s/checkpoint.safetensors", run->dir);
        run->have_checkpoint = 1;
    }
    NCL_TRY(ncl_dist_agree(&run->dist, cfg->resume_dir ? (root ? open_resume(run) : NCL_OK) : new_run(run)));
    NCL_TRY(same_run_everywhere(run));
    NCL_TRY(ncl_dist_agree(&run->dist, load_data(run)));
    NCL_TRY(same_data_everywhere(run));
    NCL_TRY(ncl_dist_agree(&run->dist, open_model(run)));
    NCL_TRY(ncl_replicas_sync_params(&run->reps));
    if (!cfg->resume_dir) {
        enum ncl_status s = root ? make_out_dir(cfg->out_dir, run->model_path, run->dir, sizeof run->dir, created)
                                 : NCL_OK;
        if (s == NCL_OK && root && run->onnx)
            s = copy_model(run);
        NCL_TRY(ncl_dist_agree(&run->dist, s));
        NCL_TRY(ncl_dist_broadcast(&run->dist, run->dir, sizeof run->dir));
        snprintf(run->ckpt, sizeof run->ckpt, "%s/checkpoint.safetensors", run->dir);
    }
    return NCL_OK;
}

enum ncl_status ncl_train(const struct ncl_train_config *cfg, struct ncl_train_result *result)
{
    if (!cfg)
        return ncl_fail(NCL_ERR_ARG, "ncl_train: cfg is NULL");
    struct run run = {.cfg = cfg};
    int created = 0;
    stop_requested = 0;
    enum ncl_status s = prepare(&run, &created);
    if (s == NCL_OK) {
        if (cfg->on_start && run.dist.rank == 0) {
            struct ncl_train_start info = {run.onnx ? run.model_path : run.id.model, ncl_ctx_device(run.ctx)->name,
                                           run.dir,          run.id.recipe,
                                           run.id.seed,      run.train.count,
                                           run.test.count,   cfg->resume_dir != NULL,
                                           run.p.epoch + 1};
            cfg->on_start(&info, cfg->user);
        }
        struct sigaction sa, old_int, old_term;
        if (cfg->handle_signals) {
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigaction(SIGINT, &sa, &old_int);
            sigaction(SIGTERM, &sa, &old_term);
        }
        s = train_loop(&run);
        if (s != NCL_OK && s != NCL_STOPPED && s != NCL_ERR_NUMERIC && run.dist.size > 1) {
            /* the other ranks wait for this one in a collective: end the job (the checkpoint
             * on disk is the last complete one) */
            fprintf(stderr, "nincl: rank %d: %s; ending the job\n", run.dist.rank, ncl_last_error());
            ncl_dist_abort(&run.dist, 1);
        }
        if (cfg->handle_signals) {
            sigaction(SIGINT, &old_int, NULL);
            sigaction(SIGTERM, &old_term, NULL);
        }
    }
    if (s != NCL_OK && created && !run.have_checkpoint)
        rmdir(run.dir);   /* a run that saved nothing leaves no folder (rmdir keeps one that is not empty) */
    if (result)
        fill_result(&run, result);
    run_free(&run);
    return s;
}
