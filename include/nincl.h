/* nincl — build a CNN layer graph and train it with OpenCL on any OpenCL device.
 *
 * The whole d2l training loop in one call (checkpoints, metrics.csv, resume, Ctrl-C):
 *
 *   struct ncl_train_config cfg;
 *   ncl_train_config_init(&cfg, "nin-small");           // the model's recipe; change any field
 *   cfg.out_dir = "runs/mine";
 *   struct ncl_train_result res;
 *   if (ncl_train(&cfg, &res) != NCL_OK) fprintf(stderr, "%s\n", ncl_last_error());
 *
 * Build against it with `pkg-config --cflags --libs nincl`, or CMake's find_package(nincl)
 * and target nincl::nincl (examples/ has a complete program).
 *
 * Step by step (error handling shortened; every fallible call returns enum ncl_status, 0 = OK,
 * and ncl_last_error() says what went wrong):
 *
 *   struct ncl_ctx *ctx;
 *   struct ncl_ctx_params cp = { .platform = NULL, .device = "gpu" };   // NULL: first GPU, else first device
 *   if (ncl_ctx_create(&cp, &ctx)) { fprintf(stderr, "%s\n", ncl_last_error()); return 1; }
 *
 *   struct ncl_graph *g;
 *   ncl_model_build(ctx, "nin", (struct ncl_shape){ .n = 128, .c = 1, .h = 224, .w = 224 }, &g);
 *   ncl_graph_init_params(g, 42);                      // Xavier-uniform weights, PyTorch bias init
 *   struct ncl_sgd_params sgd = { .lr = 0.1f };
 *   for (...) {
 *       ncl_graph_write_input(g, images, 128);          // host NCHW floats (or ncl_data_* on device)
 *       ncl_graph_write_labels(g, labels, 128);
 *       ncl_graph_forward(g, 128, NCL_MODE_TRAIN, step);
 *       ncl_graph_loss(g, 128);                         // softmax cross-entropy, mean over the batch
 *       ncl_graph_backward(g, 128);
 *       ncl_graph_sgd_step(g, &sgd);
 *   }
 *   struct ncl_metrics m; ncl_graph_read_metrics(g, &m, 1);
 *   ncl_graph_free(g); ncl_ctx_free(ctx);
 *
 * Conventions. Every fallible call returns enum ncl_status (NCL_OK = 0) and leaves a message
 * for ncl_last_error(); nothing in the library prints (except the warnings of ncl_train and
 * ncl_ctx_create when no on_warning callback is given) or exits. An object made by ncl_X_create /
 * ncl_model_build belongs to the caller until ncl_X_free, and every *_free takes NULL. A graph uses its context,
 * so free graphs (and device data) before their context. Strings and structs the library hands
 * out (ncl_last_error, ncl_status_str, ncl_ctx_device, layer infos) stay valid while their object
 * lives (ncl_last_error: until the next failure on the thread); strings passed in are copied or
 * used only during the call. Buffers are the caller's: the library reads or fills them.
 * Calls on one context must come from one thread at a time.
 *
 * Activations live on the device in CNHW order (channel-major: all images of channel 0, then
 * channel 1, ...), which turns every convolution into one large GEMM over batch x pixels.
 * The host-facing calls (write_input, read_output) take and give NCHW like PyTorch.
 */
#ifndef NINCL_H
#define NINCL_H

#include <stddef.h>
#include <stdint.h>

#define NINCL_VERSION_MAJOR 0
#define NINCL_VERSION_MINOR 7
#define NINCL_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif
/* The library is built with hidden symbols; what this header declares is its interface. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* "0.5.0 (git 7aef0ce)": the library's version and the commit it was built from. */
const char *ncl_version(void);

enum ncl_status {
    NCL_OK = 0,
    NCL_ERR_ARG,          /* an argument is out of range or inconsistent */
    NCL_ERR_NO_PLATFORM,  /* no OpenCL platform at all */
    NCL_ERR_NO_DEVICE,    /* the platform/device selection matches nothing */
    NCL_ERR_OPENCL,       /* an OpenCL call failed (code in the message) */
    NCL_ERR_BUILD,        /* a kernel failed to build (file, options and log in the message) */
    NCL_ERR_NO_MEMORY,    /* host or device memory refused */
    NCL_ERR_SHAPE,        /* a layer's output would be empty or shapes disagree */
    NCL_ERR_IO,           /* a file could not be opened, read or written */
    NCL_ERR_FORMAT,       /* a file's contents are malformed */
    NCL_ERR_GEMM,         /* the GEMM backend (CLBlast) failed */
    NCL_ERR_NUMERIC,      /* a NaN or infinity appeared */
    NCL_STOPPED,          /* ncl_train was stopped (ncl_train_stop, or a signal) after saving a checkpoint */
    NCL_STATUS_COUNT
};

