/* Trains nin-small (a NiN for 28x28 images) on Fashion-MNIST through the nincl library and
 * prints each epoch, with a checkpoint, metrics.csv and curves.svg in OUT_DIR; Ctrl-C stops
 * it with a checkpoint, and running it again with the same OUT_DIR continues the run.
 *   train-nin-small [OUT_DIR [IMAGES]]     IMAGES: use only that many images of each split
 * Build: cc train-nin-small.c $(pkg-config --cflags --libs nincl), or CMake's
 * find_package(nincl) with target_link_libraries(app nincl::nincl) (examples/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <nincl.h>

static void print_epoch(const struct ncl_train_epoch *e, void *user)
{
    (void)user;
    printf("epoch %d/%d: loss %.3f, train acc %.3f, test acc %.3f, %.1f examples/sec\n", e->epoch, e->epochs,
           e->train_loss, e->train_acc, e->test_acc, e->examples_per_sec);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "nin-small-run";
    struct ncl_train_config cfg;
    if (ncl_train_config_init(&cfg, "nin-small") != NCL_OK) {
        fprintf(stderr, "%s\n", ncl_last_error());
        return 1;
    }
    cfg.train_limit = cfg.test_limit = argc > 2 ? atoll(argv[2]) : 0;
    struct stat st;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    if (stat(ckpt, &st) == 0)
        cfg.resume_dir = out;   /* a run is there already: continue it */
    else
        cfg.out_dir = out;
    cfg.on_epoch = print_epoch;

    struct ncl_train_result res;
    enum ncl_status s = ncl_train(&cfg, &res);
    if (s == NCL_OK)
        printf("test acc %.3f after %d epochs; checkpoint %s\n", res.test_acc, res.epochs_done, res.checkpoint);
    else
        fprintf(stderr, "%s: %s\n", ncl_status_str(s), ncl_last_error());
    return s == NCL_OK ? 0 : s == NCL_STOPPED ? 130 : 1;
}
