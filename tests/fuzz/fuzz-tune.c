/* libFuzzer target for the tuning cache (runtime/tune/tune-cache.c): each input is the cache
 * file. A lookup must either find nothing or give a value with no line break; a store over it
 * must leave a file that the reader accepts and that gives the stored value back, with every
 * other entry of an accepted input still there. No OpenCL: a context with only a device name and
 * a warning sink is all the cache reads. */
#define _POSIX_C_SOURCE 200809L
#include "tune-impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], path[96];

static void quiet(const char *message, void *user)
{
    (void)message, (void)user;
}

static void remove_all(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-tune-%ld", (long)getpid());
        snprintf(path, sizeof path, "%s/tune.txt", dir);
        mkdir(dir, 0755);
        setenv("NINCL_CACHE_DIR", dir, 1);
        atexit(remove_all);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);

    static struct ncl_ctx ctx;
    ctx.on_warning = quiet;
    snprintf(ctx.info.platform_name, sizeof ctx.info.platform_name, "fuzz");
    snprintf(ctx.info.name, sizeof ctx.info.name, "device");
    char key[512], value[128];
    ncl_tune_key(&ctx, key, sizeof key);
    if (ncl_tune_cache_get(&ctx, key, "kernels", value, sizeof value) && strchr(value, '\n'))
        __builtin_trap();
    int other = ncl_tune_cache_get(&ctx, "k", "n", value, sizeof value);
    char other_value[128];
    snprintf(other_value, sizeof other_value, "%s", value);

    ncl_tune_cache_put(&ctx, key, "kernels", "1 2.000 3.000");
    if (!ncl_tune_cache_get(&ctx, key, "kernels", value, sizeof value) || strcmp(value, "1 2.000 3.000") != 0)
        __builtin_trap();
    if (other && (!ncl_tune_cache_get(&ctx, "k", "n", value, sizeof value) || strcmp(value, other_value) != 0))
        __builtin_trap();
    return 0;
}