/* A short constant name for a status ("out of memory"). */
const char *ncl_status_str(enum ncl_status s);
/* The message of the last failure on this thread (never NULL). Failures before a context
 * exists (device selection, data files) use the same channel. */
const char *ncl_last_error(void);

/* ---- devices ---------------------------------------------------------------------------- */

struct ncl_device_info {
    int platform_index, device_index;
    char platform_name[128];
    char name[128];
    char vendor[128];
    char type[16];              /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
    char version[64];           /* CL_DEVICE_VERSION */
    char opencl_c_version[64];
    char driver_version[64];
    unsigned compute_units;
    uint64_t global_mem_bytes, max_alloc_bytes, local_mem_bytes;
    size_t max_work_group_size;
};

/* All devices of all platforms; *list is malloc'ed (free() it). NCL_ERR_NO_PLATFORM when
 * the machine has no OpenCL platform. */
enum ncl_status ncl_device_list(struct ncl_device_info **list, int *count);

struct ncl_ctx_params {
    const char *platform;   /* index or case-insensitive name substring; NULL: $NINCL_PLATFORM, else any */
    const char *device;     /* likewise, also matches the type ("gpu", "cpu"); NULL: $NINCL_DEVICE,
                               else the first GPU, else the first device */
    const char *kernel_dir; /* load the kernels (<op>.cl files) from here instead of the embedded copies;
                               NULL: $NINCL_KERNEL_DIR, else embedded */
    const char *gemm;       /* GEMM implementation: "auto" (NULL), "clblast", "packed" */
    const char *kernels;    /* kernel variants: "cpu" or "gpu" (tests run both on one device); NULL or
                               "auto": $NINCL_KERNELS, else what measured faster on the device: from a
                               table of measured devices, else from the tuning cache, else timed once
                               at this call (a few seconds; cached, keyed by device, driver and kernel
                               sources, in $NINCL_CACHE_DIR, else $XDG_CACHE_HOME/nincl, else
                               ~/.cache/nincl); "measure": time it now, whatever table and cache say */
    const char *conv;       /* 3x3 and 5x5 stride-1 convolutions: "winograd" or "im2col"; NULL or "auto":
                               $NINCL_CONV, else Winograd with the CPU kernel variants, im2col otherwise */
    int profile;            /* create the queue with profiling enabled (nincl bench) */
    /* the context's notes (a measurement starting, a damaged tuning cache ignored); NULL: printed
       to stderr as "nincl: <message>" */
    void (*on_warning)(const char *message, void *user);
    void *warning_user;
};

struct ncl_ctx;
/* Opens the device p selects (p may be NULL: all defaults) with one in-order queue; kernels are
 * built on first use and cached in the context. NCL_ERR_NO_PLATFORM / NCL_ERR_NO_DEVICE (the
 * message lists what is there) when nothing matches. */
enum ncl_status ncl_ctx_create(const struct ncl_ctx_params *p, struct ncl_ctx **out);
void ncl_ctx_free(struct ncl_ctx *ctx);
/* The context's device (owned by the context). */
const struct ncl_device_info *ncl_ctx_device(const struct ncl_ctx *ctx);
/* The kernel variants the context runs, "cpu" or "gpu"; *how (if how is not NULL) says why:
 * "forced", "measured on this device: cpu 812.0 ms, gpu 95.3 ms a step", ... (owned by ctx). */
const char *ncl_ctx_kernel_variants(const struct ncl_ctx *ctx, const char **how);
/* Device bytes the context holds outside graphs (GEMM packing buffers). */
uint64_t ncl_ctx_device_bytes(const struct ncl_ctx *ctx);
/* Marks the end of a step and waits until at most max_in_flight (1..8) marked steps are still
 * queued: the device never idles between steps, and the host never runs far ahead of it (so
 * an interruption or a metrics read waits for a step or two, not for everything enqueued). */
enum ncl_status ncl_ctx_throttle(struct ncl_ctx *ctx, int max_in_flight);
/* Wait for all work queued on the context's device. */
enum ncl_status ncl_ctx_finish(struct ncl_ctx *ctx);

/* ---- graph -------------------------------------------------------------------------------- */

