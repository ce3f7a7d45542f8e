/* OpenCL platforms and devices: listing, selection by index or name, and the context. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctx-impl.h"
#include "tune-impl.h"

const char *ncl_cl_error_name(cl_int err)
{
    switch (err) {
#define E(x) \
    case x:  \
        return #x;
        E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
        E(CL_BUILD_PROGRAM_FAILURE) E(CL_INVALID_VALUE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
        E(CL_INVALID_CONTEXT) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL)
        E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
#undef E
    default:
        return "unknown OpenCL error";
    }
}

enum ncl_status ncl_cl_fail(cl_int err, const char *what)
{
    enum ncl_status s = NCL_ERR_OPENCL;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE)
        s = NCL_ERR_NO_MEMORY;
    return ncl_fail(s, "%s failed: %s (%d)", what, ncl_cl_error_name(err), (int)err);
}

/* Copies a string property, truncated to the buffer (the query fails on a short buffer). */
static void device_string(cl_device_id d, cl_device_info what, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    if (clGetDeviceInfo(d, what, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return;
    char *tmp = malloc(len + 1);
    if (!tmp)
        return;
    if (clGetDeviceInfo(d, what, len, tmp, NULL) == CL_SUCCESS) {
        tmp[len] = 0;
        snprintf(out, cap, "%s", tmp);
    }
    free(tmp);
}

static void device_info_fill(cl_platform_id p, cl_device_id d, int pi, int di, struct ncl_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->platform_index = pi;
    info->device_index = di;
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof info->platform_name - 1, info->platform_name, NULL);
    device_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    device_string(d, CL_DEVICE_VERSION, info->version, sizeof info->version);
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
    device_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    cl_device_type type = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    strcpy(info->type, type & CL_DEVICE_TYPE_GPU ? "GPU"
                       : type & CL_DEVICE_TYPE_CPU ? "CPU"
                       : type & CL_DEVICE_TYPE_ACCELERATOR ? "ACCELERATOR"
                                                           : "OTHER");
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    info->compute_units = cu;
    cl_ulong v = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v, &v, NULL);
    info->global_mem_bytes = v;
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v, &v, NULL);
    info->max_alloc_bytes = v;
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof v, &v, NULL);
    info->local_mem_bytes = v;
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_work_group_size, &info->max_work_group_size,
                    NULL);
}

/* Walks every device of every platform; visit returns nonzero to stop. */
typedef int (*device_visit)(cl_platform_id p, cl_device_id d, const struct ncl_device_info *info, void *user);

