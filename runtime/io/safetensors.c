/* safetensors checkpoints, float32 only (https://github.com/huggingface/safetensors):
 *   8 bytes   N, little-endian u64
 *   N bytes   JSON object: {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
 *             "data_offsets": [begin, end]}, ...}, padded with spaces so the data starts 8-aligned
 *   rest      the data buffer; offsets are relative to its start, little-endian floats.
 * The reader applies the reference implementation's checks, so what it accepts also loads with
 * safetensors.torch.load_file: header at most 100 MB and starting with '{', valid UTF-8, no
 * duplicate keys, and the tensors tile the data buffer exactly (no overlaps, no holes, nothing
 * after). Beyond the format it takes only F32 and I64 (BatchNorm's num_batches_tracked), at most
 * 4 dims and names that fit the struct. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fileno, fstat, fsync, getpid */
#endif
#include "status-impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000u        /* the reference implementation's limit */
#define ST_MAX_INT 9007199254740992.0   /* 2^53: cJSON keeps numbers as doubles */
#define ST_NAME_SIZE sizeof(((struct ncl_st_tensor *)0)->name)
#define ST_META "__metadata__"

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Index of the first byte that is not UTF-8 (strict: no overlong forms, surrogates or code
 * points past U+10FFFF), or n when all are fine. For JSON text (json set) also the first control
 * character other than whitespace: those never appear raw in JSON. cJSON checks neither. */
static size_t text_bad_byte(const unsigned char *s, size_t n, int json)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], cp, min;
        size_t len;
        if (c < 0x80) {
            if (json && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return i;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += len;
    }
    return n;
}