/* A 4-d shape in PyTorch's order. For a flattened tensor h = w = 1. */
struct ncl_shape {
    int n, c, h, w;
};

enum ncl_mode { NCL_MODE_EVAL, NCL_MODE_TRAIN, NCL_MODE_COUNT };

struct ncl_conv_params {
    int out_channels, kernel, stride, pad;
    int relu;               /* fuse a ReLU after the bias */
};

struct ncl_graph;

/* input.n is the largest batch the graph will ever run; all device memory is planned for it
 * by ncl_graph_reserve and nothing is allocated afterwards. */
enum ncl_status ncl_graph_create(struct ncl_ctx *ctx, struct ncl_shape input, struct ncl_graph **out);
void ncl_graph_free(struct ncl_graph *g);
/* The context the graph was created on (not owned by the graph). */
struct ncl_ctx *ncl_graph_ctx(const struct ncl_graph *g);

/* Layers are added in order; each one's input is the previous one's output. `name` is the
 * layer's PyTorch module path (parameters are saved as "<name>.weight"), `group` the module
 * whose output `nincl shapes` prints (e.g. "Sequential"); consecutive layers with the same
 * group index form one printed block. An input too small for the layer fails with
 * NCL_ERR_SHAPE naming it. */
enum ncl_status ncl_graph_add_conv(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                   struct ncl_conv_params p);
enum ncl_status ncl_graph_add_maxpool(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      int kernel, int stride);
enum ncl_status ncl_graph_add_dropout(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      float p);
enum ncl_status ncl_graph_add_global_avgpool(struct ncl_graph *g, const char *name, int group,
                                             const char *group_name);
enum ncl_status ncl_graph_add_flatten(struct ncl_graph *g, const char *name, int group, const char *group_name);
enum ncl_status ncl_graph_add_linear(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                     int out_features, int relu);
/* MaxPool2d(kernel, stride, pad): padding counts as -infinity, as in PyTorch (pad <= kernel / 2). */
enum ncl_status ncl_graph_add_maxpool_padded(struct ncl_graph *g, const char *name, int group,
                                             const char *group_name, int kernel, int stride, int pad);
/* AvgPool2d(kernel, stride), no padding. */
enum ncl_status ncl_graph_add_avgpool(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                      int kernel, int stride);
enum ncl_status ncl_graph_add_relu(struct ncl_graph *g, const char *name, int group, const char *group_name);
enum ncl_status ncl_graph_add_sigmoid(struct ncl_graph *g, const char *name, int group, const char *group_name);
/* BatchNorm2d, or BatchNorm1d when the input is flattened, exactly as PyTorch's (eps 1e-5,
 * momentum 0.1): parameters <name>.weight and .bias, state <name>.running_mean, .running_var
 * and .num_batches_tracked (int64). */
enum ncl_status ncl_graph_add_batchnorm(struct ncl_graph *g, const char *name, int group, const char *group_name);

/* Branches. A tensor is named by the index of the layer that produced it (ncl_graph_last()
 * right after adding it), or NCL_GRAPH_INPUT. A layer added without explicit inputs reads the
 * previous layer's output, or the tensor given to ncl_graph_use_input just before. Any tensor
 * may be read by several layers; backward sums their gradients. */
#define NCL_GRAPH_INPUT (-1)
int ncl_graph_last(const struct ncl_graph *g);
enum ncl_status ncl_graph_use_input(struct ncl_graph *g, int tensor);
/* y = a + b (same shapes): the residual connection. */
enum ncl_status ncl_graph_add_add(struct ncl_graph *g, const char *name, int group, const char *group_name, int a,
                                  int b);
/* Concatenation on channels (torch.cat(dim=1)) of 1..4 tensors of the same height and width. */
enum ncl_status ncl_graph_add_concat(struct ncl_graph *g, const char *name, int group, const char *group_name,
                                     int count, const int *inputs);
/* The last layer's fused ReLU is a top-level module of its own (AlexNet's "1"): nincl shapes
 * prints it as a line of its own after the layer's. */
enum ncl_status ncl_graph_set_fused_group(struct ncl_graph *g, int group, const char *group_name);

/* Plan and allocate all device memory for the maximum batch, build kernels. */
enum ncl_status ncl_graph_reserve(struct ncl_graph *g);
/* Device bytes allocated by ncl_graph_reserve (activations, gradients, parameters, workspace). */
uint64_t ncl_graph_device_bytes(const struct ncl_graph *g);

