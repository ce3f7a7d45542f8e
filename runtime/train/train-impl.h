/* Private: the pieces of the training loop (runtime/train/trainer.c) that live in their own files:
 * the per-epoch history and the files written from it (train-files.c), and the run's state
 * kept in the checkpoint's metadata (train-state.c). */
#ifndef NCL_TRAIN_IMPL_H
#define NCL_TRAIN_IMPL_H

#include <stddef.h>

#include "file-impl.h"
#include "status-impl.h"

#define NCL_TRAIN_MAX_EPOCHS 10000
#define NCL_TRAIN_FORMAT "nincl-train-1"

/* One row per finished epoch. */
struct ncl_train_history {
    int count;
    double *loss, *train_acc, *test_acc, *speed, *seconds;
};
int ncl_history_add(struct ncl_train_history *h, double loss, double train_acc, double test_acc, double speed,
                    double seconds);
void ncl_history_free(struct ncl_train_history *h);
/* "loss,train_acc,test_acc,speed,seconds;..." with every digit (%.17g), so a resumed run
 * rewrites metrics.csv with exactly the numbers the original printed. NULL without memory. */
char *ncl_history_encode(const struct ncl_train_history *h);
int ncl_history_decode(const char *s, struct ncl_train_history *h);
/* DIR/metrics.csv and DIR/curves.svg, each written atomically; -1 if either failed. */
int ncl_history_write_files(const char *dir, const struct ncl_train_history *h, int epochs_total);

/* Where a run stands: saved in the checkpoint's metadata with the recipe. */
struct ncl_train_progress_state {
    int epoch;                  /* completed epochs */
    int batch_index;            /* batches done in the current epoch */
    uint64_t step;              /* optimizer steps so far */
    double partial_loss, partial_seconds;   /* the current epoch's metrics before an interruption */
    int64_t partial_correct, partial_count;
};

/* What identifies a run: its recipe and data. */
struct ncl_train_run_id {
    char model[64];
    struct ncl_model_recipe recipe;
    uint64_t seed;
    int64_t train_limit, test_limit;
    char data_id[96];           /* ncl_data_identity of the data it trains on */
};

/* "<train count>/<test count>/<FNV-1a 64 of images and labels>": a resumed run must see the very
 * data it started on (the checksum of Fashion-MNIST takes a few tens of milliseconds). */
void ncl_data_identity(const struct ncl_dataset *train, const struct ncl_dataset *test, char *out, size_t cap);

/* Saves the parameters to path with the run and where it stands in the metadata. */
enum ncl_status ncl_train_state_save(struct ncl_graph *g, const char *path, const struct ncl_train_run_id *run,
                                     const struct ncl_train_progress_state *p, const struct ncl_train_history *h);
/* Reads a run's checkpoint metadata, checking every value (NCL_ERR_FORMAT naming the file and
 * the key). data_id is "" for checkpoints older than the data check. */
enum ncl_status ncl_train_state_read(const struct ncl_st_file *f, const char *path, struct ncl_train_run_id *run,
                                     struct ncl_train_progress_state *p, struct ncl_train_history *h);
/* Whether where a checkpoint stands fits `ntrain` images in its batches (else the shuffling and
 * dropout masks would differ from the original run): NCL_ERR_ARG if not. */
enum ncl_status ncl_train_state_check_fits(const char *path, const struct ncl_train_run_id *run,
                                           const struct ncl_train_progress_state *p, int64_t ntrain);

#endif
