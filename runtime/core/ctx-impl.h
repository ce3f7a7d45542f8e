/* Private: the context (device, queue, program cache) and the helpers every layer uses. */
#ifndef NCL_CTX_IMPL_H
#define NCL_CTX_IMPL_H

#include <CL/cl.h>

#include "status-impl.h"

enum ncl_gemm_impl { NCL_GEMM_AUTO, NCL_GEMM_CLBLAST, NCL_GEMM_PACKED, NCL_GEMM_IMPL_COUNT };
/* How 3x3 and 5x5 stride-1 convolutions run (runtime/ops/conv-winograd.c says which, per layer). */
enum ncl_conv_impl { NCL_CONV_AUTO, NCL_CONV_WINOGRAD, NCL_CONV_IM2COL };

struct ncl_program_entry {
    char file[64];
    char options[256];
    cl_program program;
};

struct ncl_ctx {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    struct ncl_device_info info;
    char kernel_dir[1024];          /* empty: embedded kernels */
    enum ncl_gemm_impl gemm;
    int profile;
    unsigned loop_limit;            /* ncl_device_loop_limit: a work-item's loop iterations, 0: any */
    int cpu_kernels;                /* ncl_ctx_is_cpu */
    char variant_how[160];          /* how cpu_kernels was chosen (runtime/tune/variant-choice.c) */
    void (*on_warning)(const char *message, void *user);   /* ncl_ctx_params.on_warning */
    void *warning_user;
    enum ncl_conv_impl conv;
    struct ncl_program_entry *programs;
    int program_count, program_cap;
    struct ncl_gemm_state *gemm_state;   /* runtime/gemm/gemm.c */
    int clblast_used;               /* CLBlast keeps compiled programs per context until cleared */
    int split_k, split_k_read;      /* NINCL_GEMM_SPLITK, read at the first CLBlast GEMM (gemm-clblast.c) */
    cl_event in_flight[8];          /* ncl_ctx_throttle: markers of the steps still queued */
    int in_flight_count;
    struct ncl_kernel_event {       /* runtime/core/kernel-profile.c */
        const char *name;           /* a string literal from the launch site */
        cl_event event;
    } *kprof;
    int kprof_count, kprof_cap, kprof_on;
};

/* Kernels and GEMMs shaped for CPUs (PoCL), else for GPUs: as measured on the device
 * (runtime/tune/variant-choice.c) unless ncl_ctx_params.kernels says otherwise. */
int ncl_ctx_is_cpu(const struct ncl_ctx *ctx);

/* How many loop iterations one work-item may run, all its loops together, before the device's
 * compiler silently ends them; 0: no such limit. Mesa's llvmpipe (rusticl and Clover on the
 * CPU) ends a work-item's loops after 65535 back-edges (gallivm's loop limiter, a guard against
 * hung shaders), so kernels that give a work-item long loops compute wrong results there unless
 * their launches keep under it (tests/test-loop-limit.c measures the limit on the device). */
unsigned ncl_device_loop_limit(const struct ncl_device_info *info);

/* A reduction whose work-items each loop `iterations` times (all their loops): NCL_ERR_SHAPE
 * naming `what` where the device would end those loops early, so that a batch too large for
 * such a device fails when the graph is reserved instead of training on partial sums. */
enum ncl_status ncl_ctx_check_loops(const struct ncl_ctx *ctx, size_t iterations, const char *what);

/* "clEnqueueNDRangeKernel failed: CL_OUT_OF_RESOURCES (-5)" */
const char *ncl_cl_error_name(cl_int err);
enum ncl_status ncl_cl_fail(cl_int err, const char *what);
#define NCL_CL_TRY(call, what)                       \
    do {                                             \
        cl_int ncl_cl_err_ = (call);                 \
        if (ncl_cl_err_ != CL_SUCCESS)               \
            return ncl_cl_fail(ncl_cl_err_, what);   \
    } while (0)

/* Builds (once per context, cached by file and options) kernels/<file> and creates `kernel`. */
enum ncl_status ncl_kernel_create(struct ncl_ctx *ctx, const char *file, const char *options, const char *kernel,
                                  cl_kernel *out);

/* Sets arguments and enqueues a 1-d or 2-d range; global sizes are rounded up to the local
 * size (kernels check their bounds). local may be 0: the driver chooses. */
struct ncl_arg {
    size_t size;
    const void *value;
};
#define NCL_ARG(v) ((struct ncl_arg){sizeof(v), &(v)})
#define NCL_LOCAL(bytes) ((struct ncl_arg){(bytes), NULL})
enum ncl_status ncl_enqueue(struct ncl_ctx *ctx, cl_kernel k, const char *name, int dims, const size_t *global,
                            const size_t *local, int nargs, const struct ncl_arg *args);

/* Kernel profiling (runtime/core/kernel-profile.c): a slot for the launch's event, or NULL when
 * off; commit keeps it once the launch succeeded. */
cl_event *ncl_kernel_profile_slot(struct ncl_ctx *ctx, const char *name);
void ncl_kernel_profile_commit(struct ncl_ctx *ctx, cl_event *slot);

/* Allocates a device buffer; the failure message names what and how many bytes. */
enum ncl_status ncl_buffer_create(struct ncl_ctx *ctx, size_t bytes, const char *what, cl_mem *out);

/* Row-major C[m x n] = alpha * op(A) op(B) + beta * C, every buffer with an element offset.
 * The one entry point for all matrix products, so the implementation can be chosen per device
 * and per shape (runtime/gemm/gemm.c). */
enum ncl_status ncl_gemm(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                         cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                         size_t c_off, size_t ldc);
/* The same with an epilogue to fold into C's store: C[i][j] = relu?(C[i][j] + bias[bias_off + i]).
 * *applied tells whether the implementation fused it (the packed GEMM without K slices does);
 * when not, C holds the plain product and the caller applies the epilogue. */
struct ncl_gemm_epilogue {
    cl_mem bias;
    size_t bias_off;
    int relu;
};
enum ncl_status ncl_gemm_fused(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                               float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                               float beta, cl_mem c, size_t c_off, size_t ldc, const struct ncl_gemm_epilogue *ep,
                               int *applied);
/* K cut into independent products: for s < slices, C_s = alpha * op(A)[:, s*kc, +kc) op(B)[s*kc, +kc), :]
 * + beta * C_s, where C_s starts at c_off + s * c_slice (row stride ldc). Winograd's 36
 * products per round (runtime/ops/conv-winograd.c) as one launch instead of 36. */
enum ncl_status ncl_gemm_sliced(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t kc,
                                size_t slices, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                                size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc, size_t c_slice);
enum ncl_status ncl_gemm_clblast(struct ncl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                 float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                 float beta, cl_mem c, size_t c_off, size_t ldc);
void ncl_gemm_state_free(struct ncl_ctx *ctx);

#endif