struct ncl_layer_info {
    const char *name, *kind, *group_name;
    const char *method;     /* how a convolution runs: "winograd", "im2col" or "gemm" (1x1); "" otherwise */
    int group;
    struct ncl_shape out;   /* for batch n = 1 */
    int flat;               /* a flattened [batch, features] output */
    int fused_group;        /* -1, or the module index of a fused ReLU (ncl_graph_set_fused_group) */
    const char *fused_group_name;
};
/* Layers in the order they were added; info's strings belong to the graph. */
int ncl_graph_layer_count(const struct ncl_graph *g);
void ncl_graph_layer_info(const struct ncl_graph *g, int i, struct ncl_layer_info *info);
/* The input and the last layer's output, n = max batch. */
struct ncl_shape ncl_graph_input_shape(const struct ncl_graph *g);
struct ncl_shape ncl_graph_output_shape(const struct ncl_graph *g);

/* Parameters: one tensor each, named as the PyTorch state_dict ("0.0.weight"). */
struct ncl_param_info {
    char name[96];
    int ndim;
    int64_t dims[4];
    size_t count;
    int is_i64;             /* states only: an int64 scalar (num_batches_tracked) */
};
int ncl_graph_param_count(const struct ncl_graph *g);
void ncl_graph_param_info(const struct ncl_graph *g, int i, struct ncl_param_info *info);
/* Copy parameter i (info.count floats, PyTorch's layout) from or to the device, or its
 * accumulated gradient from it; they wait for the queue. */
enum ncl_status ncl_graph_read_param(struct ncl_graph *g, int i, float *host);
enum ncl_status ncl_graph_write_param(struct ncl_graph *g, int i, const float *host);
enum ncl_status ncl_graph_read_grad(struct ncl_graph *g, int i, float *host);
/* The SGD momentum buffer of parameter i (zeros until momentum is used). */
enum ncl_status ncl_graph_read_velocity(struct ncl_graph *g, int i, float *host);
enum ncl_status ncl_graph_write_velocity(struct ncl_graph *g, int i, const float *host);
/* Whether the momentum buffer holds a step yet (PyTorch starts it from the first gradient). */
int ncl_graph_momentum_started(const struct ncl_graph *g);
/* Xavier-uniform weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, from `seed` (the d2l
 * recipe); nin-small uses Kaiming-uniform weights and zero biases (docs/models.md). */
enum ncl_status ncl_graph_init_params(struct ncl_graph *g, uint64_t seed);
/* Non-trained state saved in checkpoints (BatchNorm running statistics), in the order added;
 * read/write take float[count], or one int64_t where is_i64. */
int ncl_graph_state_count(const struct ncl_graph *g);
void ncl_graph_state_info(const struct ncl_graph *g, int i, struct ncl_param_info *info);
enum ncl_status ncl_graph_read_state(struct ncl_graph *g, int i, void *host);
enum ncl_status ncl_graph_write_state(struct ncl_graph *g, int i, const void *host);
/* running_mean 0, running_var 1, num_batches_tracked 0 (also done by init_params). */
enum ncl_status ncl_graph_reset_states(struct ncl_graph *g);
/* Keys the dropout masks: a mask depends on (seed, step, element) only. */
void ncl_graph_set_seed(struct ncl_graph *g, uint64_t seed);
/* Data parallel training: the batches this graph runs from now on are images offset ..
 * offset + batch of a global batch of global_batch images split between replicas. Dropout then
 * draws the masks of those images in the global batch, and the loss gradient is that of the
 * global batch's mean, so summing the replicas' gradients gives one device's gradient.
 * (0, 0), the default: every batch is the whole. */
enum ncl_status ncl_graph_set_batch_slice(struct ncl_graph *g, int offset, int global_batch);

/* Host <-> device data for one step. Input is NCHW floats, batch <= max batch. */
enum ncl_status ncl_graph_write_input(struct ncl_graph *g, const float *nchw, int batch);
/* The class of each of the batch's examples (0..classes-1), for ncl_graph_loss. */
enum ncl_status ncl_graph_write_labels(struct ncl_graph *g, const int32_t *labels, int batch);
/* Reads the last layer's output as NCHW floats ([batch, features] after flatten). */
enum ncl_status ncl_graph_read_output(struct ncl_graph *g, float *nchw, int batch);

/* Enqueues the forward pass of the first `batch` images of the input. In NCL_MODE_TRAIN dropout
 * is on, its masks keyed by (seed, step); NCL_MODE_EVAL runs the inference graph. Returns
 * without waiting for the device. */
