/* The on-disk cache of per-device choices (runtime/tune/tune-impl.h): one small text file,
 * read whole and checked line by line, written whole and atomically, so two processes that
 * measure at once leave one of their files, never a mix. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file-impl.h"
#include "tune-impl.h"

#define CACHE_HEADER "nincl-tune 1\n"
#define CACHE_MAX_BYTES (1u << 20)
#define CACHE_LINE_MAX 1024

/* Printable fields: tabs and line ends would break the format, so they become spaces. */
static void field_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (unsigned char)src[i] < 0x20 ? ' ' : src[i];
    dst[i] = 0;
}

void ncl_tune_key(const struct ncl_ctx *ctx, char *key, size_t n)
{
    char raw[512];
    snprintf(raw, sizeof raw, "%s | %s | %s | kernels %016llx", ctx->info.platform_name, ctx->info.name,
             ctx->info.driver_version, ncl_kernel_sources_hash());
    field_copy(key, n, raw);
}

int ncl_tune_cache_path(char *path, size_t n)
{
    const char *dir = getenv("NINCL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (dir && dir[0])
        w = snprintf(path, n, "%s/tune.txt", dir);
    else if (xdg && xdg[0])
        w = snprintf(path, n, "%s/nincl/tune.txt", xdg);
    else if (home && home[0])
        w = snprintf(path, n, "%s/.cache/nincl/tune.txt", home);
    else
        return -1;
    return w > 0 && (size_t)w < n ? 0 : -1;
}

/* The cache's text, header checked, or NULL (no file, or a damaged one: warned about when
 * warn). The caller frees it. */
static char *cache_read(const struct ncl_ctx *ctx, const char *path, int warn)
{
    char *text = NULL;
    size_t len = 0;
    if (ncl_read_file(path, CACHE_MAX_BYTES, &text, &len) != 0) {
        if (errno != ENOENT && warn)
            ncl_ctx_warn(ctx, "warning: cannot read the tuning cache %s (%s): ignored", path, strerror(errno));
        return NULL;
    }
    const char *why = NULL;
    int line = 1;
    if (len < strlen(CACHE_HEADER) || memcmp(text, CACHE_HEADER, strlen(CACHE_HEADER)) != 0)
        why = "it does not start with \"nincl-tune 1\"";
    else if (memchr(text, 0, len))
        why = "it holds a NUL byte";
    else if (text[len - 1] != '\n')
        why = "its last line is cut off";
    for (const char *p = text + strlen(CACHE_HEADER); !why && *p; line++) {
        const char *end = strchr(p, '\n');
        int tabs = 0, bad = 0;
        for (const char *q = p; q < end; q++) {
            tabs += *q == '\t';
            bad |= (unsigned char)*q < 0x20 && *q != '\t';
        }
        if (tabs != 2 || bad || end - p >= CACHE_LINE_MAX || end[-1] == '\t')
            why = "a line is not \"key<TAB>name<TAB>value\"";
        p = end + 1;
    }
    if (why && warn)
        ncl_ctx_warn(ctx, "warning: the tuning cache %s is damaged (%s, line %d): ignored, and rewritten when a "
                     "measurement is stored", path, why, line);
    if (why) {
        free(text);
        return NULL;
    }
    return text;
}

/* Whether the line at p is (key, name). */
static int line_is(const char *p, const char *key, const char *name)
{
    size_t kl = strlen(key), nl = strlen(name);
    return strncmp(p, key, kl) == 0 && p[kl] == '\t' && strncmp(p + kl + 1, name, nl) == 0 && p[kl + 1 + nl] == '\t';
}

/* The line of (key, name) in a checked cache text, or NULL. */
static const char *cache_find(const char *text, const char *key, const char *name)
{
    for (const char *p = text + strlen(CACHE_HEADER); *p; p = strchr(p, '\n') + 1)
        if (line_is(p, key, name))
            return p;
    return NULL;
}

int ncl_tune_cache_get(const struct ncl_ctx *ctx, const char *key, const char *name, char *value, size_t n)
{
    char path[4096];
    if (ncl_tune_cache_path(path, sizeof path) != 0)
        return 0;
    char *text = cache_read(ctx, path, 1);
    const char *line = text ? cache_find(text, key, name) : NULL;
    if (line) {
        const char *v = line + strlen(key) + strlen(name) + 2;
        size_t vl = (size_t)(strchr(v, '\n') - v);
        snprintf(value, n, "%.*s", (int)vl, v);
    }
    free(text);
    return line != NULL;
}

/* mkdir -p for the cache's folder */
static int make_parents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

void ncl_tune_cache_put(const struct ncl_ctx *ctx, const char *key, const char *name, const char *value)
{
    char path[4096], k[512], nm[128], v[512];
    if (ncl_tune_cache_path(path, sizeof path) != 0) {
        ncl_ctx_warn(ctx, "warning: no folder for the tuning cache (set NINCL_CACHE_DIR or HOME): the measurement is "
                     "not kept");
        return;
    }
    field_copy(k, sizeof k, key);
    field_copy(nm, sizeof nm, name);
    field_copy(v, sizeof v, value);
    char *old = cache_read(ctx, path, 0);   /* a damaged one was warned about when read */
    size_t old_len = old ? strlen(old) : 0, cap = old_len + strlen(CACHE_HEADER) + strlen(k) + strlen(nm) +
                                                  strlen(v) + 4;
    char *out = malloc(cap);
    if (!out) {
        free(old);
        return;
    }
    size_t len = (size_t)sprintf(out, "%s", CACHE_HEADER);
    if (old) {
        /* every other line kept, in its order */
        for (const char *p = old + strlen(CACHE_HEADER); *p;) {
            const char *end = strchr(p, '\n') + 1;
            if (!line_is(p, k, nm)) {
                memcpy(out + len, p, (size_t)(end - p));
                len += (size_t)(end - p);
            }
            p = end;
        }
    }
    len += (size_t)sprintf(out + len, "%s\t%s\t%s\n", k, nm, v);
    free(old);
    if (make_parents(path) != 0 || ncl_write_file_atomic(path, out, len) != 0)
        ncl_ctx_warn(ctx, "warning: cannot write the tuning cache %s (%s): the measurement is not kept", path,
                     strerror(errno));
    free(out);
}