static enum ncl_status devices_walk(device_visit visit, void *user, int *total)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no vendor */ || np == 0)
        return ncl_fail(NCL_ERR_NO_PLATFORM,
                        "no OpenCL platform found: install a driver, e.g. 'apt-get install pocl-opencl-icd' for "
                        "the CPU, or your GPU vendor's OpenCL ICD");
    if (err != CL_SUCCESS)
        return ncl_cl_fail(err, "clGetPlatformIDs");
    cl_platform_id platforms[16];
    if (np > 16)
        np = 16;
    NCL_CL_TRY(clGetPlatformIDs(np, platforms, NULL), "clGetPlatformIDs");
    *total = 0;
    for (cl_uint pi = 0; pi < np; pi++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(platforms[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id devices[64];
        if (nd > 64)
            nd = 64;
        if (clGetDeviceIDs(platforms[pi], CL_DEVICE_TYPE_ALL, nd, devices, NULL) != CL_SUCCESS)
            continue;
        for (cl_uint di = 0; di < nd; di++) {
            struct ncl_device_info info;
            device_info_fill(platforms[pi], devices[di], (int)pi, (int)di, &info);
            ++*total;
            if (visit && visit(platforms[pi], devices[di], &info, user))
                return NCL_OK;
        }
    }
    return NCL_OK;
}

struct list_state {
    struct ncl_device_info *items;
    int count, cap;
};

static int list_visit(cl_platform_id p, cl_device_id d, const struct ncl_device_info *info, void *user)
{
    struct list_state *st = user;
    if (st->count == st->cap) {
        int cap = st->cap ? st->cap * 2 : 8;
        struct ncl_device_info *items = realloc(st->items, (size_t)cap * sizeof *items);
        if (!items)
            return 1;
        st->items = items;
        st->cap = cap;
    }
    st->items[st->count++] = *info;
    return 0;
}

enum ncl_status ncl_device_list(struct ncl_device_info **list, int *count)
{
    struct list_state st = {0};
    int total = 0;
    enum ncl_status s = devices_walk(list_visit, &st, &total);
    if (s != NCL_OK) {
        free(st.items);
        return s;
    }
    if (st.count != total) {
        free(st.items);
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory listing devices");
    }
    *list = st.items;
    *count = st.count;
    return NCL_OK;
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int is_index(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* A selector is an index or a case-insensitive substring (of the name, vendor, or for
 * devices the type, so "gpu" and "cpu" work). */
static int selector_matches(const char *sel, int index, const char *name, const char *vendor, const char *type)
{
    if (!sel || !*sel)
        return 1;
    if (is_index(sel))
        return atoi(sel) == index;
    return contains_nocase(name, sel) || contains_nocase(vendor, sel) || (type && contains_nocase(type, sel));
}

/* The devices a selection matches, in the order they are tried: with no device named, GPUs
 * first, then the rest (each in platform and device order). */
#define NCL_MAX_CANDIDATES 64
struct select_state {
    const char *platform, *device;
    int want_gpu;           /* 1: GPUs only, 0: everything but GPUs, -1: everything */
    int n;
    struct candidate {
        cl_platform_id p;
        cl_device_id d;
        struct ncl_device_info info;
    } *c;
};

static int select_visit(cl_platform_id p, cl_device_id d, const struct ncl_device_info *info, void *user)
{
    struct select_state *st = user;
    if (!selector_matches(st->platform, info->platform_index, info->platform_name, "", NULL))
        return 0;
    if (!selector_matches(st->device, info->device_index, info->name, info->vendor, info->type))
        return 0;
    int gpu = strcmp(info->type, "GPU") == 0;
    if (st->want_gpu >= 0 && gpu != st->want_gpu)
        return 0;
    if (st->n < NCL_MAX_CANDIDATES)
        st->c[st->n++] = (struct candidate){p, d, *info};
    return 0;
}

static enum ncl_status no_match(const char *platform, const char *device)
{
    struct ncl_device_info *list = NULL;
    int n = 0;
    char avail[2048] = "";
    if (ncl_device_list(&list, &n) == NCL_OK) {
        size_t used = 0;
        for (int i = 0; i < n && used < sizeof avail - 200; i++)
            used += (size_t)snprintf(avail + used, sizeof avail - used, "\n  platform %d (%s), device %d: %s [%s]",
                                     list[i].platform_index, list[i].platform_name, list[i].device_index,
                                     list[i].name, list[i].type);
    }
    free(list);
    return ncl_fail(NCL_ERR_NO_DEVICE, "no OpenCL device matches --platform '%s' --device '%s'; available:%s",
                    platform ? platform : "(any)", device ? device : "(any)", avail);
}

static const char *env_or(const char *v, const char *env)
{
    if (v)
        return v;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

/* *out = the index in names of v, else of $env (0, "auto", when neither is set); any other
 * value is refused with the choices. */
/* names: NULL-terminated, "auto" (0) first */
static enum ncl_status choose(const char *v, const char *env, const char *what, const char *const *names, int *out)
{
    v = env_or(v, env);
    *out = 0;
    if (!v)
        return NCL_OK;
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return NCL_OK;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (names[i + 1] ? ", " : " or ") : "",
                 names[i]);
    }
    return ncl_fail(NCL_ERR_ARG, "unknown %s '%s' (choose %s)", what, v, list);
}

static void ctx_release_cl(struct ncl_ctx *ctx)
{
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
}

static enum ncl_status ctx_create_on(const struct ncl_ctx_params *p, const struct select_state *st,
                                     struct ncl_ctx **out);
static enum ncl_status ctx_create_device(const struct ncl_ctx_params *p, const struct candidate *cand,
                                         struct ncl_ctx **out);

enum ncl_status ncl_ctx_create(const struct ncl_ctx_params *p, struct ncl_ctx **out)
{
    static const struct ncl_ctx_params none = {0};
    if (!p)
        p = &none;
    *out = NULL;
    struct select_state st = {0};
    st.platform = env_or(p->platform, "NINCL_PLATFORM");
    st.device = env_or(p->device, "NINCL_DEVICE");
    st.c = calloc(NCL_MAX_CANDIDATES, sizeof *st.c);
    if (!st.c)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    int total = 0;
    st.want_gpu = st.device ? -1 : 1;   /* default: the GPUs first, then the other devices */
    enum ncl_status s = devices_walk(select_visit, &st, &total);
    if (s == NCL_OK && !st.device) {
        st.want_gpu = 0;
        s = devices_walk(select_visit, &st, &total);
    }
    if (s == NCL_OK && st.n == 0)
        s = no_match(st.platform, st.device);
    if (s == NCL_OK)
        s = ctx_create_on(p, &st, out);
    free(st.c);
    return s;
}

/* The context on the first candidate that gives one. A named device must work; with none
 * named, a device whose context or queue cannot be created (a broken or half-installed driver
 * beside a working one) is passed over for the next, and only when none works is the first
 * failure reported. */
static enum ncl_status ctx_create_on(const struct ncl_ctx_params *p, const struct select_state *st,
                                     struct ncl_ctx **out)
{
    char first_error[1024] = "";
    enum ncl_status first = NCL_OK;
    for (int i = 0; i < st->n; i++) {
        enum ncl_status s = ctx_create_device(p, &st->c[i], out);
        if (s == NCL_OK || s == NCL_ERR_ARG || s == NCL_ERR_IO || st->device || st->n == 1)
            return s;
        if (first == NCL_OK) {
            first = s;
            snprintf(first_error, sizeof first_error, "%s", ncl_last_error());
        }
    }
    return ncl_fail(first, "%s (and none of the other %d OpenCL devices worked)", first_error, st->n - 1);
}

static enum ncl_status ctx_create_device(const struct ncl_ctx_params *p, const struct candidate *cand,
                                         struct ncl_ctx **out)
{
    const struct candidate st = *cand;
    /* each choice's names in the order of its enum, "auto" (0) first */
    static const char *const gemms[] = {"auto", "clblast", "packed", NULL},
                             *const variants[] = {"auto", "cpu", "gpu", "measure", NULL},
                             *const convs[] = {"auto", "winograd", "im2col", NULL};
    int gemm, variant, conv;
    NCL_TRY(choose(p->gemm, "NINCL_GEMM", "GEMM implementation", gemms, &gemm));
    NCL_TRY(choose(p->kernels, "NINCL_KERNELS", "kernel variants", variants, &variant));
    NCL_TRY(choose(p->conv, "NINCL_CONV", "convolution method", convs, &conv));

    struct ncl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    ctx->platform = st.p;
    ctx->device = st.d;
    ctx->info = st.info;
    ctx->gemm = (enum ncl_gemm_impl)gemm;
    ctx->cpu_kernels = variant == 1;
    snprintf(ctx->variant_how, sizeof ctx->variant_how, "%s", variant == 1 || variant == 2 ? "forced" : "");
    ctx->on_warning = p->on_warning;
    ctx->warning_user = p->warning_user;
    ctx->conv = (enum ncl_conv_impl)conv;
    ctx->profile = p->profile;
    ctx->loop_limit = ncl_device_loop_limit(&st.info);
    const char *kdir = env_or(p->kernel_dir, "NINCL_KERNEL_DIR");
    if (kdir) {
        struct stat dir;
        if (stat(kdir, &dir) != 0 || !S_ISDIR(dir.st_mode)) {
            free(ctx);
            return ncl_fail(NCL_ERR_IO, "kernel folder %s (from --kernel-dir or NINCL_KERNEL_DIR) is not a folder",
                            kdir);
        }
        snprintf(ctx->kernel_dir, sizeof ctx->kernel_dir, "%s", kdir);
    }

    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)st.p, 0};
    ctx->context = clCreateContext(props, 1, &st.d, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        free(ctx);
        return ncl_fail_prefix(ncl_cl_fail(err, "clCreateContext"), "%s (platform %d, %s)", st.info.name,
                               st.info.platform_index, st.info.platform_name);
    }
    ctx->queue = clCreateCommandQueue(ctx->context, st.d, p->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
    if (err != CL_SUCCESS) {
        ctx_release_cl(ctx);
        free(ctx);
        return ncl_fail_prefix(ncl_cl_fail(err, "clCreateCommandQueue"), "%s (platform %d, %s)", st.info.name,
                               st.info.platform_index, st.info.platform_name);
    }
    if (ctx->loop_limit && variant != 2) {   /* the cpu set gives a work-item whole planes: too long there */
        if (variant == 1)
            ncl_ctx_warn(ctx, "warning: --kernels cpu on %s: its compiler ends a work-item's loops after %u "
                         "iterations, fewer than the cpu set's work-items run; the gpu set instead",
                         st.info.name, ctx->loop_limit);
        ctx->cpu_kernels = 0;
        snprintf(ctx->variant_how, sizeof ctx->variant_how,
                 "%sthe device ends a work-item's loops after %u iterations, fewer than the cpu set needs",
                 variant == 1 ? "forced cpu, overridden: " : "", ctx->loop_limit);
    } else if (variant == 0 || variant == 3) {
        enum ncl_status s = ncl_variant_choose(ctx, variant == 0, variant == 0);
        ncl_gemm_state_free(ctx);   /* the probe's packing buffers, if it ran the packed GEMM */
        if (s != NCL_OK) {          /* the device still works for what does not fail: go by its type */
            ctx->cpu_kernels = strcmp(st.info.type, "CPU") == 0;
            ncl_ctx_warn(ctx, "warning: measuring the kernel variants on %s failed (%s): the %s set, by device "
                         "type", st.info.name, ncl_last_error(), ctx->cpu_kernels ? "cpu" : "gpu");
            snprintf(ctx->variant_how, sizeof ctx->variant_how, "device type (the measurement failed)");
        }
    }
    *out = ctx;
    return NCL_OK;
}

void ncl_ctx_free(struct ncl_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    for (int i = 0; i < ctx->in_flight_count; i++)
        clReleaseEvent(ctx->in_flight[i]);
    ncl_ctx_set_kernel_profiling(ctx, 0);
    ncl_gemm_state_free(ctx);
    for (int i = 0; i < ctx->program_count; i++)
        clReleaseProgram(ctx->programs[i].program);
    free(ctx->programs);
    ctx_release_cl(ctx);
    free(ctx);
}

unsigned ncl_device_loop_limit(const struct ncl_device_info *info)
{
    /* llvmpipe names its device "llvmpipe (LLVM 15.0.6, 256 bits)"; LP_MAX_TGSI_LOOP_ITERATIONS */
    return strncmp(info->name, "llvmpipe", 8) == 0 ? 65535 : 0;
}

enum ncl_status ncl_ctx_check_loops(const struct ncl_ctx *ctx, size_t iterations, const char *what)
{
    if (!ctx->loop_limit || iterations < ctx->loop_limit)
        return NCL_OK;
    return ncl_fail(NCL_ERR_SHAPE,
                    "%s take %zu loop iterations in one work-item at the largest batch, and %s ends a work-item's "
                    "loops after %u: use a smaller batch",
                    what, iterations, ctx->info.name, ctx->loop_limit);
}

int ncl_ctx_is_cpu(const struct ncl_ctx *ctx)
{
    return ctx->cpu_kernels;
}

const char *ncl_ctx_kernel_variants(const struct ncl_ctx *ctx, const char **how)
{
    if (how)
        *how = ctx->variant_how;
    return ctx->cpu_kernels ? "cpu" : "gpu";
}

void ncl_ctx_warn(const struct ncl_ctx *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->on_warning)
        ctx->on_warning(msg, ctx->warning_user);
    else
        fprintf(stderr, "nincl: %s\n", msg);
}