enum ncl_status ncl_graph_forward(struct ncl_graph *g, int batch, enum ncl_mode mode, uint64_t step);
/* Softmax cross-entropy of the output against the labels, mean over the batch; writes the
 * output gradient for backward and adds to the device-side metrics. */
enum ncl_status ncl_graph_loss(struct ncl_graph *g, int batch);
/* Accumulates parameter gradients (ncl_graph_sgd_step consumes and zeroes them). */
enum ncl_status ncl_graph_backward(struct ncl_graph *g, int batch);

struct ncl_metrics {
    double loss_sum;        /* sum of per-example losses */
    int64_t correct, count;
};
/* Reads the metrics accumulated by ncl_graph_loss since the last reset. */
enum ncl_status ncl_graph_read_metrics(struct ncl_graph *g, struct ncl_metrics *m, int reset);

struct ncl_sgd_params {
    float lr, momentum, weight_decay;
};
/* One SGD step (PyTorch's torch.optim.SGD: weight decay added to the gradient, then momentum,
 * then lr) over every parameter; zeroes the gradients. */
enum ncl_status ncl_graph_sgd_step(struct ncl_graph *g, const struct ncl_sgd_params *p);
/* Zero the gradients without stepping (finite-difference tests, gradient inspection). */
enum ncl_status ncl_graph_zero_grads(struct ncl_graph *g);

/* Per-layer device times (nincl bench): needs a context created with profile = 1. After
 * ncl_graph_set_profiling(g, 1), each forward/backward records a marker per layer and
 * ncl_graph_layer_times gives the last pass's milliseconds per layer (-1 if not run). */
void ncl_graph_set_profiling(struct ncl_graph *g, int on);
enum ncl_status ncl_graph_layer_times(struct ncl_graph *g, double *forward_ms, double *backward_ms);
/* Per-kernel device times (nincl bench), also needing profile = 1: after
 * ncl_ctx_set_kernel_profiling(ctx, 1) every kernel launch keeps its event; ncl_ctx_kernel_times
 * waits for the queue, sums the launches since the last call by kernel name (longest first, at
 * most max names) and forgets them. GEMMs run by CLBlast are not included. gap_ms (may be NULL)
 * gets the device time between one launch's end and the next one's start, summed: the cost of
 * launching, and of whatever else ran in between (copies, CLBlast). */
struct ncl_kernel_time {
    const char *name;
    int calls;
    double ms;
};
void ncl_ctx_set_kernel_profiling(struct ncl_ctx *ctx, int on);
enum ncl_status ncl_ctx_kernel_times(struct ncl_ctx *ctx, struct ncl_kernel_time *out, int max, int *count,
                                     double *gap_ms);
/* Forward floating-point operations of layer i per image (2 per multiply-add; 0 if negligible). */
double ncl_graph_layer_flops(const struct ncl_graph *g, int i);

/* ---- models --------------------------------------------------------------------------- */

/* "nin" (the d2l reference), "nin-small" (for 28x28 input), or one of the book's CNN zoo:
 * "lenet", "lenet-bn", "alexnet", "vgg11", "googlenet", "resnet18", "densenet" (docs/models.md);
 * input.n is the max batch. Builds and reserves the graph. */
enum ncl_status ncl_model_build(struct ncl_ctx *ctx, const char *model, struct ncl_shape input,
                                struct ncl_graph **out);
/* The input size a model is designed for: 224 for nin, 28 for nin-small (its recipe's). */
int ncl_model_input_size(const char *model);
/* A model's training recipe, what ncl_train_config_init and `nincl train --model M` start
 * from: the book's (d2l train_ch6: plain SGD, 10 epochs, its lr, batch and input size) for the
 * zoo and nin; nin-small's own (5 epochs, batch 64, 28x28, lr 0.02, momentum 0.9: docs/models.md).
 * NCL_ERR_ARG naming the models for another name; out may be NULL (just the check). */
struct ncl_model_recipe {
    int epochs, batch, input_size;
    float lr, momentum, weight_decay;
};
enum ncl_status ncl_model_default_recipe(const char *model, struct ncl_model_recipe *out);

/* ---- ONNX (runtime/io/onnx-*.c) -------------------------------------------------------------- */

/* Every ncl_model_* call also takes the path of an .onnx file as the model: a CNN exported
 * from PyTorch (torch.onnx.export; training mode keeps its BatchNorm and Dropout). The graph
 * is built from its nodes (Conv, Relu, Sigmoid, MaxPool, AveragePool, GlobalAveragePool,
 * BatchNormalization, Dropout, Flatten, Reshape to [batch, features], Gemm, MatMul + Add, Add,
 * Concat, Identity, zero Pad), its parameters are named and initialised as its initializers
 * (PyTorch's state_dict keys and weights), and its recipe is nin's at the file's input size.
 * Anything else is refused with NCL_ERR_FORMAT naming the node, its op and the attribute. */

