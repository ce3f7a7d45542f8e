/* libFuzzer target for the safetensors reader: the input becomes a file (the reader takes a
 * path) and must either be refused with a message or read into tensors whose every byte can be
 * touched. An accepted file is also written back and re-read, which must give the same tensors.
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Iinclude -Iruntime/core runtime/core/status.c runtime/io/safetensors.c tests/fuzz/fuzz-safetensors.c \
 *     -lcjson -lm -o fuzz-st && ./fuzz-st -max_total_time=60 tests/fuzz/corpus-safetensors */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "nincl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Per process, so parallel fuzzing jobs (-jobs=N) do not share files. */
static const char *temp_path(const char *what)
{
    static char paths[2][128];
    char *p = paths[what[0] == 'o'];
    if (!p[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(p, sizeof paths[0], "%s/fuzz-st-%ld.%s", tmp && strlen(tmp) < 64 ? tmp : "/tmp", (long)getpid(),
                 what);
    }
    return p;
}

static void remove_temps(void)
{
    remove(temp_path("in"));
    remove(temp_path("out"));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    atexit(remove_temps);
    return 0;
}

static int64_t count_of(const struct ncl_st_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->dims[d];
    return n;
}

static void check_same(const struct ncl_st_file *a, const struct ncl_st_file *b)
{
    if (a->count != b->count || a->meta_count != b->meta_count)
        abort();
    for (int i = 0; i < a->count; i++) {
        const struct ncl_st_tensor *x = &a->tensors[i], *y = ncl_st_find(b, x->name);
        if (!y || x->ndim != y->ndim || x->is_i64 != y->is_i64 ||
            memcmp(x->dims, y->dims, sizeof x->dims[0] * (size_t)x->ndim) != 0)
            abort();
        if (x->is_i64 ? memcmp(x->data_i64, y->data_i64, 8 * (size_t)count_of(x)) != 0
                      : memcmp(x->data, y->data, 4 * (size_t)count_of(x)) != 0)
            abort();
    }
    for (int i = 0; i < a->meta_count; i++) {
        const char *v = ncl_st_meta(b, a->meta_keys[i]);
        if (!v || strcmp(v, a->meta_values[i]) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = temp_path("in"), *out = temp_path("out");
    FILE *fp = fopen(in, "wb");
    if (!fp)
        return 0;
    size_t written = fwrite(data, 1, size, fp);
    if (fclose(fp) != 0 || written != size)
        return 0;

    struct ncl_st_file f, g;
    if (ncl_st_read(in, &f) != NCL_OK) {
        /* a refusal always explains itself, naming the file */
        if (!strstr(ncl_last_error(), in))
            abort();
        return 0;
    }
    volatile float sink = 0;
    for (int i = 0; i < f.count; i++) {
        const struct ncl_st_tensor *t = &f.tensors[i];
        /* exactly one of the two data pointers: F32 values or I64 ones */
        if (t->ndim < 0 || t->ndim > 4 || !(t->is_i64 ? t->data_i64 && !t->data : t->data && !t->data_i64) ||
            ncl_st_find(&f, t->name) != t)
            abort();
        for (int64_t k = 0; k < count_of(t); k++)
            sink += t->is_i64 ? (float)t->data_i64[k] : t->data[k];
    }
    (void)sink;

    if (ncl_st_write(out, f.tensors, f.count, (const char *const *)f.meta_keys,
                     (const char *const *)f.meta_values, f.meta_count) != NCL_OK ||
        ncl_st_read(out, &g) != NCL_OK) {
        fprintf(stderr, "re-writing an accepted file failed: %s\n", ncl_last_error());
        abort();
    }
    check_same(&f, &g);
    ncl_st_free(&f);
    ncl_st_free(&g);
    return 0;
}
