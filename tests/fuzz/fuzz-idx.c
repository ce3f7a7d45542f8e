/* libFuzzer target for the IDX reader. ncl_idx_read takes a path (it needs zlib's file
 * interface for gzip), so each input goes to a per-process temp file and is read as images
 * and as labels. Beyond crashes, it traps on a broken contract: success without data, a
 * failure that leaves data behind, or a message that does not name the file. */
#include "nincl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

static void read_as(int ndim)
{
    struct ncl_idx idx;
    enum ncl_status s = ncl_idx_read(path, ndim, &idx);
    if (s == NCL_OK) {
        if (!idx.data || idx.ndim != ndim || idx.dims[0] <= 0)
            __builtin_trap();
        /* Touch the last byte so ASan sees any buffer shorter than the dims claim. */
        volatile uint8_t last = idx.data[idx.dims[0] * idx.dims[1] * idx.dims[2] - 1];
        (void)last;
    } else {
        if (idx.data || strstr(ncl_last_error(), path) == NULL)
            __builtin_trap();
    }
    ncl_idx_free(&idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz-idx-%ld.idx", (long)getpid());
        atexit(remove_file);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    size_t written = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || written != size)
        return 0;
    read_as(3);
    read_as(1);
    return 0;
}
