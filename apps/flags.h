/* Command-line flags: `--name value` or `--name=value`, typed and range-checked, with --help
 * generated from the table. Unknown flags are errors with a hint. */
#ifndef NCL_FLAGS_H
#define NCL_FLAGS_H

#include <stdint.h>

#include "nincl.h"

enum flag_type { FLAG_STRING, FLAG_INT, FLAG_FLOAT, FLAG_U64, FLAG_BOOL };

struct flag {
    const char *name;       /* without the dashes */
    enum flag_type type;
    void *value;            /* const char **, int *, float *, uint64_t *, int * */
    const char *help;
    double min, max;        /* numeric range (inclusive); min_exclusive makes min a strict bound */
    int min_exclusive;
    int set;                /* filled in: given on the command line */
};

/* Exit codes of the nincl command. */
enum { EXIT_OK = 0, EXIT_FAILURE_RUNTIME = 1, EXIT_USAGE = 2 };

/* Returns -1 to go on, or an exit code (0 after --help, 2 on a usage error, message printed). */
int flags_parse(const char *command, const char *summary, struct flag *flags, int count, int argc, char **argv);

/* The flags every subcommand that uses a device shares. */
struct device_flags {
    const char *platform, *device, *kernel_dir, *gemm, *conv, *kernels;
};
#define DEVICE_FLAGS(df)                                                                                         \
    {"platform", FLAG_STRING, &(df).platform, "OpenCL platform: index or name substring (env NINCL_PLATFORM)", 0, \
     0, 0, 0},                                                                                                   \
    {"device", FLAG_STRING, &(df).device,                                                                       \
     "device: index or name/type substring, e.g. gpu (env NINCL_DEVICE; default: first GPU, else first device)", \
     0, 0, 0, 0},                                                                                                \
    {"kernel-dir", FLAG_STRING, &(df).kernel_dir, "load kernels/*.cl from this folder (env NINCL_KERNEL_DIR)", 0, \
     0, 0, 0},                                                                                                   \
    {"gemm", FLAG_STRING, &(df).gemm, "GEMM implementation: auto, clblast or packed (env NINCL_GEMM)", 0, 0, 0, 0}, \
    {"conv", FLAG_STRING, &(df).conv,                                                                           \
     "3x3 and 5x5 stride-1 convolutions: auto (Winograd on CPUs), winograd or im2col (env NINCL_CONV)", 0, 0, 0, 0}, \
    {"kernels", FLAG_STRING, &(df).kernels,                                                                     \
     "kernel variants: auto (what measured faster on the device), cpu, gpu or measure (time both now; env "      \
     "NINCL_KERNELS)", 0, 0, 0, 0}

/* The data parallel flags of train and bench: how the gradient sum overlaps backward. */
#define OVERLAP_FLAGS(overlap, bucket_mb)                                                                        \
    {"overlap", FLAG_STRING, &(overlap),                                                                         \
     "data parallel: sum gradients in buckets while backward runs: auto (on GPUs), on or off", 0, 0, 0, 0},      \
    {"bucket-mb", FLAG_FLOAT, &(bucket_mb), "with --overlap: MiB of gradients a bucket (0: 2)", 0, 4096, 0, 0}

/* Opens the selected device, printing the error; returns -1 on success or an exit code. */
int open_device(const struct device_flags *df, int profile, struct ncl_ctx **ctx);
/* Exit code for a failed runtime call: 2 for bad input (arguments, files, shapes), 1 otherwise. */
int exit_code_for(enum ncl_status s);

#endif