/* Writes g with its current parameters as an ONNX inference model at path (atomically):
 * opset 13, a symbolic batch, BatchNorm with the running statistics, no Dropout. */
enum ncl_status ncl_onnx_export(struct ncl_graph *g, const char *path);


/* ---- data: Fashion-MNIST / MNIST IDX files (runtime/io/idx.c) -------------------------------- */

/* One IDX file: an unsigned-byte array of 1 (labels) or 3 (images) dimensions. */
struct ncl_idx {
    int ndim;
    int64_t dims[3];        /* dims[0] = item count; rows, cols for images */
    uint8_t *data;          /* dims[0] * dims[1] * dims[2] bytes (labels: dims[0]) */
};
/* Reads a raw or gzip-compressed IDX file and checks magic, dimensions and size against
 * the file; the message names the file and the problem. expect_ndim: 1 or 3. */
enum ncl_status ncl_idx_read(const char *path, int expect_ndim, struct ncl_idx *out);
void ncl_idx_free(struct ncl_idx *idx);   /* frees data and zeroes *idx */

struct ncl_dataset {
    int64_t count;
    int rows, cols;
    uint8_t *images;        /* count x rows x cols */
    uint8_t *labels;        /* count, each < classes */
};
/* Loads "train" or "t10k" images and labels from dir (files <split>-images-idx3-ubyte[.gz] and
 * <split>-labels-idx1-ubyte[.gz]); checks that counts agree and labels are < classes. */
enum ncl_status ncl_dataset_load(const char *dir, const char *split, int classes, struct ncl_dataset *out);
void ncl_dataset_free(struct ncl_dataset *ds);   /* frees images and labels and zeroes *ds */

/* A data set's uint8 images and labels on the device; batches are gathered in an order
 * uploaded once per epoch and resized on the device into the graph's input. */
struct ncl_device_data;
/* Uploads ds (which the caller keeps and may free afterwards) to ctx's device. */
enum ncl_status ncl_device_data_create(struct ncl_ctx *ctx, const struct ncl_dataset *ds,
                                       struct ncl_device_data **out);
void ncl_device_data_free(struct ncl_device_data *d);
/* The order examples are drawn in (indices into the data set; count <= its size). */
enum ncl_status ncl_device_data_set_order(struct ncl_device_data *d, const int32_t *order, int64_t count);
/* Examples order[first .. first + batch) become the graph's input, resized to its H x W
 * (bilinear, half-pixel centres, pixel / 255), and its labels. */
enum ncl_status ncl_graph_load_batch(struct ncl_graph *g, struct ncl_device_data *d, int64_t first, int batch);

/* ---- safetensors (runtime/io/safetensors.c) ------------------------------------------------- */

/* One float32 (or int64) tensor of a safetensors file. */
struct ncl_st_tensor {
    char name[96];
    int ndim;               /* 0..4 */
    int64_t dims[4];
    float *data;            /* count = product of dims; NULL for an I64 tensor */
    int is_i64;             /* dtype I64 (BatchNorm's num_batches_tracked): the values are in data_i64 */
    int64_t *data_i64;
};
struct ncl_st_file {
    int count;
    struct ncl_st_tensor *tensors;
    int meta_count;         /* "__metadata__" string map */
    char **meta_keys, **meta_values;
};
/* Writes atomically: a temporary file beside path, fsync, rename, fsync of the folder;
 * an interrupted write never leaves a broken file at path. */
enum ncl_status ncl_st_write(const char *path, const struct ncl_st_tensor *tensors, int count,
                             const char *const *meta_keys, const char *const *meta_values, int meta_count);
/* Reads and validates a file (header length, JSON, dtype F32 or I64, shapes, offsets within the
 * file, no overlaps); the message names the file and the problem. */
enum ncl_status ncl_st_read(const char *path, struct ncl_st_file *out);
/* The tensor or metadata value of that name, owned by f; NULL when there is none. */
const struct ncl_st_tensor *ncl_st_find(const struct ncl_st_file *f, const char *name);
const char *ncl_st_meta(const struct ncl_st_file *f, const char *key);
void ncl_st_free(struct ncl_st_file *f);   /* frees everything ncl_st_read allocated, zeroes *f */
/* NCL_ERR_FORMAT naming the tensor and element if any value is NaN or infinite. */
enum ncl_status ncl_st_check_finite(const struct ncl_st_file *f, const char *path);

