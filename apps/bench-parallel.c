/* nincl bench --devices LIST, and nincl bench under mpirun: data parallel training speed. Two
 * epochs of `steps` global batches of the real training images through ncl_train (the second
 * epoch, warm, gives the speed), with the per-step time spent in the replicas' forward and
 * backward and in summing the gradients; in one process also one replica alone on the first
 * listed device, for the speed-up and the scaling efficiency (speed-up / replicas). */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-parallel.h"
#include "flags.h"
#include "remove-tree.h"
#include "run-util.h"

struct second_epoch {
    double speed;
};

static void on_epoch(const struct ncl_train_epoch *e, void *user)
{
    ((struct second_epoch *)user)->speed = e->examples_per_sec;
}

static enum ncl_status run(const struct parallel_bench *b, const char *devices, int mpi, const char *dir,
                           struct ncl_train_result *res, double *speed)
{
    struct ncl_train_config cfg;
    enum ncl_status s = ncl_train_config_init(&cfg, b->model);
    if (s != NCL_OK)
        return s;
    cfg.recipe.batch = b->batch;
    cfg.recipe.epochs = 2;
    if (b->resize)
        cfg.recipe.input_size = b->resize;
    cfg.train_limit = (int64_t)b->batch * b->steps;
    cfg.test_limit = b->batch;
    cfg.out_dir = dir;
    cfg.devices = devices;
    cfg.split = b->split;
    cfg.data_dir = b->data_dir;
    cfg.overlap = b->overlap;
    cfg.bucket_mb = b->bucket_mb;
    cfg.mpi = mpi;
    cfg.device = b->device;
    cfg.handle_signals = 0;
    struct second_epoch se = {0};
    cfg.on_epoch = on_epoch;
    cfg.user = &se;
    s = ncl_train(&cfg, res);
    *speed = se.speed;
    return s;
}

/* The first entry of a device list, for the one-replica baseline. */
static void first_entry(const char *list, char *out, size_t cap)
{
    snprintf(out, cap, "%s", list);
    char *comma = strchr(out, ',');
    if (comma)
        *comma = 0;
}

int bench_parallel(const struct parallel_bench *b)
{
    int mpi = 0, rank = 0, rc;
    if ((rc = mpi_start_if_launched("bench", &mpi, &rank)) >= 0)
        return rc;
    char base[] = "/tmp/nincl-bench-parallel-XXXXXX", dir[64], one[256];
    if (!mkdtemp(base)) {
        perror("nincl bench: mkdtemp");
        return EXIT_FAILURE_RUNTIME;
    }
    struct ncl_train_result res = {0}, res1 = {0};
    double speed = 0, speed1 = 0;
    snprintf(dir, sizeof dir, "%s/all", base);
    enum ncl_status s = run(b, b->devices, mpi, dir, &res, &speed);
    if (s == NCL_OK && !mpi && b->devices) {
        first_entry(b->devices, one, sizeof one);
        snprintf(dir, sizeof dir, "%s/one", base);
        s = run(b, one, 0, dir, &res1, &speed1);
    }
    if (rank == 0)
        remove_tree(base);
    if (s != NCL_OK && rank == 0)   /* before MPI ends (see cmd-train.c); rank 0 speaks for the job */
        fprintf(stderr, "nincl bench: %s\n", ncl_last_error());
    if (mpi)
        ncl_mpi_finalize();
    if (s != NCL_OK)
        return exit_code_for(s);
    if (rank != 0)
        return EXIT_OK;
    double compute = res.compute_seconds_per_step * 1e3, reduce = res.reduce_seconds_per_step * 1e3;
    double overlap = res.overlap_seconds_per_step * 1e3, speedup = speed1 > 0 ? speed / speed1 : 0;
    if (b->json) {
        printf("{\"framework\": \"nincl\", \"model\": \"%s\", \"batch\": %d, \"replicas\": %d, \"mpi\": %s, "
               "\"train_images_per_sec\": %.2f, \"compute_ms_per_step\": %.3f, \"reduce_ms_per_step\": %.3f, "
               "\"overlap_ms_per_step\": %.3f, \"buckets\": %d, ",
               b->model, b->batch, res.replicas, mpi ? "true" : "false", speed, compute, reduce, overlap, res.buckets);
        if (speed1 > 0)
            printf("\"one_replica_images_per_sec\": %.2f, \"speedup\": %.4f, \"efficiency\": %.4f}\n", speed1, speedup,
                   speedup / res.replicas);
        else
            printf("\"one_replica_images_per_sec\": null, \"speedup\": null, \"efficiency\": null}\n");
        return EXIT_OK;
    }
    printf("%s, global batch %d on %d replicas%s: %.1f examples/s training\n", b->model, b->batch, res.replicas,
           mpi ? " (MPI)" : "", speed);
    printf("per step: %s\n", parallel_step_figures(&res));
    if (speed1 > 0)
        printf("one replica on %s: %.1f examples/s; speed-up %.2fx, scaling efficiency %.0f%%\n", one, speed1,
               speedup, 100 * speedup / res.replicas);
    else
        printf("(under mpirun there is no one-replica baseline: run nincl bench --devices 0:0 beside it)\n");
    return EXIT_OK;
}
