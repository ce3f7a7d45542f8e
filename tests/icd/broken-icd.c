/* An OpenCL ICD (a vendor library the ICD loader loads from an .icd file) with one platform
 * and one GPU device that answers every query but refuses a context, as a broken or
 * half-installed driver does; it also prints a warning when loaded, as some drivers do.
 * tests/test-platforms.c puts it beside the machine's real ICDs to check that nincl lists the
 * devices, and that its default choice passes over this one for a device that works. Only
 * what the loader and device listing call is implemented; the rest of the table is NULL. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#include <CL/cl_icd.h>
#include <stdio.h>
#include <string.h>

static struct _cl_icd_dispatch table;
struct _cl_platform_id {
    struct _cl_icd_dispatch *dispatch;
};
struct _cl_device_id {
    struct _cl_icd_dispatch *dispatch;
};
static struct _cl_platform_id platform = {&table};
static struct _cl_device_id device = {&table};

__attribute__((constructor)) static void warn_on_load(void)
{
    fprintf(stderr, "broken-icd: warning: this driver cannot create contexts (nincl test ICD)\n");
}

static cl_int answer(const void *value, size_t size, size_t cap, void *out, size_t *size_out)
{
    if (size_out)
        *size_out = size;
    if (out && cap < size)
        return CL_INVALID_VALUE;
    if (out)
        memcpy(out, value, size);
    return CL_SUCCESS;
}

static cl_int CL_API_CALL platform_info(cl_platform_id p, cl_platform_info what, size_t cap, void *out,
                                        size_t *size_out)
{
    const char *s;
    switch (what) {
    case CL_PLATFORM_NAME: s = "nincl broken test platform"; break;
    case CL_PLATFORM_VENDOR: s = "nincl tests"; break;
    case CL_PLATFORM_VERSION: s = "OpenCL 1.2 broken"; break;
    case CL_PLATFORM_PROFILE: s = "FULL_PROFILE"; break;
    case CL_PLATFORM_EXTENSIONS: s = "cl_khr_icd"; break;
    case CL_PLATFORM_ICD_SUFFIX_KHR: s = "BROKEN"; break;
    default: return CL_INVALID_VALUE;
    }
    return p == &platform ? answer(s, strlen(s) + 1, cap, out, size_out) : CL_INVALID_PLATFORM;
}

static cl_int CL_API_CALL device_ids(cl_platform_id p, cl_device_type type, cl_uint cap, cl_device_id *out,
                                     cl_uint *count)
{
    if (p != &platform)
        return CL_INVALID_PLATFORM;
    if (!(type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_DEFAULT)))
        return CL_DEVICE_NOT_FOUND;
    if (count)
        *count = 1;
    if (out && cap >= 1)
        out[0] = &device;
    return CL_SUCCESS;
}

static cl_int CL_API_CALL device_info(cl_device_id d, cl_device_info what, size_t cap, void *out, size_t *size_out)
{
    if (d != &device)
        return CL_INVALID_DEVICE;
    cl_ulong bytes = 1 << 30;
    cl_uint units = 4, width = 4;
    size_t wg = 256;
    cl_device_type type = CL_DEVICE_TYPE_GPU;
    const char *s = NULL;
    switch (what) {
    case CL_DEVICE_NAME: s = "nincl broken test GPU"; break;
    case CL_DEVICE_VENDOR: s = "nincl tests"; break;
    case CL_DEVICE_VERSION: s = "OpenCL 1.2 broken"; break;
    case CL_DEVICE_OPENCL_C_VERSION: s = "OpenCL C 1.2"; break;
    case CL_DRIVER_VERSION: s = "0"; break;
    case CL_DEVICE_TYPE: return answer(&type, sizeof type, cap, out, size_out);
    case CL_DEVICE_MAX_COMPUTE_UNITS: return answer(&units, sizeof units, cap, out, size_out);
    case CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: return answer(&width, sizeof width, cap, out, size_out);
    case CL_DEVICE_GLOBAL_MEM_SIZE:
    case CL_DEVICE_MAX_MEM_ALLOC_SIZE:
    case CL_DEVICE_LOCAL_MEM_SIZE: return answer(&bytes, sizeof bytes, cap, out, size_out);
    case CL_DEVICE_MAX_WORK_GROUP_SIZE: return answer(&wg, sizeof wg, cap, out, size_out);
    case CL_DEVICE_PLATFORM: {
        cl_platform_id p = &platform;
        return answer(&p, sizeof p, cap, out, size_out);
    }
    default: return CL_INVALID_VALUE;
    }
    return answer(s, strlen(s) + 1, cap, out, size_out);
}

static cl_context CL_API_CALL create_context(const cl_context_properties *props, cl_uint n, const cl_device_id *d,
                                             void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *),
                                             void *user, cl_int *err)
{
    (void)props, (void)n, (void)d, (void)notify, (void)user;
    if (err)
        *err = CL_OUT_OF_RESOURCES;
    return NULL;
}

static cl_context CL_API_CALL create_context_from_type(const cl_context_properties *props, cl_device_type type,
                                                       void(CL_CALLBACK *notify)(const char *, const void *, size_t,
                                                                                 void *),
                                                       void *user, cl_int *err)
{
    (void)type;
    return create_context(props, 0, NULL, notify, user, err);
}

CL_API_ENTRY cl_int CL_API_CALL clIcdGetPlatformIDsKHR(cl_uint cap, cl_platform_id *out, cl_uint *count)
{
    table.clGetPlatformInfo = platform_info;
    table.clGetDeviceIDs = device_ids;
    table.clGetDeviceInfo = device_info;
    table.clCreateContext = create_context;
    table.clCreateContextFromType = create_context_from_type;
    if (count)
        *count = 1;
    if (out && cap >= 1)
        out[0] = &platform;
    return CL_SUCCESS;
}

/* The loader asks for the entry points it calls before it uses the dispatch table. */
CL_API_ENTRY void *CL_API_CALL clGetExtensionFunctionAddress(const char *name)
{
    if (strcmp(name, "clIcdGetPlatformIDsKHR") == 0)
        return (void *)clIcdGetPlatformIDsKHR;
    if (strcmp(name, "clGetPlatformInfo") == 0)
        return (void *)platform_info;
    return NULL;
}