const struct ncl_device_info *ncl_ctx_device(const struct ncl_ctx *ctx)
{
    return &ctx->info;
}

enum ncl_status ncl_ctx_throttle(struct ncl_ctx *ctx, int max_in_flight)
{
    int cap = (int)(sizeof ctx->in_flight / sizeof ctx->in_flight[0]);
    if (max_in_flight < 1 || max_in_flight > cap)
        return ncl_fail(NCL_ERR_ARG, "max_in_flight must be in 1..%d", cap);
    cl_event e;
    NCL_CL_TRY(clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e), "clEnqueueMarkerWithWaitList");
    ctx->in_flight[ctx->in_flight_count++] = e;
    while (ctx->in_flight_count > max_in_flight) {
        cl_event oldest = ctx->in_flight[0];
        cl_int err = clWaitForEvents(1, &oldest);
        clReleaseEvent(oldest);
        ctx->in_flight_count--;
        memmove(ctx->in_flight, ctx->in_flight + 1, (size_t)ctx->in_flight_count * sizeof(cl_event));
        if (err != CL_SUCCESS)
            return ncl_cl_fail(err, "waiting for a queued step");
    }
    return NCL_OK;
}

enum ncl_status ncl_ctx_finish(struct ncl_ctx *ctx)
{
    NCL_CL_TRY(clFinish(ctx->queue), "clFinish");
    return NCL_OK;
}