/* cJSON escapes control characters when it prints a string, but passes other bytes through. */
static int is_utf8(const char *s)
{
    size_t n = strlen(s);
    return text_bad_byte((const unsigned char *)s, n, 0) == n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice (names is reordered), or NULL. Sorting keeps a header with
 * many entries from costing n^2 comparisons. */
static const char *find_duplicate(const char **names, int n)
{
    if (n < 2)
        return NULL;
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* "[2, 3]" into buf, for messages. */
static const char *shape_str(char *buf, size_t size, const int64_t *dims, int ndim)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Appends item to an array; a NULL item means an allocation failed. Frees item when it cannot
 * be added, so a failed build leaks nothing. */
static int json_push(cJSON *array, cJSON *item)
{
    int ok = item && cJSON_AddItemToArray(array, item);
    if (!ok)
        cJSON_Delete(item);
    return ok;
}

/* Integers go in as raw text: cJSON would print large doubles in exponent form. */
static cJSON *json_uint(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* Element count of t, or -1 when the dims are invalid or the byte size overflows. */
static int64_t tensor_count(const struct ncl_st_tensor *t)
{
    int64_t count = 1;
    if (t->ndim < 0 || t->ndim > 4)
        return -1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->dims[d] < 0 || t->dims[d] > (int64_t)ST_MAX_INT)
            return -1;
        if (t->dims[d] == 0)
            return 0;
    }
    for (int d = 0; d < t->ndim; d++) {
        if (count > INT64_MAX / 8 / t->dims[d])
            return -1;
        count *= t->dims[d];
    }
    return count;
}

static enum ncl_status check_write_args(const char *path, const struct ncl_st_tensor *tensors, int count,
                                        const char *const *meta_keys, const char *const *meta_values,
                                        int meta_count, const char **names)
{
    if (count < 0 || meta_count < 0 || (count > 0 && !tensors) ||
        (meta_count > 0 && (!meta_keys || !meta_values)))
        return ncl_fail(NCL_ERR_ARG, "%s: bad tensor or metadata list (count %d, meta_count %d)", path, count,
                        meta_count);
    for (int i = 0; i < count; i++) {
        const struct ncl_st_tensor *t = &tensors[i];
        if (!memchr(t->name, '\0', ST_NAME_SIZE))
            return ncl_fail(NCL_ERR_ARG, "%s: tensor %d's name is not terminated", path, i);
        if (strcmp(t->name, ST_META) == 0 || !is_utf8(t->name))
            return ncl_fail(NCL_ERR_ARG, "%s: tensor %d's name '%s' is reserved or not UTF-8 text", path, i,
                            t->name);
        int64_t n = tensor_count(t);
        if (n < 0)
            return ncl_fail(NCL_ERR_ARG, "%s: tensor '%s' has a bad shape (ndim %d)", path, t->name, t->ndim);
        if (n > 0 && !(t->is_i64 ? (const void *)t->data_i64 : (const void *)t->data))
            return ncl_fail(NCL_ERR_ARG, "%s: tensor '%s' has no data", path, t->name);
        names[i] = t->name;
    }
    const char *dup = find_duplicate(names, count);
    if (dup)
        return ncl_fail(NCL_ERR_ARG, "%s: tensor name '%s' given twice", path, dup);
    for (int i = 0; i < meta_count; i++) {
        const char *k = meta_keys[i], *v = meta_values[i];
        if (!k || !v || !is_utf8(k) || !is_utf8(v))
            return ncl_fail(NCL_ERR_ARG, "%s: metadata entry %d is NULL or not UTF-8 text", path, i);
        names[i] = k;
    }
    dup = find_duplicate(names, meta_count);
    if (dup)
        return ncl_fail(NCL_ERR_ARG, "%s: metadata key '%s' given twice", path, dup);
    return NCL_OK;
}

/* The JSON header text, unpadded (cJSON_free it), or NULL when memory ran out. Keys keep the
 * caller's order: the format does not ask for sorted keys, and readers sort by offset. */
static char *build_header(const struct ncl_st_tensor *tensors, int count, const char *const *meta_keys,
                          const char *const *meta_values, int meta_count)
{
    /* the cJSON_Add*ToObject calls create and attach in one step (NULL when memory ran out),
     * so everything built so far is freed with root */
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && meta_count > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, ST_META);
        ok = meta != NULL;
        for (int i = 0; ok && i < meta_count; i++)
            ok = cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]) != NULL;
    }
    uint64_t offset = 0;
    for (int i = 0; ok && i < count; i++) {
        const struct ncl_st_tensor *t = &tensors[i];
        uint64_t bytes = (t->is_i64 ? 8 : 4) * (uint64_t)tensor_count(t);
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        ok = entry && cJSON_AddStringToObject(entry, "dtype", t->is_i64 ? "I64" : "F32");
        cJSON *shape = ok ? cJSON_AddArrayToObject(entry, "shape") : NULL;
        ok = shape != NULL;
        for (int d = 0; ok && d < t->ndim; d++)
            ok = json_push(shape, json_uint((uint64_t)t->dims[d]));
        cJSON *offs = ok ? cJSON_AddArrayToObject(entry, "data_offsets") : NULL;
        ok = offs && json_push(offs, json_uint(offset)) && json_push(offs, json_uint(offset + bytes));
        offset += bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* Writes count int64s as little-endian bytes. */
static int write_i64(FILE *fp, const int64_t *data, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        unsigned char b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)((uint64_t)data[i] >> (8 * k));
        if (fwrite(b, 1, 8, fp) != 8)
            return 0;
    }
    return 1;
}