/* ---- checkpoints (runtime/io/checkpoint.c) --------------------------------------------------- */

/* Saves the parameters as `path` (tensors named as the PyTorch state_dict) with the given
 * metadata, atomically; SGD momentum, once used, goes to <path minus .safetensors>.optimizer.safetensors. */
enum ncl_status ncl_checkpoint_save(struct ncl_graph *g, const char *path, const char *const *keys,
                                    const char *const *values, int meta_count);
/* Loads parameters (and the momentum saved at the same step, which must be there if the run
 * used momentum) after checking every tensor's name, shape and finiteness; *meta (optional)
 * receives the file for its metadata (ncl_st_free it). */
enum ncl_status ncl_checkpoint_load(struct ncl_graph *g, const char *path, struct ncl_st_file *meta);
/* The optimizer file beside a checkpoint: "<path minus .safetensors>.optimizer.safetensors". */
void ncl_checkpoint_optimizer_path(const char *path, char *out, size_t cap);

/* ---- training: the whole d2l loop as one call (runtime/train/trainer.c) ---------------------- */

/* The order examples are drawn in during `epoch`: a permutation of 0..count-1 that depends
 * only on (seed, epoch), so a resumed run shuffles exactly as the original. */
void ncl_epoch_order(uint64_t seed, int epoch, int32_t *order, int64_t count);

/* Runs examples 0..count-1 of d through g in eval mode, `batch` (<= g's max batch) at a time;
 * *correct gets the number of right predictions, and logits (NULL, or count x classes floats
 * owned by the caller) every example's output. Resets g's metrics. */
enum ncl_status ncl_graph_evaluate(struct ncl_graph *g, struct ncl_device_data *d, int64_t count, int batch,
                                   int64_t *correct, float *logits);

/* What a run is about to do (ncl_train_config.on_start): the recipe in force, which for a
 * resumed run is the checkpoint's. Strings are valid during the callback only. */
struct ncl_train_start {
    const char *model, *device, *out_dir;
    struct ncl_model_recipe recipe;
    uint64_t seed;
    int64_t train_count, test_count;
    int resumed;
    int first_epoch;              /* 1-based epoch the run starts (or continues) in */
};
/* Within an epoch, every progress_interval_s (and after its last batch). */
struct ncl_train_progress {
    int epoch, epochs;            /* 1-based */
    int64_t done, total;          /* examples of this epoch so far, of all */
    double loss, acc;             /* running means over this epoch's examples so far */
    double examples_per_sec, eta_seconds;
};
/* After an epoch, once its checkpoint and metrics are written. */
struct ncl_train_epoch {
    int epoch, epochs;            /* 1-based */
    double train_loss, train_acc, test_acc;
    double examples_per_sec, seconds;   /* training only; evaluation is not counted */
};

