/* Status codes and the per-thread last error message. */
#include "status-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[4096] = "no error";

const char *ncl_status_str(enum ncl_status s)
{
    static const char *const names[NCL_STATUS_COUNT] = {
        [NCL_OK] = "ok",
        [NCL_ERR_ARG] = "invalid argument",
        [NCL_ERR_NO_PLATFORM] = "no OpenCL platform",
        [NCL_ERR_NO_DEVICE] = "no such OpenCL device",
        [NCL_ERR_OPENCL] = "OpenCL error",
        [NCL_ERR_BUILD] = "kernel build failed",
        [NCL_ERR_NO_MEMORY] = "out of memory",
        [NCL_ERR_SHAPE] = "bad shape",
        [NCL_ERR_IO] = "I/O error",
        [NCL_ERR_FORMAT] = "malformed file",
        [NCL_ERR_GEMM] = "GEMM backend error",
        [NCL_ERR_NUMERIC] = "non-finite value",
        [NCL_STOPPED] = "stopped",
    };
    if ((unsigned)s >= NCL_STATUS_COUNT)
        return "unknown status";
    return names[s];
}

const char *ncl_last_error(void)
{
    return last_error;
}

enum ncl_status ncl_fail(enum ncl_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

enum ncl_status ncl_fail_prefix(enum ncl_status s, const char *fmt, ...)
{
    char old[sizeof last_error];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    /* append ": <old message>", truncated to what fits */
    size_t used = n < 0 ? 0 : (size_t)n < sizeof last_error - 1 ? (size_t)n : sizeof last_error - 1;
    size_t room = sizeof last_error - 1 - used, old_len = strlen(old);
    if (room >= 2) {
        memcpy(last_error + used, ": ", 2);
        used += 2;
        room -= 2;
        if (old_len > room)
            old_len = room;
        memcpy(last_error + used, old, old_len);
        used += old_len;
    }
    last_error[used] = 0;
    return s;
}