/* Writes count floats as little-endian bytes, through a small buffer on big-endian hosts. */
static int write_floats(FILE *fp, const float *data, size_t count)
{
    if (count == 0)
        return 1;   /* data may be NULL, which fwrite must not see even for 0 bytes */
    if (host_is_little_endian())
        return fwrite(data, 4, count, fp) == count;
    unsigned char buf[4096];
    for (size_t i = 0; i < count;) {
        size_t n = 0;
        for (; n < sizeof buf && i < count; n += 4, i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            for (int b = 0; b < 4; b++)
                buf[n + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        if (fwrite(buf, 1, n, fp) != n)
            return 0;
    }
    return 1;
}

/* After the rename the new file is in place; syncing its folder makes the rename itself
 * survive a crash. */
static enum ncl_status sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *dir = malloc(len + 1);
    if (!dir)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory", path);
    memcpy(dir, slash ? path : ".", len);
    dir[len] = '\0';
    enum ncl_status s = NCL_OK;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) {
        s = ncl_fail(NCL_ERR_IO, "%s: written, but cannot open its folder %s to sync it: %s", path, dir,
                     strerror(errno));
    } else {
        /* some file systems cannot sync a folder (EINVAL); nothing more can be done there */
        if (fsync(fd) != 0 && errno != EINVAL)
            s = ncl_fail(NCL_ERR_IO, "%s: written, but syncing its folder %s failed: %s", path, dir,
                         strerror(errno));
        close(fd);
    }
    free(dir);
    return s;
}

enum ncl_status ncl_st_write(const char *path, const struct ncl_st_tensor *tensors, int count,
                             const char *const *meta_keys, const char *const *meta_values, int meta_count)
{
    if (!path)
        return ncl_fail(NCL_ERR_ARG, "ncl_st_write: path is NULL");
    int most = count > meta_count ? count : meta_count;
    const char **names = malloc(sizeof *names * (size_t)(most > 0 ? most : 1));
    if (!names)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory", path);
    enum ncl_status s = check_write_args(path, tensors, count, meta_keys, meta_values, meta_count, names);
    free(names);
    if (s)
        return s;

    char *json = build_header(tensors, count, meta_keys, meta_values, meta_count);
    int tmp_len = snprintf(NULL, 0, "%s.tmp-%ld", path, (long)getpid());
    char *tmp = malloc((size_t)tmp_len + 1);
    if (!json || !tmp) {
        cJSON_free(json);
        free(tmp);
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    snprintf(tmp, (size_t)tmp_len + 1, "%s.tmp-%ld", path, (long)getpid());

    size_t json_len = strlen(json), pad = (8 - json_len % 8) % 8;
    uint64_t n = json_len + pad;
    unsigned char len_bytes[8];
    for (int b = 0; b < 8; b++)
        len_bytes[b] = (unsigned char)(n >> (8 * b));

    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        s = ncl_fail(NCL_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    int ok = fwrite(len_bytes, 1, 8, fp) == 8 && fwrite(json, 1, json_len, fp) == json_len &&
             fwrite("        ", 1, pad, fp) == pad;
    for (int i = 0; ok && i < count; i++)
        ok = tensors[i].is_i64 ? write_i64(fp, tensors[i].data_i64, (size_t)tensor_count(&tensors[i]))
                               : write_floats(fp, tensors[i].data, (size_t)tensor_count(&tensors[i]));
    if (!ok || fflush(fp) != 0) {
        s = ncl_fail(NCL_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(errno));
    } else if (fsync(fileno(fp)) != 0) {
        s = ncl_fail(NCL_ERR_IO, "%s: syncing %s failed: %s", path, tmp, strerror(errno));
    }
    if (fclose(fp) != 0 && !s)
        s = ncl_fail(NCL_ERR_IO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = ncl_fail(NCL_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s)
        remove(tmp);
    else
        s = sync_parent(path);
out:
    cJSON_free(json);
    free(tmp);
    return s;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* A non-negative integer exactly representable in the double cJSON parsed it into. */
static int json_uint_value(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

struct span {
    uint64_t begin, end;
    struct ncl_st_tensor *t;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Fills t from one header entry after checking it against the data buffer's size. */
static enum ncl_status parse_tensor(const char *path, const cJSON *entry, uint64_t buffer_size,
                                    struct ncl_st_tensor *t, struct span *span)
{
    const char *name = entry->string;
    size_t name_len = strlen(name);
    if (name_len >= ST_NAME_SIZE)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor name '%.32s...' is %zu bytes, more than the %zu allowed",
                        path, name, name_len, ST_NAME_SIZE - 1);
    memcpy(t->name, name, name_len + 1);
    if (!cJSON_IsObject(entry))
        return ncl_fail(NCL_ERR_FORMAT, "%s: entry '%s' is not an object", path, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has no dtype string", path, name);
    t->is_i64 = strcmp(dtype->valuestring, "I64") == 0;
    if (strcmp(dtype->valuestring, "F32") != 0 && !t->is_i64)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has dtype '%.32s'; only F32 and I64 are supported", path,
                        name, dtype->valuestring);
    uint64_t esize = t->is_i64 ? 8 : 4;

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has no shape array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > 4)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has %d dimensions, more than 4", path, name, ndim);
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (!json_uint_value(d, &v))
            return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has a shape entry that is not a non-negative integer",
                            path, name);
        t->dims[t->ndim++] = (int64_t)v;
    }

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint_value(offs->child, &begin) ||
        !json_uint_value(offs->child->next, &end))
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has no data_offsets [begin, end] of integers", path, name);
    if (end < begin)
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64 "] ending before they begin", path,
                        name, begin, end);
    if (end > buffer_size)
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64 "] beyond the %" PRIu64
                        "-byte data buffer",
                        path, name, begin, end, buffer_size);

    /* count * 4 must equal the span; stop multiplying once it cannot, so nothing overflows */
    uint64_t bytes = end - begin, count = 1;
    int fits = 1;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] == 0)
            count = 0;
    for (int d = 0; count && fits && d < t->ndim; d++) {
        uint64_t v = (uint64_t)t->dims[d];
        fits = count <= bytes / esize / v;
        count *= fits ? v : 1;
    }
    if (!fits || count * esize != bytes) {
        char buf[128];
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: tensor '%s' has shape %s but data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                        " bytes (%s is %d bytes an element)",
                        path, name, shape_str(buf, sizeof buf, t->dims, t->ndim), begin, end, bytes,
                        t->is_i64 ? "I64" : "F32", (int)esize);
    }
    span->begin = begin;
    span->end = end;
    span->t = t;
    return NCL_OK;
}

