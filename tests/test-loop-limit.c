/* ncl_device_loop_limit against what the device does: one work-item runs two loops of 50000
 * iterations each, adding a value read from memory (so no compiler can fold the loops away),
 * and must count 100000 where nincl assumes no limit, or stop at the limit nincl names
 * (llvmpipe: 65535 back-edges for both loops together, give or take the loops' exits). A
 * device that silently ends long loops without being named in ncl_device_loop_limit fails
 * here, and so does one named wrongly. Runs on the test device (PoCL in CI) and again on
 * rusticl (scripts/test-rusticl.sh). */
#include "check.h"
#include "ctx-impl.h"
#include "nincl.h"

#include <string.h>

static const char *source =
    "__kernel void count(__global const int *one, int n, __global int *out)\n"
    "{\n"
    "    int c = 0;\n"
    "    for (int i = 0; i < n; i++)\n"
    "        c += one[i & 15];\n"
    "    for (int i = 0; i < n; i++)\n"
    "        c += one[(i + 3) & 15];\n"
    "    out[0] = c;\n"
    "}\n";

int main(void)
{
    struct ncl_ctx *ctx = NULL;
    enum ncl_status s = ncl_ctx_create(NULL, &ctx);
    CHECK(s == NCL_OK, "ncl_ctx_create: %s", ncl_last_error());
    if (s != NCL_OK)
        return check_done("test-loop-limit");
    cl_int err;
    cl_program program = clCreateProgramWithSource(ctx->context, 1, &source, NULL, &err);
    CHECK(err == CL_SUCCESS, "clCreateProgramWithSource: %d", (int)err);
    err = clBuildProgram(program, 1, &ctx->device, "", NULL, NULL);
    CHECK(err == CL_SUCCESS, "clBuildProgram: %d", (int)err);
    cl_kernel kernel = clCreateKernel(program, "count", &err);
    CHECK(err == CL_SUCCESS, "clCreateKernel: %d", (int)err);
    int ones[16], result = -1, n = 50000;
    for (int i = 0; i < 16; i++)
        ones[i] = 1;
    cl_mem one = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof ones, ones, &err);
    cl_mem out = clCreateBuffer(ctx->context, CL_MEM_WRITE_ONLY, sizeof result, NULL, &err);
    clSetKernelArg(kernel, 0, sizeof one, &one);
    clSetKernelArg(kernel, 1, sizeof n, &n);
    clSetKernelArg(kernel, 2, sizeof out, &out);
    size_t global = 1;
    err = clEnqueueNDRangeKernel(ctx->queue, kernel, 1, NULL, &global, &global, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueNDRangeKernel: %d", (int)err);
    err = clEnqueueReadBuffer(ctx->queue, out, CL_TRUE, 0, sizeof result, &result, 0, NULL, NULL);
    CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer: %d", (int)err);
    unsigned limit = ncl_device_loop_limit(&ctx->info);
    if (limit)
        printf("%s: %d of %d loop iterations ran; nincl assumes a limit of %u\n", ctx->info.name, result, 2 * n,
               limit);
    else
        printf("%s: %d of %d loop iterations ran; nincl assumes no limit\n", ctx->info.name, result, 2 * n);
    /* llvmpipe: 65534 of the two loops' bodies (each loop's exit takes one from the count) */
    if (limit)
        CHECK(result <= (int)limit && result >= (int)limit - 4,
              "%s ran %d of %d iterations, not the %u that ncl_device_loop_limit names", ctx->info.name, result,
              2 * n, limit);
    else
        CHECK(result == 2 * n, "%s ran %d of %d iterations: it ends long loops, which ncl_device_loop_limit does "
              "not know", ctx->info.name, result, 2 * n);
    CHECK(ctx->loop_limit == limit, "the context's loop limit %u, the device's %u", ctx->loop_limit, limit);

    /* A BatchNorm over more values per channel than its work-items can sum under the limit
     * (256 a channel, three passes: past 5.6M values) is refused at reserve there, by name;
     * anywhere else it reserves. */
    struct ncl_graph *g = NULL;
    s = ncl_graph_create(ctx, (struct ncl_shape){1, 1, 2400, 2400}, &g);
    CHECK(s == NCL_OK, "ncl_graph_create: %s", ncl_last_error());
    if (s == NCL_OK) {
        CHECK(ncl_graph_add_batchnorm(g, "bn", 0, "BatchNorm2d") == NCL_OK, "add BatchNorm2d: %s", ncl_last_error());
        CHECK(ncl_graph_add_flatten(g, "fl", 1, "Flatten") == NCL_OK, "add Flatten: %s", ncl_last_error());
        s = ncl_graph_reserve(g);
        if (limit)
            CHECK(s == NCL_ERR_SHAPE && strstr(ncl_last_error(), "layer bn (BatchNorm2d)") &&
                      strstr(ncl_last_error(), "smaller batch"),
                  "BatchNorm over 5.76M values a channel on %s: %d %s", ctx->info.name, (int)s, ncl_last_error());
        else
            CHECK(s == NCL_OK, "BatchNorm over 5.76M values a channel: %s", ncl_last_error());
        if (s != NCL_OK)
            printf("refused as it should be: %s\n", ncl_last_error());
        ncl_graph_free(g);
    }
    clReleaseMemObject(one);
    clReleaseMemObject(out);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
    ncl_ctx_free(ctx);
    return check_done("test-loop-limit");
}
