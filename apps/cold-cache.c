/* A cold kernel cache for one process. PoCL keeps compiled kernels under $POCL_CACHE_DIR and
 * NVIDIA's driver under ~/.nv/ComputeCache unless $CUDA_CACHE_DISABLE is set; both read the
 * variables when OpenCL starts. (CLBlast compiles in every process anyway.) */
#define _DEFAULT_SOURCE
#include "cold-cache.h"
#include "remove-tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cold_cache_begin(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    if (snprintf(dir, size, "%s/nincl-cold-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp") >= (int)size) {
        fprintf(stderr, "nincl: TMPDIR is too long for a cache folder\n");
        return -1;
    }
    if (!mkdtemp(dir)) {
        fprintf(stderr, "nincl: creating a cold kernel cache in %s: %s\n", dir, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    setenv("POCL_CACHE_DIR", dir, 1);
    setenv("CUDA_CACHE_DISABLE", "1", 1);
    return 0;
}

void cold_cache_end(const char *dir)
{
    if (dir && dir[0])
        remove_tree(dir);
}