static enum ncl_status parse_metadata(const char *path, const cJSON *meta, struct ncl_st_file *out)
{
    if (cJSON_IsNull(meta))
        return NCL_OK;  /* what serde reads as "no metadata" */
    if (!cJSON_IsObject(meta))
        return ncl_fail(NCL_ERR_FORMAT, "%s: " ST_META " is not an object", path);
    int n = cJSON_GetArraySize(meta);
    if (n == 0)
        return NCL_OK;
    out->meta_keys = calloc((size_t)n, sizeof *out->meta_keys);
    out->meta_values = calloc((size_t)n, sizeof *out->meta_values);
    if (!out->meta_keys || !out->meta_values)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for %d metadata entries", path, n);
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return ncl_fail(NCL_ERR_FORMAT, "%s: " ST_META " value of '%.64s' is not a string", path, e->string);
        int i = out->meta_count++;
        out->meta_keys[i] = copy_str(e->string);
        out->meta_values[i] = copy_str(e->valuestring);
        if (!out->meta_keys[i] || !out->meta_values[i])
            return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for metadata", path);
    }
    return NCL_OK;
}

/* NCL_ERR_FORMAT naming the first key that occurs twice; the format forbids duplicates and
 * JSON parsers differ in which one they keep. */
static enum ncl_status check_unique(const char *path, const char *what, const char **names, int n)
{
    const char *dup = find_duplicate(names, n);
    if (dup)
        return ncl_fail(NCL_ERR_FORMAT, "%s: %s '%s' occurs twice", path, what, dup);
    return NCL_OK;
}

/* Reads the data of the tensors in offset order: they tile the buffer, so this is one
 * sequential pass and no byte is read twice. */
