/* The training loop as a library call (ncl_train), on the real Fashion-MNIST and the device
 * present, with nin-small on a few hundred images:
 * (a) a run calls on_start once, on_progress within each epoch and on_epoch after each, in
 *     order, and its result, checkpoint and metrics.csv agree with what the callbacks saw;
 * (b) ncl_train_stop from a callback stops the run inside an epoch with NCL_STOPPED and a
 *     checkpoint; resuming it gives the uninterrupted run's parameters bit for bit;
 * (c) with handle_signals, a SIGINT stops it the same way and the caller's handler is back
 *     afterwards;
 * (d) bad input comes back as a status and a message, never an exit: unknown model, bad
 *     recipe, missing data, an output folder holding a run, resuming a finished run. */
#define _DEFAULT_SOURCE
#include "check.h"
#include "nincl.h"
#include "remove-tree.h"
#include "run-compare.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGES 192   /* 3 batches of 64 per epoch */

struct seen {
    int starts, progresses, epochs, last_epoch, order_ok;
    int stop_at_epoch;          /* call ncl_train_stop at the first progress report of this epoch */
    int raise_at_epoch;         /* raise(SIGINT) there instead */
    double last_loss;
    int64_t last_done;
};

static volatile sig_atomic_t callers_handler_ran;
static void callers_handler(int sig)
{
    (void)sig;
    callers_handler_ran = 1;
}

static void on_start(const struct ncl_train_start *s, void *user)
{
    struct seen *seen = user;
    seen->starts++;
    seen->order_ok &= s->train_count == IMAGES && s->recipe.batch == 64 && s->recipe.input_size == 28;
}

static void on_progress(const struct ncl_train_progress *p, void *user)
{
    struct seen *seen = user;
    seen->progresses++;
    seen->order_ok &= p->epoch == seen->last_epoch + 1 && p->done > 0 && p->done <= p->total && p->total == IMAGES;
    seen->last_done = p->done;
    if (seen->stop_at_epoch == p->epoch)
        ncl_train_stop();
    if (seen->raise_at_epoch == p->epoch)
        raise(SIGINT);
}

static void on_epoch(const struct ncl_train_epoch *e, void *user)
{
    struct seen *seen = user;
    seen->epochs++;
    seen->order_ok &= e->epoch == seen->last_epoch + 1 && seen->last_done == IMAGES;
    seen->last_epoch = e->epoch;
    seen->last_loss = e->train_loss;
}

