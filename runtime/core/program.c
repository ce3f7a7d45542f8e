/* Kernel programs: sources embedded at build time (or read from a folder for kernel work),
 * built once per context and cached by (file, options). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx-impl.h"
#include "tune-impl.h"

struct ncl_embedded_kernel {
    const char *file, *source;
    size_t length;
};
extern const struct ncl_embedded_kernel ncl_embedded_kernels[];

unsigned long long ncl_kernel_sources_hash(void)
{
    unsigned long long h = 0xcbf29ce484222325ull;
    for (const struct ncl_embedded_kernel *e = ncl_embedded_kernels; e->file; e++)
        for (size_t i = 0; i < e->length; i++)
            h = (h ^ (unsigned char)e->source[i]) * 0x100000001b3ull;
    return h;
}

/* Returns a malloc'ed copy of the kernel source. */
static enum ncl_status source_load(const struct ncl_ctx *ctx, const char *file, char **out, size_t *len)
{
    if (ctx->kernel_dir[0]) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", ctx->kernel_dir, file);
        FILE *f = fopen(path, "rb");
        if (!f)
            return ncl_fail(NCL_ERR_IO, "cannot open kernel file %s (kernel folder from --kernel-dir or "
                                        "NINCL_KERNEL_DIR)", path);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *src = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (!src || fread(src, 1, (size_t)n, f) != (size_t)n) {
            free(src);
            fclose(f);
            return ncl_fail(NCL_ERR_IO, "cannot read kernel file %s", path);
        }
        fclose(f);
        src[n] = 0;
        *out = src;
        *len = (size_t)n;
        return NCL_OK;
    }
    for (const struct ncl_embedded_kernel *e = ncl_embedded_kernels; e->file; e++) {
        if (strcmp(e->file, file) == 0) {
            *out = malloc(e->length + 1);
            if (!*out)
                return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
            memcpy(*out, e->source, e->length + 1);
            *len = e->length;
            return NCL_OK;
        }
    }
    return ncl_fail(NCL_ERR_ARG, "no embedded kernel file %s", file);
}

static enum ncl_status program_build(struct ncl_ctx *ctx, const char *file, const char *options, cl_program *out)
{
    char *src = NULL;
    size_t len = 0;
    NCL_TRY(source_load(ctx, file, &src, &len));
    cl_int err;
    const char *srcs[] = {src};
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, srcs, &len, &err);
    free(src);
    if (err != CL_SUCCESS)
        return ncl_cl_fail(err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_len = 0;
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
        char *log = malloc(log_len + 1);
        if (log) {
            log[0] = 0;
            clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_len, log, NULL);
            log[log_len] = 0;
        }
        clReleaseProgram(prog);
        enum ncl_status s = ncl_fail(NCL_ERR_BUILD, "building %s/%s with options '%s' on %s failed (%s):\n%s",
                                     ctx->kernel_dir[0] ? ctx->kernel_dir : "kernels", file, options,
                                     ctx->info.name, ncl_cl_error_name(err), log ? log : "(no build log)");
        free(log);
        return s;
    }
    *out = prog;
    return NCL_OK;
}

enum ncl_status ncl_kernel_create(struct ncl_ctx *ctx, const char *file, const char *options, const char *kernel,
                                  cl_kernel *out)
{
    if (!options)
        options = "";
    cl_program prog = NULL;
    for (int i = 0; i < ctx->program_count && !prog; i++)
        if (strcmp(ctx->programs[i].file, file) == 0 && strcmp(ctx->programs[i].options, options) == 0)
            prog = ctx->programs[i].program;
    if (!prog) {
        if (strlen(file) >= sizeof ctx->programs[0].file || strlen(options) >= sizeof ctx->programs[0].options)
            return ncl_fail(NCL_ERR_ARG, "kernel file name or options too long: %s %s", file, options);
        if (ctx->program_count == ctx->program_cap) {
            int cap = ctx->program_cap ? 2 * ctx->program_cap : 16;
            struct ncl_program_entry *p = realloc(ctx->programs, (size_t)cap * sizeof *p);
            if (!p)
                return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
            ctx->programs = p;
            ctx->program_cap = cap;
        }
        NCL_TRY(program_build(ctx, file, options, &prog));
        struct ncl_program_entry *e = &ctx->programs[ctx->program_count++];
        strcpy(e->file, file);
        strcpy(e->options, options);
        e->program = prog;
    }
    cl_int err;
    *out = clCreateKernel(prog, kernel, &err);
    if (err != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "creating kernel %s from kernels/%s", kernel, file);
        return ncl_cl_fail(err, what);
    }
    return NCL_OK;
}