static enum ncl_status read_data(const char *path, FILE *fp, struct ncl_st_file *out, const struct span *spans)
{
    for (int i = 0; i < out->count; i++) {
        struct ncl_st_tensor *t = spans[i].t;
        size_t bytes = (size_t)(spans[i].end - spans[i].begin);
        /* at least one element, so a 0-element tensor also has a non-NULL pointer */
        void *mem = malloc(bytes ? bytes : 8);
        if (t->is_i64)
            t->data_i64 = mem;
        else
            t->data = mem;
        if (!mem)
            return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for tensor '%s' (%zu bytes)", path, t->name,
                            bytes);
        if (fread(mem, 1, bytes, fp) != bytes)
            return ncl_fail(NCL_ERR_IO, "%s: reading tensor '%s' failed: %s", path, t->name,
                            ferror(fp) ? strerror(errno) : "file shrank while reading");
        if (t->is_i64) {   /* little-endian bytes to host order */
            const unsigned char *b = mem;
            for (size_t k = 0; k < bytes / 8; k++) {
                uint64_t u = 0;
                for (int j = 7; j >= 0; j--)
                    u = u << 8 | b[8 * k + j];
                t->data_i64[k] = (int64_t)u;
            }
        } else if (!host_is_little_endian()) {
            unsigned char *b = (unsigned char *)t->data;
            for (size_t k = 0; k < bytes / 4; k++) {
                uint32_t u = (uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 | (uint32_t)b[4 * k + 2] << 16 |
                             (uint32_t)b[4 * k + 3] << 24;
                memcpy(&t->data[k], &u, 4);
            }
        }
    }
    return NCL_OK;
}