static void config(struct ncl_train_config *cfg, struct seen *seen, const char *out)
{
    CHECK(ncl_train_config_init(cfg, "nin-small") == NCL_OK, "%s", ncl_last_error());
    cfg->recipe.epochs = 2;
    cfg->train_limit = IMAGES;
    cfg->test_limit = 64;
    cfg->out_dir = out;
    cfg->progress_interval_s = 1e-9;   /* a report after every step */
    cfg->handle_signals = 0;
    cfg->on_start = on_start;
    cfg->on_progress = on_progress;
    cfg->on_epoch = on_epoch;
    cfg->user = seen;
    memset(seen, 0, sizeof *seen);
    seen->order_ok = 1;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

int main(void)
{
    char base[] = "/tmp/nincl-test-trainer-XXXXXX", whole[128], cut[128], sig[128], path[256];
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(whole, sizeof whole, "%s/whole", base);
    snprintf(cut, sizeof cut, "%s/cut", base);
    snprintf(sig, sizeof sig, "%s/sig", base);
    struct ncl_train_config cfg;
    struct ncl_train_result res;
    struct seen seen;

    /* (a) */
    config(&cfg, &seen, whole);
    enum ncl_status s = ncl_train(&cfg, &res);
    CHECK(s == NCL_OK, "whole run: %s: %s", ncl_status_str(s), ncl_last_error());
    CHECK(seen.starts == 1 && seen.epochs == 2 && seen.progresses >= 6 && seen.order_ok,
          "callbacks: %d starts, %d epochs, %d progress reports, in order %d", seen.starts, seen.epochs,
          seen.progresses, seen.order_ok);
    CHECK(res.epochs == 2 && res.epochs_done == 2 && res.steps == 6 && res.train_loss == seen.last_loss &&
              res.test_acc >= 0 && res.test_acc <= 1 && res.examples_per_sec > 0,
          "result: %d of %d epochs, %llu steps, loss %g (callback %g)", res.epochs_done, res.epochs,
          (unsigned long long)res.steps, res.train_loss, seen.last_loss);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", whole);
    CHECK(strcmp(res.checkpoint, path) == 0 && strcmp(res.out_dir, whole) == 0, "result paths %s, %s",
          res.checkpoint, res.out_dir);
    snprintf(path, sizeof path, "%s/metrics.csv", whole);
    CHECK(count_lines(path) == 3, "metrics.csv has %d lines, want a header and 2 epochs", count_lines(path));

    /* (b) stopped in epoch 2 after its first step, then resumed to the end */
    config(&cfg, &seen, cut);
    seen.stop_at_epoch = 2;
    s = ncl_train(&cfg, &res);
    CHECK(s == NCL_STOPPED && res.checkpoint[0] && res.steps == 4 && res.epochs_done == 1,
          "stopped run: %s (%s), %llu steps, %d epochs done", ncl_status_str(s), ncl_last_error(),
          (unsigned long long)res.steps, res.epochs_done);
    CHECK(strstr(ncl_last_error(), "checkpoint saved") != NULL, "stop message: %s", ncl_last_error());
    config(&cfg, &seen, NULL);
    cfg.resume_dir = cut;
    s = ncl_train(&cfg, &res);
    CHECK(s == NCL_OK && res.steps == 6 && res.epochs_done == 2 && seen.epochs == 1,
          "resumed run: %s (%s), %llu steps, %d epochs", ncl_status_str(s), ncl_last_error(),
          (unsigned long long)res.steps, res.epochs_done);
    int bitwise = 0;
    run_param_difference(whole, cut, &bitwise);
    CHECK(bitwise, "the stopped and resumed run's parameters differ from the uninterrupted run's");

    /* (c) SIGINT with handle_signals: stopped, and the caller's handler is back */
    config(&cfg, &seen, sig);
    cfg.handle_signals = 1;
    seen.raise_at_epoch = 1;
    struct sigaction mine = {.sa_handler = callers_handler}, now;
    sigaction(SIGINT, &mine, NULL);
    s = ncl_train(&cfg, &res);
    sigaction(SIGINT, NULL, &now);
    CHECK(s == NCL_STOPPED && res.steps == 1 && !callers_handler_ran, "SIGINT: %s, %llu steps, caller's handler %d",
          ncl_status_str(s), (unsigned long long)res.steps, callers_handler_ran);
    CHECK(now.sa_handler == callers_handler, "SIGINT's handler was not restored");

    /* (d) */
    CHECK(ncl_train_config_init(&cfg, "resnet-9000") == NCL_ERR_ARG && strstr(ncl_last_error(), "resnet-9000"),
          "unknown model: %s", ncl_last_error());
    config(&cfg, &seen, NULL);
    cfg.recipe.batch = 0;
    CHECK(ncl_train(&cfg, NULL) == NCL_ERR_ARG && strstr(ncl_last_error(), "batch"), "batch 0: %s",
          ncl_last_error());
    config(&cfg, &seen, NULL);
    cfg.data_dir = "/nonexistent/fashion-mnist";
    CHECK(ncl_train(&cfg, NULL) == NCL_ERR_IO && strstr(ncl_last_error(), "/nonexistent/fashion-mnist"),
          "missing data: %s", ncl_last_error());
    config(&cfg, &seen, whole);
    CHECK(ncl_train(&cfg, NULL) == NCL_ERR_ARG && strstr(ncl_last_error(), "already holds"), "run's folder: %s",
          ncl_last_error());
    config(&cfg, &seen, NULL);
    cfg.resume_dir = whole;
    CHECK(ncl_train(&cfg, NULL) == NCL_ERR_ARG && strstr(ncl_last_error(), "already finished 2 of 2"),
          "finished run: %s", ncl_last_error());
    CHECK(seen.starts == 0, "a refused run called on_start");

    remove_tree(base);
    return check_done("test-trainer");
}