enum ncl_status ncl_buffer_create(struct ncl_ctx *ctx, size_t bytes, const char *what, cl_mem *out)
{
    cl_int err;
    *out = NULL;
    if (bytes == 0)
        bytes = 4;
    if (bytes > ctx->info.max_alloc_bytes)
        return ncl_fail(NCL_ERR_NO_MEMORY,
                        "%s needs %.1f MiB in one buffer, more than the device's largest allocation (%.1f MiB): "
                        "use a smaller --batch",
                        what, bytes / 1048576.0, ctx->info.max_alloc_bytes / 1048576.0);
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return ncl_fail(NCL_ERR_NO_MEMORY, "allocating %s (%.1f MiB) on %s failed: %s: use a smaller --batch", what,
                        bytes / 1048576.0, ctx->info.name, ncl_cl_error_name(err));
    }
    return NCL_OK;
}

enum ncl_status ncl_enqueue(struct ncl_ctx *ctx, cl_kernel k, const char *name, int dims, const size_t *global,
                            const size_t *local, int nargs, const struct ncl_arg *args)
{
    char what[128];
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            snprintf(what, sizeof what, "setting argument %d of kernel %s", i, name);
            return ncl_cl_fail(err, what);
        }
    }
    size_t g[2];
    for (int d = 0; d < dims; d++) {
        g[d] = global[d] ? global[d] : 1;
        if (local && local[d])
            g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
    }
    cl_event *event = ncl_kernel_profile_slot(ctx, name);
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, (cl_uint)dims, NULL, g, local, 0, NULL, event);
    if (err != CL_SUCCESS) {
        snprintf(what, sizeof what, "running kernel %s", name);
        return ncl_cl_fail(err, what);
    }
    ncl_kernel_profile_commit(ctx, event);
    return NCL_OK;
}
