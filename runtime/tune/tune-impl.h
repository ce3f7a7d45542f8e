/* Private: choices made per device (which kernel variants run), from a table of devices that
 * were measured, else from an on-disk cache that a measurement on the device fills. */
#ifndef NCL_TUNE_IMPL_H
#define NCL_TUNE_IMPL_H

#include <stddef.h>

#include "ctx-impl.h"

/* The on-disk cache (runtime/tune/tune-cache.c): one text file of "key<TAB>name<TAB>value"
 * lines under $NINCL_CACHE_DIR, else $XDG_CACHE_HOME/nincl, else ~/.cache/nincl. The key names
 * the device, its driver version and a hash of the kernel sources, so a new driver or new
 * kernels measure again. A damaged file is ignored with a warning and rewritten whole. */
void ncl_tune_key(const struct ncl_ctx *ctx, char *key, size_t n);
int ncl_tune_cache_path(char *path, size_t n);   /* 0, or -1 when no folder can be named */
/* 1 and the value when the cache holds (key, name); 0 otherwise. */
int ncl_tune_cache_get(const struct ncl_ctx *ctx, const char *key, const char *name, char *value, size_t n);
/* Adds or replaces (key, name); a cache that cannot be written is a warning, not a failure. */
void ncl_tune_cache_put(const struct ncl_ctx *ctx, const char *key, const char *name, const char *value);

/* FNV-1a over every embedded kernel source (runtime/core/program.c). */
unsigned long long ncl_kernel_sources_hash(void);

/* The warning channel of a context: ncl_ctx_params.on_warning, else stderr. */
void ncl_ctx_warn(const struct ncl_ctx *ctx, const char *fmt, ...) NCL_PRINTF(2, 3);

/* Kernel variants for ncl_ctx_params.kernels "auto" (table, then cache, then a measurement) or
 * "measure" (neither) (runtime/tune/variant-choice.c): sets ctx->cpu_kernels and variant_how. */
enum ncl_status ncl_variant_choose(struct ncl_ctx *ctx, int use_table, int use_cache);

#endif