/* Everything after the 8-byte length: header checks, then the tensors, then their data. */
static enum ncl_status read_file(const char *path, FILE *fp, uint64_t file_size, struct ncl_st_file *out)
{
    unsigned char len_bytes[8];
    if (fread(len_bytes, 1, 8, fp) != 8)
        return ncl_fail(NCL_ERR_IO, "%s: cannot read the header length: %s", path,
                        ferror(fp) ? strerror(errno) : "file shrank while reading");
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = n << 8 | len_bytes[b];
    if (n == 0)
        return ncl_fail(NCL_ERR_FORMAT, "%s: header length is 0", path);
    if (n > ST_MAX_HEADER)
        return ncl_fail(NCL_ERR_FORMAT, "%s: header length %" PRIu64 " is over the limit of %u bytes", path, n,
                        ST_MAX_HEADER);
    if (n > file_size - 8)
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: header length %" PRIu64 " is past the end of the %" PRIu64 "-byte file", path, n,
                        file_size);
    uint64_t buffer_size = file_size - 8 - n;

    /* n is now known to be small and backed by the file */
    char *header = malloc((size_t)n + 1);
    if (!header)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for a %" PRIu64 "-byte header", path, n);
    cJSON *root = NULL;
    struct span *spans = NULL;
    const char **names = NULL;
    enum ncl_status s = NCL_OK;
    if (fread(header, 1, (size_t)n, fp) != (size_t)n) {
        s = ncl_fail(NCL_ERR_IO, "%s: cannot read the header: %s", path,
                     ferror(fp) ? strerror(errno) : "file shrank while reading");
        goto out;
    }
    header[n] = '\0';
    if (header[0] != '{') {
        s = ncl_fail(NCL_ERR_FORMAT, "%s: header does not start with '{'", path);
        goto out;
    }
    size_t bad = text_bad_byte((const unsigned char *)header, (size_t)n, 1);
    if (bad != n) {
        s = ncl_fail(NCL_ERR_FORMAT, "%s: header byte %zu (0x%02x) is not UTF-8 JSON text", path, bad,
                     (unsigned char)header[bad]);
        goto out;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(header, (size_t)n, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        s = ncl_fail(NCL_ERR_FORMAT, "%s: header is not a JSON object (error near byte %td)", path,
                     end ? end - header : (ptrdiff_t)0);
        goto out;
    }
    /* the writer pads with spaces; serde_json also takes any JSON whitespace */
    for (; end < header + n; end++)
        if (!strchr(" \t\n\r", *end)) {
            s = ncl_fail(NCL_ERR_FORMAT, "%s: header has text after the JSON object at byte %td", path,
                         end - header);
            goto out;
        }

    int count = 0, metas = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, ST_META) == 0)
            metas++;
        else
            count++;
    }
    if (metas > 1) {
        s = ncl_fail(NCL_ERR_FORMAT, "%s: key '" ST_META "' occurs twice", path);
        goto out;
    }
    if (count > 0) {
        out->tensors = calloc((size_t)count, sizeof *out->tensors);
        spans = calloc((size_t)count, sizeof *spans);
        names = calloc((size_t)count, sizeof *names);
        if (!out->tensors || !spans || !names) {
            s = ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for %d tensors", path, count);
            goto out;
        }
    }
    for (const cJSON *e = root->child; e && !s; e = e->next) {
        if (strcmp(e->string, ST_META) == 0) {
            s = parse_metadata(path, e, out);
            if (!s && out->meta_count > 0) {
                const char **keys = malloc(sizeof *keys * (size_t)out->meta_count);
                if (!keys) {
                    s = ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory", path);
                } else {
                    memcpy(keys, out->meta_keys, sizeof *keys * (size_t)out->meta_count);
                    s = check_unique(path, ST_META " key", keys, out->meta_count);
                    free(keys);
                }
            }
        } else {
            int i = out->count;
            s = parse_tensor(path, e, buffer_size, &out->tensors[i], &spans[i]);
            names[i] = out->tensors[i].name;
            out->count++;
        }
    }
    if (s || (s = check_unique(path, "tensor name", names, out->count)))
        goto out;

    /* the tensors must tile the buffer exactly, as in the reference reader: sorted by offset,
     * each begins where the previous one ended and the last ends at the end of the file */
    if (count > 1)
        qsort(spans, (size_t)count, sizeof *spans, cmp_span);
    uint64_t pos = 0;
    for (int i = 0; i < count; i++) {
        if (spans[i].begin < pos) {
            s = ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' overlaps tensor '%s'", path, spans[i].t->name,
                         spans[i - 1].t->name);
            goto out;
        }
        if (spans[i].begin > pos) {
            s = ncl_fail(NCL_ERR_FORMAT,
                         "%s: data bytes %" PRIu64 "..%" PRIu64 " before tensor '%s' belong to no tensor", path,
                         pos, spans[i].begin, spans[i].t->name);
            goto out;
        }
        pos = spans[i].end;
    }
    if (pos != buffer_size) {
        s = ncl_fail(NCL_ERR_FORMAT,
                     "%s: the %" PRIu64 "-byte data buffer has %" PRIu64 " bytes after the last tensor", path,
                     buffer_size, buffer_size - pos);
        goto out;
    }
    s = read_data(path, fp, out, spans);
out:
    cJSON_Delete(root);
    free(header);
    free(spans);
    free(names);
    return s;
}

enum ncl_status ncl_st_read(const char *path, struct ncl_st_file *out)
{
    if (!out)
        return ncl_fail(NCL_ERR_ARG, "ncl_st_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return ncl_fail(NCL_ERR_ARG, "ncl_st_read: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ncl_fail(NCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    enum ncl_status s;
    if (fstat(fileno(fp), &st) != 0)
        s = ncl_fail(NCL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = ncl_fail(NCL_ERR_IO, "%s: not a regular file", path);
    else if (st.st_size < 8)
        s = ncl_fail(NCL_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                     (long long)st.st_size);
    else
        s = read_file(path, fp, (uint64_t)st.st_size, out);
    fclose(fp);
    if (s)
        ncl_st_free(out);
    return s;
}

const struct ncl_st_tensor *ncl_st_find(const struct ncl_st_file *f, const char *name)
{
    for (int i = 0; f && name && i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *ncl_st_meta(const struct ncl_st_file *f, const char *key)
{
    for (int i = 0; f && key && i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

void ncl_st_free(struct ncl_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->count; i++) {
        free(f->tensors[i].data);
        free(f->tensors[i].data_i64);
    }
    free(f->tensors);
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}
