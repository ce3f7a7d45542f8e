/* A cold kernel cache for one process. PoCL keeps compiled kernels under $POCL_CACHE_DIR and
 * NVIDIA's driver under ~/.nv/ComputeCache unless $CUDA_CACHE_DISABLE is set; both read the
 * variables when OpenCL starts. (CLBlast compiles in every process anyway.) */
#define _DEFAULT_SOURCE
#include "cold-cache.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *child = malloc(len);
            if (!child)
                break;
            snprintf(child, len, "%s/%s", path, e->d_name);
            remove_tree(child);
            free(child);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void cold_cache_end(const char *dir)
{
    if (dir && dir[0])
        remove_tree(dir);
}