struct ncl_train_config {
    const char *model;            /* a built-in model ("nin", "nin-small", ...) or an .onnx file */
    struct ncl_model_recipe recipe;   /* set from the model by ncl_train_config_init; change any field */
    uint64_t seed;                /* initialisation, shuffling and dropout; 1 by default */
    /* Where the weights start: "xavier" (ncl_graph_init_params from seed; built-in models), or
     * for an ONNX model "file", its initializers (NULL: the default, file for ONNX models). */
    const char *init;
    const char *data_dir;         /* Fashion-MNIST IDX files (.gz or raw); NULL: /usr/share/datasets/fashion-mnist */
    int64_t train_limit, test_limit;   /* use only the first N images of each split; 0: all */
    /* Output: DIR/checkpoint.safetensors (every epoch and when stopped), DIR/metrics.csv and
     * DIR/curves.svg (every epoch). out_dir must be new or hold no checkpoint; NULL: a new
     * folder runs/<model>-<date>-<time> under the current directory. */
    const char *out_dir;
    /* Continue the run in this folder exactly where its checkpoint left it (recipe, seed and
     * data limits come from the checkpoint; model/recipe/seed/limits here are ignored). */
    const char *resume_dir;
    int resume_epochs;            /* with resume_dir: train to this many epochs in all; 0: the run's own */
    struct ncl_ctx_params device; /* which device, kernels and GEMM (all NULL: the defaults) */
    /* Data parallel training: one replica of the model per entry, each "P:D" (platform and
     * device index as ncl_device_list gives them), a name or type substring as device.device
     * takes, or "all"; entries may repeat (two replicas on one device). The global batch is
     * split between the replicas, their gradients summed every step and every replica takes
     * the same SGD step: the run follows one device's trajectory. NULL: the one device
     * `device` selects. Kernel, GEMM and convolution choices still come from `device`. */
    const char *devices;
    const char *split;            /* "even" (NULL) or "auto": shares in proportion to measured speed */
    /* Whether the gradient sum overlaps backward: "on" sums buckets of about bucket_mb MiB of
     * gradients as backward completes them (from the output side down), while the device still
     * runs the layers below; "off" sums everything after backward; "auto" (NULL): on where
     * every replica is a GPU or accelerator, off on CPU devices (whose cores are the host's).
     * Either gives bit-identical parameters. Under MPI, rank 0's choice is every rank's. */
    const char *overlap;
    double bucket_mb;             /* 0: 2 MiB */
    /* Train across every rank of MPI_COMM_WORLD (call ncl_mpi_init first): each rank runs its
     * replicas (by default the device of its local rank), rank 0's parameters start every
     * rank, gradients are summed across ranks, rank 0 alone calls the callbacks and writes the
     * output. Every rank must get the same config (checked). */
    int mpi;
    /* While the loop runs, SIGINT and SIGTERM stop it (as ncl_train_stop does); the previous
     * handlers are restored when ncl_train returns. 0: leave signals alone. */
    int handle_signals;
    double progress_interval_s;   /* how often on_progress is called; 0: every 10 s */
    /* Callbacks, each optional, called on the thread that runs ncl_train. */
    void (*on_start)(const struct ncl_train_start *info, void *user);
    void (*on_progress)(const struct ncl_train_progress *p, void *user);
    void (*on_epoch)(const struct ncl_train_epoch *e, void *user);
    void (*on_warning)(const char *message, void *user);   /* NULL: printed to stderr */
    void *user;
};

/* The defaults for `model`: its recipe, seed 1, the Debian data folder, signals handled,
 * everything else zero / NULL. NCL_ERR_ARG for an unknown model (cfg->model is still set). */
enum ncl_status ncl_train_config_init(struct ncl_train_config *cfg, const char *model);

struct ncl_train_result {
    char out_dir[4096];
    char checkpoint[4200];        /* the run's checkpoint; "" if none was saved */
    int epochs, epochs_done;      /* the recipe's epochs; epochs finished (resumed ones included) */
    uint64_t steps;               /* optimizer steps so far */
    double train_loss, train_acc, test_acc;   /* of the last finished epoch; NaN if none */
    double examples_per_sec;      /* over every finished epoch */
    /* Data parallel runs: replicas in all processes; per step (of this run), the seconds of the
     * devices' forward and backward as the host saw them, of summing the gradients (host adds,
     * allreduce, writing back), and of that summing the part done while backward still ran: a
     * step takes compute + reduce - overlap. buckets: the gradient sum's (1: not overlapped). */
    int replicas, buckets;
    double compute_seconds_per_step, reduce_seconds_per_step, overlap_seconds_per_step;
};

/* Trains (or continues) a run: loads the data, opens the device, builds the model, then for
 * each epoch shuffles, trains with SGD, evaluates on the test split, writes the checkpoint,
 * metrics.csv and curves.svg, and calls on_epoch. Returns NCL_OK when every epoch is done;
 * NCL_STOPPED when stopped (the checkpoint then holds the step it stopped at, and resume_dir
 * continues from it); NCL_ERR_NUMERIC when the loss or a parameter becomes NaN or infinite
 * (nothing is saved, and the message names the last good checkpoint); other statuses for bad
 * input (NCL_ERR_ARG / IO / FORMAT / SHAPE, message from ncl_last_error) or device failures.
 * A run that saved nothing removes the output folder it created. result may be NULL. */
enum ncl_status ncl_train(const struct ncl_train_config *cfg, struct ncl_train_result *result);

/* MPI: whether this library was built with it; MPI_Init (if not done) with errors returned to
 * the caller rather than aborting, and this process's rank and the number of ranks; MPI_Finalize.
 * Without MPI, ncl_mpi_init fails with NCL_ERR_ARG saying how to get it. */
int ncl_mpi_available(void);
enum ncl_status ncl_mpi_init(int *argc, char ***argv, int *rank, int *size);
void ncl_mpi_finalize(void);

/* Asks the running ncl_train to stop after its current step and save a checkpoint.
 * Async-signal-safe: call it from a signal handler or another thread. */
void ncl_train_stop(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif
