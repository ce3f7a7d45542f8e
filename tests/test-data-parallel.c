/* Data parallel training in one process follows one device (ncl_train with devices), on the
 * real Fashion-MNIST with nin-small (which has dropout) on the device present, each replica a
 * context of its own on it:
 * (a) 2 replicas (32 + 32 images a step) and 3 replicas (21 + 21 + 22, an uneven split), with a
 *     partial last batch (200 images in batches of 64), give every epoch's loss within 1e-5
 *     relative of one device's, and parameters within 1e-4 of the largest;
 * (b) their checkpoints are interchangeable: a 2-replica run resumed on one device ends as the
 *     one-device run does;
 * The runs use lr 0.005 rather than nin-small's 0.02: at 0.02 its first steps amplify any
 * rounding difference (a max-pool's argmax flips between near-equal values) so far that one
 * device running im2col instead of Winograd differs by 1.6e-4 of the largest parameter after
 * 4 steps; at 0.005, 2 or 3 replicas stay within ~1e-6 over 8 steps, rounding's own size.
 * (c) bad lists: an empty entry, a device that matches nothing, a batch smaller than the
 *     number of replicas, an unknown split or overlap;
 * (d) the gradient sum in buckets overlapped with backward (--overlap on, buckets of 64 KiB)
 *     gives exactly the parameters of the sum after backward, and a last batch of one image
 *     (193 images) leaves a replica without images: it adds nothing to the sum (it once added
 *     its stale gradients, 1e-3 of the largest parameter off). */
#define _DEFAULT_SOURCE
#include "check.h"
#include "nincl.h"
#include "remove-tree.h"
#include "run-compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCHS 2

struct losses {
    double loss[EPOCHS];
    int epochs;
};

static void on_epoch(const struct ncl_train_epoch *e, void *user)
{
    struct losses *l = user;
    if (e->epoch >= 1 && e->epoch <= EPOCHS)
        l->loss[e->epoch - 1] = e->train_loss;
    l->epochs++;
}

static int64_t train_limit = 200;
static const char *overlap;
static int buckets;   /* of the last run */

static enum ncl_status run(const char *out, const char *resume, const char *devices, int epochs, struct losses *l)
{
    struct ncl_train_config cfg;
    ncl_train_config_init(&cfg, "nin-small");
    cfg.recipe.epochs = epochs;
    cfg.recipe.lr = 0.005f;
    cfg.train_limit = train_limit;
    cfg.test_limit = 64;
    cfg.handle_signals = 0;
    cfg.overlap = overlap;
    cfg.bucket_mb = 1.0 / 16;
    cfg.out_dir = resume ? NULL : out;
    cfg.resume_dir = resume;
    cfg.resume_epochs = resume ? epochs : 0;
    cfg.devices = devices;
    cfg.on_epoch = on_epoch;
    cfg.user = l;
    memset(l, 0, sizeof *l);
    struct ncl_train_result res;
    enum ncl_status s = ncl_train(&cfg, &res);
    CHECK(s == NCL_OK, "%s (%s): %s", out, devices ? devices : "one device", ncl_last_error());
    buckets = res.buckets;
    return s;
}

int main(void)
{
    char base[] = "/tmp/nincl-test-dp-XXXXXX", one[128], two[128], three[128], cut[128];
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(one, sizeof one, "%s/one", base);
    snprintf(two, sizeof two, "%s/two", base);
    snprintf(three, sizeof three, "%s/three", base);
    snprintf(cut, sizeof cut, "%s/cut", base);
    struct losses l1, l2, l3, lc;
    run(one, NULL, NULL, EPOCHS, &l1);
    run(two, NULL, "0:0,0:0", EPOCHS, &l2);
    run(three, NULL, "0:0,0:0,0:0", EPOCHS, &l3);
    for (int e = 0; e < EPOCHS; e++) {
        printf("  epoch %d loss: 1 device %.9f, 2 replicas %.9f, 3 replicas %.9f\n", e + 1, l1.loss[e], l2.loss[e],
               l3.loss[e]);
        CHECK(fabs(l2.loss[e] - l1.loss[e]) <= 1e-5 * fabs(l1.loss[e]), "2 replicas, epoch %d: loss %.9g vs %.9g",
              e + 1, l2.loss[e], l1.loss[e]);
        CHECK(fabs(l3.loss[e] - l1.loss[e]) <= 1e-5 * fabs(l1.loss[e]), "3 replicas, epoch %d: loss %.9g vs %.9g",
              e + 1, l3.loss[e], l1.loss[e]);
    }
    double d2 = run_param_difference(one, two, NULL), d3 = run_param_difference(one, three, NULL);
    printf("  parameters: largest difference / largest value: 2 replicas %.3g, 3 replicas %.3g\n", d2, d3);
    CHECK(d2 <= 1e-4 && d3 <= 1e-4, "parameters differ: %g, %g", d2, d3);

    /* (b) one epoch on 2 replicas, the second on one device */
    run(cut, NULL, "0:0,0:0", 1, &lc);
    run(cut, cut, NULL, EPOCHS, &lc);
    CHECK(lc.epochs == 1 && fabs(lc.loss[1] - l1.loss[1]) <= 1e-5 * fabs(l1.loss[1]),
          "resumed on one device: epoch 2 loss %.9g vs %.9g", lc.loss[1], l1.loss[1]);
    double dc = run_param_difference(one, cut, NULL);
    CHECK(dc <= 1e-4, "the resumed run's parameters differ by %g", dc);

    /* (c) */
    struct ncl_train_config cfg;
    static const struct {
        const char *devices, *split, *overlap, *needle;
        int batch;
        enum ncl_status want;
    } bad[] = {
        {"0:0,,0:0", NULL, NULL, "entry 2 is empty", 64, NCL_ERR_ARG},
        {"0:0,no-such-device", NULL, NULL, "no-such-device", 64, NCL_ERR_NO_DEVICE},
        {"0:0,0:0,0:0", NULL, NULL, "cannot be split between 3 replicas", 2, NCL_ERR_ARG},
        {"0:0,0:0", "fastest", NULL, "unknown split 'fastest'", 64, NCL_ERR_ARG},
        {"0:0,0:0", NULL, "early", "unknown overlap 'early'", 64, NCL_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ncl_train_config_init(&cfg, "nin-small");
        cfg.train_limit = 64;
        cfg.test_limit = 64;
        cfg.handle_signals = 0;
        cfg.recipe.batch = bad[i].batch;
        cfg.devices = bad[i].devices;
        cfg.split = bad[i].split;
        cfg.overlap = bad[i].overlap;
        snprintf(cut, sizeof cut, "%s/bad%zu", base, i);
        cfg.out_dir = cut;
        enum ncl_status s = ncl_train(&cfg, NULL);
        CHECK(s == bad[i].want && strstr(ncl_last_error(), bad[i].needle), "devices '%s': %s: %s", bad[i].devices,
              ncl_status_str(s), ncl_last_error());
    }

    /* (d) */
    char on[128], off[128], one193[128];
    snprintf(on, sizeof on, "%s/on", base);
    snprintf(off, sizeof off, "%s/off", base);
    snprintf(one193, sizeof one193, "%s/one193", base);
    struct losses lon, loff, l193;
    train_limit = 193;
    run(one193, NULL, NULL, 1, &l193);
    overlap = "on";
    run(on, NULL, "0:0,0:0", 1, &lon);
    int on_buckets = buckets;
    CHECK(on_buckets >= 4, "--overlap on with 64 KiB buckets: %d buckets", on_buckets);
    overlap = "off";
    run(off, NULL, "0:0,0:0", 1, &loff);
    int same = 0;
    double d_on_off = run_param_difference(on, off, &same), d_one = run_param_difference(one193, on, NULL);
    printf("  193 images: overlapped (%d buckets) vs not %.3g (%s), vs one device %.3g of the largest parameter\n",
           on_buckets, d_on_off, same ? "bit-identical" : "not bit-identical", d_one);
    CHECK(same, "the overlapped sum changed the parameters by %g", d_on_off);
    CHECK(d_one <= 1e-4, "a last batch of one image: 2 replicas differ from one device by %g", d_one);
    remove_tree(base);
    return check_done("test-data-parallel");
}
