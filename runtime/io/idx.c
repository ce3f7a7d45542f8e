/* IDX files (MNIST / Fashion-MNIST): a 4-byte magic 00 00 08 <ndim>, ndim big-endian uint32
 * dimensions, then the unsigned bytes. Raw and gzip files go through zlib's gzread, which
 * passes raw files through unchanged.
 *
 * A file is untrusted input: its header may declare far more data than it holds, and a gzip
 * file's uncompressed size is unknown until it has been read. So the data buffer grows only
 * as bytes actually arrive, capped at the declared size, and a tiny file that claims
 * petabytes fails as truncated after reading what is there. */
#include "status-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Sanity limits: generous for any image data set, small enough that every product fits. */
#define IDX_MAX_COUNT 100000000u
#define IDX_MAX_SIDE 4096u

/* The first data allocation; later ones double, so memory stays within twice what was read. */
#define IDX_FIRST_ALLOC ((size_t)64 << 10)

/* gzread takes an unsigned length and returns an int. */
#define IDX_MAX_READ ((size_t)1 << 30)

/* zlib's messages start with its own name for the stream; ours already names the file. */
static const char *gz_message(gzFile gz, int fd, int *err)
{
    const char *msg = gzerror(gz, err);
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "<fd:%d>: ", fd);
    if (n > 0 && strncmp(msg, prefix, (size_t)n) == 0)
        msg += n;
    return msg;
}

/* Reads until len bytes or the end of the file; *got says how many arrived. */
static enum ncl_status read_some(gzFile gz, int fd, const char *path, uint8_t *buf, size_t len,
                                 size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < IDX_MAX_READ ? len - *got : IDX_MAX_READ;
        int n = gzread(gz, buf + *got, (unsigned)want);
        int read_errno = errno;
        int err;
        const char *msg = gz_message(gz, fd, &err);
        /* zlib reports a cut-off gzip file as Z_BUF_ERROR alongside a short count, and a bad
         * checksum only once the stream's end is read, so the status matters even when
         * bytes came back. */
        if (err == Z_ERRNO)
            return ncl_fail(NCL_ERR_IO, "%s: read failed: %s", path, strerror(read_errno));
        if (err == Z_MEM_ERROR)
            return ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory in zlib", path);
        if (err == Z_BUF_ERROR)
            return ncl_fail(NCL_ERR_FORMAT, "%s: truncated gzip stream: %s", path, msg);
        if (n < 0 || err != Z_OK)
            return ncl_fail(NCL_ERR_FORMAT, "%s: corrupt gzip stream: %s", path, msg);
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return NCL_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the header and sets out->ndim, out->dims and *bytes (the declared data size). */
static enum ncl_status read_header(gzFile gz, int fd, const char *path, int expect_ndim,
                                   struct ncl_idx *out, uint64_t *bytes)
{
    uint8_t magic[4], raw_dims[12];
    size_t got;
    NCL_TRY(read_some(gz, fd, path, magic, sizeof magic, &got));
    if (got == 0)
        return ncl_fail(NCL_ERR_FORMAT, "%s: empty file (no data after decompression)", path);
    if (got < sizeof magic)
        return ncl_fail(NCL_ERR_FORMAT, "%s: truncated header: %zu of 4 magic bytes", path, got);
    if (magic[0] != 0 || magic[1] != 0)
        return ncl_fail(NCL_ERR_FORMAT,
                        "%s: bad magic %02x %02x %02x %02x: not an IDX file (expected 00 00 08 %02x)",
                        path, magic[0], magic[1], magic[2], magic[3], expect_ndim);
    if (magic[2] != 0x08)
        return ncl_fail(NCL_ERR_FORMAT, "%s: bad magic: element type 0x%02x, only unsigned byte (0x08) is supported",
                        path, magic[2]);
    if (magic[3] != expect_ndim)
        return ncl_fail(NCL_ERR_FORMAT, "%s: bad magic: file has %d dimensions, expected %d (%s)", path,
                        magic[3], expect_ndim, expect_ndim == 1 ? "labels" : "images");

    size_t dim_bytes = 4 * (size_t)expect_ndim;
    NCL_TRY(read_some(gz, fd, path, raw_dims, dim_bytes, &got));
    if (got < dim_bytes)
        return ncl_fail(NCL_ERR_FORMAT, "%s: truncated header: %zu of %zu dimension bytes", path, got, dim_bytes);

    /* Each dimension is bounded, so the product (at most 1e8 * 4096 * 4096) fits 64 bits. */
    uint64_t total = 1;
    for (int i = 0; i < expect_ndim; i++) {
        uint32_t d = be32(raw_dims + 4 * i);
        uint32_t limit = i == 0 ? IDX_MAX_COUNT : IDX_MAX_SIDE;
        if (d == 0)
            return ncl_fail(NCL_ERR_FORMAT, "%s: dimension %d is zero", path, i);
        if (d > limit)
            return ncl_fail(NCL_ERR_FORMAT, "%s: dimension %d is %u, more than the limit of %u", path, i, d,
                            limit);
        out->dims[i] = d;
        total *= d;
    }
    out->ndim = expect_ndim;
    *bytes = total;
    return NCL_OK;
}

/* "60000 x 28 x 28 = 47040000 bytes" (images) or "60000 bytes" (labels) for messages. */
static void describe_size(const struct ncl_idx *idx, uint64_t bytes, char *buf, size_t size)
{
    if (idx->ndim == 1) {
        snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
        return;
    }
    int n = 0;
    for (int i = 0; i < idx->ndim && n >= 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? " x " : "", (long long)idx->dims[i]);
    if (n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " = %llu bytes", (unsigned long long)bytes);
}

/* Reads the declared data, growing the buffer only as bytes arrive, then makes sure nothing
 * follows it. The read past the end also makes zlib verify the gzip checksum. */
static enum ncl_status read_data(gzFile gz, int fd, const char *path, struct ncl_idx *out, uint64_t bytes)
{
    char size_text[96];
    describe_size(out, bytes, size_text, sizeof size_text);
    if (bytes != (uint64_t)(size_t)bytes)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: header declares %s, too large for this machine", path, size_text);
    size_t want = (size_t)bytes;

    size_t cap = want < IDX_FIRST_ALLOC ? want : IDX_FIRST_ALLOC;
    uint8_t *data = malloc(cap);
    if (!data)
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes", path, cap);
    size_t have = 0;
    for (;;) {
        size_t got;
        enum ncl_status s = read_some(gz, fd, path, data + have, cap - have, &got);
        if (s) {
            free(data);
            return s;
        }
        have += got;
        if (have < cap || cap == want)
            break;
        size_t next = cap > want / 2 ? want : cap * 2;
        uint8_t *grown = realloc(data, next);
        if (!grown) {
            free(data);
            return ncl_fail(NCL_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes", path, next);
        }
        data = grown;
        cap = next;
    }
    if (have < want) {
        free(data);
        return ncl_fail(NCL_ERR_FORMAT, "%s: truncated data: header declares %s, file holds %zu", path, size_text,
                        have);
    }

    /* Count what follows so the message says how much too long the file is. */
    uint64_t extra = 0;
    for (;;) {
        uint8_t scratch[4096];
        size_t got;
        enum ncl_status s = read_some(gz, fd, path, scratch, sizeof scratch, &got);
        if (s) {
            free(data);
            return s;
        }
        extra += got;
        if (got < sizeof scratch)
            break;
    }
    if (extra) {
        free(data);
        return ncl_fail(NCL_ERR_FORMAT, "%s: trailing data: header declares %s, file holds %llu bytes more", path,
                        size_text, (unsigned long long)extra);
    }
    out->data = data;
    return NCL_OK;
}

enum ncl_status ncl_idx_read(const char *path, int expect_ndim, struct ncl_idx *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out)
        return ncl_fail(NCL_ERR_ARG, "ncl_idx_read: path and out must not be NULL");
    if (expect_ndim != 1 && expect_ndim != 3)
        return ncl_fail(NCL_ERR_ARG, "%s: expect_ndim is %d, must be 1 (labels) or 3 (images)", path, expect_ndim);

    /* open + fstat checks the very file that is then read. */
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return ncl_fail(NCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ncl_fail(NCL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return ncl_fail(NCL_ERR_IO, "%s: is a directory, not an IDX file", path);
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        close(fd);
        return ncl_fail(NCL_ERR_FORMAT, "%s: empty file", path);
    }
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: cannot set up zlib to read", path);
    }
    /* A larger input buffer than zlib's 8 KiB default: fewer read calls on 26 MB files. */
    gzbuffer(gz, 128 << 10);

    uint64_t bytes = 0;
    enum ncl_status s = read_header(gz, fd, path, expect_ndim, out, &bytes);
    if (s == NCL_OK)
        s = read_data(gz, fd, path, out, bytes);
    gzclose(gz);
    if (s != NCL_OK) {
        memset(out, 0, sizeof *out);
        return s;
    }
    /* Unused dimensions are 1 so dims[0] * dims[1] * dims[2] is the byte count for labels too. */
    for (int i = out->ndim; i < 3; i++)
        out->dims[i] = 1;
    return NCL_OK;
}

void ncl_idx_free(struct ncl_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* dir/name, or NULL when memory runs out. */
static char *join_path(const char *dir, const char *split, const char *suffix)
{
    size_t n = strlen(dir) + strlen(split) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, split, suffix);
    return p;
}

/* Reads <dir>/<split><stem>, else the same with .gz; the raw file wins when both exist because
 * it is what someone who unpacked the data set means to use. */
static enum ncl_status load_one(const char *dir, const char *split, const char *stem, int ndim,
                                struct ncl_idx *out, char **used)
{
    char gz_stem[64];
    snprintf(gz_stem, sizeof gz_stem, "%s.gz", stem);
    char *raw = join_path(dir, split, stem);
    char *gz = join_path(dir, split, gz_stem);
    if (!raw || !gz) {
        free(raw);
        free(gz);
        return ncl_fail(NCL_ERR_NO_MEMORY, "%s: cannot allocate a file name", dir);
    }
    struct stat st;
    char *path;
    if (stat(raw, &st) == 0) {
        path = raw;
        free(gz);
    } else if (stat(gz, &st) == 0) {
        path = gz;
        free(raw);
    } else {
        int e = errno;
        enum ncl_status s = ncl_fail(NCL_ERR_IO, "%s: missing data file: %s (also tried %s)", raw,
                                     strerror(e), gz);
        free(raw);
        free(gz);
        return s;
    }
    enum ncl_status s = ncl_idx_read(path, ndim, out);
    if (s != NCL_OK) {
        free(path);
        return s;
    }
    *used = path;
    return NCL_OK;
}

enum ncl_status ncl_dataset_load(const char *dir, const char *split, int classes, struct ncl_dataset *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!dir || !split || !out)
        return ncl_fail(NCL_ERR_ARG, "ncl_dataset_load: dir, split and out must not be NULL");
    if (classes < 1 || classes > 256)
        return ncl_fail(NCL_ERR_ARG, "%s: classes is %d, must be 1..256 for byte labels", dir, classes);
    struct stat st;
    if (stat(dir, &st) != 0)
        return ncl_fail(NCL_ERR_IO, "data folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ncl_fail(NCL_ERR_IO, "data folder %s is not a folder", dir);

    struct ncl_idx images = { 0 }, labels = { 0 };
    char *image_path = NULL, *label_path = NULL;
    enum ncl_status s = load_one(dir, split, "-images-idx3-ubyte", 3, &images, &image_path);
    if (s == NCL_OK)
        s = load_one(dir, split, "-labels-idx1-ubyte", 1, &labels, &label_path);
    if (s == NCL_OK && images.dims[0] != labels.dims[0])
        s = ncl_fail(NCL_ERR_FORMAT, "%s holds %lld images but %s holds %lld labels", image_path,
                     (long long)images.dims[0], label_path, (long long)labels.dims[0]);
    for (int64_t i = 0; s == NCL_OK && i < labels.dims[0]; i++) {
        if (labels.data[i] >= classes)
            s = ncl_fail(NCL_ERR_FORMAT, "%s: label %d at index %lld is out of range (classes = %d)", label_path,
                         labels.data[i], (long long)i, classes);
    }
    free(image_path);
    free(label_path);
    if (s != NCL_OK) {
        ncl_idx_free(&images);
        ncl_idx_free(&labels);
        return s;
    }
    out->count = images.dims[0];
    out->rows = (int)images.dims[1];
    out->cols = (int)images.dims[2];
    out->images = images.data;
    out->labels = labels.data;
    return NCL_OK;
}

void ncl_dataset_free(struct ncl_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
