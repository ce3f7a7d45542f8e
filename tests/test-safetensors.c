/* safetensors reader/writer: round trip, the byte layout PyTorch expects, one malformed file
 * per validation rule, and the atomic write (a failed write leaves the old file intact and no
 * temporary file behind). Everything happens in a fresh mkdtemp folder. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "nincl.h"
#include "check.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

static long file_bytes(const char *path, unsigned char *buf, long size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    long n = (long)fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    return n;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "cannot create %s", path);
    if (fp) {
        CHECK(fwrite(bytes, 1, len, fp) == len, "short write to %s", path);
        fclose(fp);
    }
}

/* A file with header length n (as declared), the JSON text and data_len zero bytes. */
static void write_st(const char *path, uint64_t n, const char *json, size_t data_len)
{
    size_t json_len = strlen(json);
    unsigned char *buf = calloc(1, 8 + json_len + data_len + 1);
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)(n >> (8 * b));
    memcpy(buf + 8, json, json_len);
    write_bytes(path, buf, 8 + json_len + data_len);
    free(buf);
}

/* Number of "*.tmp-*" files in dir: a write must never leave one behind. */
static int temp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void expect_fail(const char *path, enum ncl_status want, const char *what)
{
    struct ncl_st_file f;
    memset(&f, 0x5a, sizeof f);   /* the reader must clear it even when it fails */
    enum ncl_status s = ncl_st_read(path, &f);
    const char *msg = ncl_last_error();
    CHECK(s == want, "%s: status %s, want %s (%s)", path, ncl_status_str(s), ncl_status_str(want), msg);
    CHECK(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    CHECK(strstr(msg, what) != NULL, "message lacks '%s': %s", what, msg);
    CHECK(!strchr(msg, '\n'), "message is not one line: %s", msg);
    CHECK(f.count == 0 && f.tensors == NULL && f.meta_count == 0, "%s: output not cleared", path);
    ncl_st_free(&f);
}

/* ---- round trip --------------------------------------------------------------------------- */

static float scalar_v[1] = {3.5f};
static float vec_v[5] = {1.0f, -2.0f, 0.0f, -0.0f, 1e-38f};
static float mat_v[3 * 4];
static float cube_v[2 * 1 * 3];
static float conv_v[2 * 3 * 2 * 2];

static void fill(float *v, int n, float scale)
{
    for (int i = 0; i < n; i++)
        v[i] = scale * (float)(i - n / 2) / 7.0f;
}

static struct ncl_st_tensor sample[] = {
    {.name = "conv.weight", .ndim = 4, .dims = {2, 3, 2, 2}, .data = conv_v},
    {.name = "conv.bias", .ndim = 1, .dims = {5}, .data = vec_v},
    {.name = "lin.weight", .ndim = 2, .dims = {3, 4}, .data = mat_v},
    {.name = "cube", .ndim = 3, .dims = {2, 1, 3}, .data = cube_v},
    {.name = "step", .ndim = 0, .data = scalar_v},
    {.name = "empty", .ndim = 2, .dims = {0, 3}, .data = NULL},
    {.name = "\xc3\xbcnicode \xe2\x82\xac", .ndim = 1, .dims = {1}, .data = scalar_v},
};
#define SAMPLE_COUNT ((int)(sizeof sample / sizeof sample[0]))
static const char *const meta_k[] = {"format", "step", "note"};
static const char *const meta_v[] = {"pt", "1200", "quote \" backslash \\ tab \t \xc3\xa9"};

static long elements(const struct ncl_st_tensor *t)
{
    long n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (long)t->dims[d];
    return n;
}

static void check_same(const struct ncl_st_file *f)
{
    CHECK(f->count == SAMPLE_COUNT, "count %d", f->count);
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        const struct ncl_st_tensor *want = &sample[i], *got = ncl_st_find(f, want->name);
        CHECK(got != NULL, "tensor '%s' missing", want->name);
        if (!got)
            continue;
        CHECK(got->ndim == want->ndim, "%s: ndim %d", want->name, got->ndim);
        CHECK(memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)want->ndim) == 0, "%s: dims", want->name);
        CHECK(got->data != NULL, "%s: data is NULL", want->name);
        long n = elements(want);
        /* bit-exact, so -0.0 and denormals survive */
        CHECK(n == 0 || memcmp(got->data, want->data, sizeof(float) * (size_t)n) == 0, "%s: data differs",
              want->name);
    }
    CHECK(f->meta_count == 3, "meta_count %d", f->meta_count);
    for (int i = 0; i < 3; i++) {
        const char *v = ncl_st_meta(f, meta_k[i]);
        CHECK(v && strcmp(v, meta_v[i]) == 0, "meta %s = %s", meta_k[i], v ? v : "(null)");
    }
    CHECK(ncl_st_find(f, "absent") == NULL, "found an absent tensor");
    CHECK(ncl_st_meta(f, "absent") == NULL, "found an absent metadata key");
}

static void test_round_trip(void)
{
    fill(mat_v, 12, 1.0f);
    fill(cube_v, 6, -3.0f);
    fill(conv_v, 24, 1e6f);
    char path[128];
    in_dir(path, sizeof path, "round.safetensors");
    enum ncl_status s = ncl_st_write(path, sample, SAMPLE_COUNT, meta_k, meta_v, 3);
    CHECK(s == NCL_OK, "write: %s", ncl_last_error());
    CHECK(temp_files() == 0, "a temporary file was left behind");

    /* layout: u64 N, N bytes of JSON padded with spaces to 8-byte alignment, then the data */
    static unsigned char buf[4096];
    long size = file_bytes(path, buf, sizeof buf);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = n << 8 | buf[b];
    long data_bytes = 0;
    for (int i = 0; i < SAMPLE_COUNT; i++)
        data_bytes += 4 * elements(&sample[i]);
    CHECK(n % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)n);
    CHECK(size == (long)(8 + n) + data_bytes, "file is %ld bytes, header %llu, data %ld", size,
          (unsigned long long)n, data_bytes);
    CHECK(buf[8] == '{', "header starts with 0x%02x", buf[8]);
    long close_brace = 8 + (long)n - 1;
    while (close_brace > 8 && buf[close_brace] == ' ')
        close_brace--;
    CHECK(buf[close_brace] == '}' && (long)(8 + n) - 1 - close_brace < 8, "header padding is not 0-7 spaces");
    CHECK(memcmp(buf + 8, "{\"__metadata__\":{\"format\":\"pt\"", 30) == 0, "header begins %.40s", buf + 8);
    /* the first tensor's data begins the buffer, little-endian */
    float first;
    memcpy(&first, buf + 8 + n, 4);
    CHECK(first == conv_v[0], "first data float %g, want %g", first, conv_v[0]);

    struct ncl_st_file f;
    s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK, "read: %s", ncl_last_error());
    if (s == NCL_OK)
        check_same(&f);
    ncl_st_free(&f);
    ncl_st_free(&f);   /* freeing twice is harmless: the struct is zeroed */
    struct ncl_st_file zero = {0};
    ncl_st_free(&zero);
    ncl_st_free(NULL);

    /* no tensors, no metadata: the reference writer's "{}" plus six spaces */
    in_dir(path, sizeof path, "empty.safetensors");
    s = ncl_st_write(path, NULL, 0, NULL, NULL, 0);
    CHECK(s == NCL_OK, "write empty: %s", ncl_last_error());
    size = file_bytes(path, buf, sizeof buf);
    CHECK(size == 16 && memcmp(buf, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0, "empty file is %ld bytes", size);
    s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK && f.count == 0 && f.meta_count == 0, "read empty: %s", ncl_last_error());
    ncl_st_free(&f);

    /* writing over an existing file replaces it */
    s = ncl_st_write(path, sample + 1, 1, NULL, NULL, 0);
    CHECK(s == NCL_OK, "overwrite: %s", ncl_last_error());
    s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK && f.count == 1 && strcmp(f.tensors[0].name, "conv.bias") == 0, "overwrite read back: %s",
          ncl_last_error());
    ncl_st_free(&f);
    CHECK(temp_files() == 0, "a temporary file was left behind");
}

/* Files written by other tools: keys in any order, offsets not in key order, whitespace and
 * escapes in the JSON, metadata null. */
static void test_foreign(void)
{
    char path[128];
    in_dir(path, sizeof path, "foreign.safetensors");
    const char *json = "{ \"b\" : {\"data_offsets\": [4, 12], \"shape\": [2], \"dtype\": \"F32\", \"extra\": 1},\n"
                       "  \"__metadata__\": null,\r\n\t\"a\\u00e9\": {\"dtype\": \"F32\", \"shape\": [], "
                       "\"data_offsets\": [0, 4]},"
                       " \"z\": {\"dtype\": \"F32\", \"shape\": [3, 0], \"data_offsets\": [12, 12]}}\n  ";
    size_t json_len = strlen(json);
    unsigned char buf[512] = {0};
    buf[0] = (unsigned char)json_len;
    memcpy(buf + 8, json, json_len);
    float v[3] = {1.5f, -2.0f, 4.25f};
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            buf[8 + json_len + 4 * (size_t)i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    write_bytes(path, buf, 8 + json_len + 12);
    struct ncl_st_file f;
    enum ncl_status s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK, "read: %s", ncl_last_error());
    const struct ncl_st_tensor *a = ncl_st_find(&f, "a\xc3\xa9"), *b = ncl_st_find(&f, "b"),
                               *z = ncl_st_find(&f, "z");
    CHECK(f.count == 3 && f.meta_count == 0, "count %d meta %d", f.count, f.meta_count);
    CHECK(a && a->ndim == 0 && a->data[0] == 1.5f, "scalar a");
    CHECK(b && b->ndim == 1 && b->dims[0] == 2 && b->data[0] == -2.0f && b->data[1] == 4.25f, "vector b");
    CHECK(z && z->ndim == 2 && z->dims[0] == 3 && z->dims[1] == 0 && z->data != NULL, "empty z");
    ncl_st_free(&f);
}

/* ---- malformed files ---------------------------------------------------------------------- */

struct bad_case {
    const char *file, *json;
    size_t data_len;
    const char *what;   /* part of the expected message */
};

#define T(shape, offs) "{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static const struct bad_case bad_cases[] = {
    {"not-json", "{\"a\":", 0, "not a JSON object"},
    {"not-object", "[1,2]", 0, "does not start with '{'"},
    {"trailing-text", "{} x", 0, "after the JSON"},
    {"bad-utf8", "{\"\xff\":1}", 0, "not UTF-8"},
    {"control-char", "{\"a\x01\":1}", 0, "not UTF-8"},
    {"entry-not-object", "{\"a\":5}", 0, "'a' is not an object"},
    {"dtype-f16", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "'a' has dtype 'F16'"},
    {"dtype-missing", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a' has no dtype"},
    {"dtype-number", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a' has no dtype"},
    {"shape-not-array", "{\"a\":" T("3", "[0,12]") "}", 12, "no shape array"},
    {"shape-missing", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "no shape array"},
    {"shape-negative", "{\"a\":" T("[-1]", "[0,4]") "}", 4, "not a non-negative integer"},
    {"shape-fraction", "{\"a\":" T("[1.5]", "[0,4]") "}", 4, "not a non-negative integer"},
    {"shape-string", "{\"a\":" T("[\"1\"]", "[0,4]") "}", 4, "not a non-negative integer"},
    {"shape-huge", "{\"a\":" T("[1e300]", "[0,4]") "}", 4, "not a non-negative integer"},
    {"shape-5d", "{\"a\":" T("[1,1,1,1,1]", "[0,4]") "}", 4, "5 dimensions"},
    {"shape-overflow", "{\"a\":" T("[4294967296,4294967296,4]", "[0,4]") "}", 4, "shape [4294967296"},
    {"offsets-missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "no data_offsets"},
    {"offsets-one", "{\"a\":" T("[1]", "[4]") "}", 4, "no data_offsets"},
    {"offsets-three", "{\"a\":" T("[1]", "[0,4,4]") "}", 4, "no data_offsets"},
    {"offsets-string", "{\"a\":" T("[1]", "[\"0\",4]") "}", 4, "no data_offsets"},
    {"offsets-negative", "{\"a\":" T("[1]", "[-4,0]") "}", 4, "no data_offsets"},
    {"offsets-object", "{\"a\":" T("[1]", "{\"0\":4}") "}", 4, "no data_offsets"},
    {"end-before-begin", "{\"a\":" T("[0]", "[4,0]") "}", 4, "ending before they begin"},
    {"end-past-buffer", "{\"a\":" T("[2]", "[0,8]") "}", 4, "beyond the 4-byte data buffer"},
    {"size-mismatch", "{\"a\":" T("[3]", "[0,8]") "}", 8, "shape [3] but data_offsets [0, 8] hold 8"},
    {"overlap", "{\"a\":" T("[2]", "[0,8]") ",\"b\":" T("[2]", "[4,12]") "}", 12, "'b' overlaps tensor 'a'"},
    {"overlap-empty", "{\"a\":" T("[2]", "[0,8]") ",\"b\":" T("[0]", "[4,4]") "}", 8, "'b' overlaps tensor 'a'"},
    {"gap", "{\"a\":" T("[1]", "[0,4]") ",\"b\":" T("[1]", "[8,12]") "}", 12, "4..8 before tensor 'b'"},
    {"no-start", "{\"a\":" T("[1]", "[4,8]") "}", 8, "0..4 before tensor 'a'"},
    {"trailing-data", "{\"a\":" T("[1]", "[0,4]") "}", 8, "4 bytes after the last tensor"},
    {"data-no-tensors", "{}", 4, "4 bytes after the last tensor"},
    {"duplicate", "{\"a\":" T("[1]", "[0,4]") ",\"a\":" T("[1]", "[4,8]") "}", 8, "tensor name 'a' occurs twice"},
    {"long-name",
     "{\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\":"
     T("[1]", "[0,4]") "}", 4, "96 bytes, more than the 95 allowed"},
    {"meta-not-string", "{\"__metadata__\":{\"k\":1}}", 0, "value of 'k' is not a string"},
    {"meta-not-object", "{\"__metadata__\":\"x\"}", 0, "__metadata__ is not an object"},
    {"meta-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "'__metadata__' occurs twice"},
    {"meta-duplicate-key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "key 'k' occurs twice"},
};

static void test_bad_files(void)
{
    char path[128];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        in_dir(path, sizeof path, c->file);
        write_st(path, strlen(c->json), c->json, c->data_len);
        expect_fail(path, NCL_ERR_FORMAT, c->what);
    }

    in_dir(path, sizeof path, "short");
    write_bytes(path, "\x02\0\0\0\0", 5);
    expect_fail(path, NCL_ERR_FORMAT, "5 bytes, shorter than");
    in_dir(path, sizeof path, "header-zero");
    write_st(path, 0, "", 8);
    expect_fail(path, NCL_ERR_FORMAT, "header length is 0");
    in_dir(path, sizeof path, "header-past-end");
    write_st(path, 100, "{}      ", 4);
    expect_fail(path, NCL_ERR_FORMAT, "header length 100 is past the end of the 20-byte file");
    in_dir(path, sizeof path, "header-over-limit");
    write_st(path, 100000001, "{}      ", 0);
    expect_fail(path, NCL_ERR_FORMAT, "over the limit");
    in_dir(path, sizeof path, "header-u64-max");
    write_st(path, UINT64_MAX, "{}      ", 0);
    expect_fail(path, NCL_ERR_FORMAT, "over the limit");
    /* the declared length cuts the JSON short */
    in_dir(path, sizeof path, "header-cut");
    write_st(path, 6, "{\"a\":" T("[1]", "[0,4]") "}", 4);
    expect_fail(path, NCL_ERR_FORMAT, "not a JSON object");

    in_dir(path, sizeof path, "missing");
    expect_fail(path, NCL_ERR_IO, "cannot open");
    expect_fail(dir, NCL_ERR_IO, "not a regular file");

    struct ncl_st_file f;
    CHECK(ncl_st_read(NULL, &f) == NCL_ERR_ARG, "NULL path");
    CHECK(ncl_st_read(path, NULL) == NCL_ERR_ARG, "NULL out");
}

/* ---- writing: argument checks and atomicity ----------------------------------------------- */

static void expect_write_fail(const char *path, const struct ncl_st_tensor *t, int count, enum ncl_status want,
                              const char *what)
{
    enum ncl_status s = ncl_st_write(path, t, count, NULL, NULL, 0);
    const char *msg = ncl_last_error();
    CHECK(s == want, "%s: status %s, want %s (%s)", path, ncl_status_str(s), ncl_status_str(want), msg);
    CHECK(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    CHECK(strstr(msg, what) != NULL, "message lacks '%s': %s", what, msg);
    CHECK(temp_files() == 0, "a failed write left a temporary file");
}

/* The file at path still holds exactly the sample written at the start. */
static void check_intact(const char *path)
{
    struct ncl_st_file f;
    enum ncl_status s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK, "original no longer reads: %s", ncl_last_error());
    if (s == NCL_OK)
        check_same(&f);
    ncl_st_free(&f);
}

static void test_write_failures(void)
{
    char path[128], other[160];
    in_dir(path, sizeof path, "keep.safetensors");
    CHECK(ncl_st_write(path, sample, SAMPLE_COUNT, meta_k, meta_v, 3) == NCL_OK, "write: %s", ncl_last_error());

    struct ncl_st_tensor t = {.name = "x", .ndim = 5, .dims = {1, 1, 1, 1}, .data = scalar_v};
    expect_write_fail(path, &t, 1, NCL_ERR_ARG, "bad shape");
    t.ndim = 1, t.dims[0] = -1;
    expect_write_fail(path, &t, 1, NCL_ERR_ARG, "bad shape");
    t.dims[0] = 1, t.data = NULL;
    expect_write_fail(path, &t, 1, NCL_ERR_ARG, "has no data");
    struct ncl_st_tensor two[2] = {sample[1], sample[1]};
    expect_write_fail(path, two, 2, NCL_ERR_ARG, "'conv.bias' given twice");
    snprintf(t.name, sizeof t.name, "__metadata__");
    t.data = scalar_v;
    expect_write_fail(path, &t, 1, NCL_ERR_ARG, "reserved");
    memset(t.name, 'x', sizeof t.name);
    expect_write_fail(path, &t, 1, NCL_ERR_ARG, "not terminated");
    expect_write_fail(path, NULL, 1, NCL_ERR_ARG, "bad tensor");
    const char *k[] = {"a", "a"}, *v[] = {"1", "2"};
    CHECK(ncl_st_write(path, NULL, 0, k, v, 2) == NCL_ERR_ARG, "duplicate metadata key accepted");
    check_intact(path);

    /* a folder that does not exist: nothing can be created */
    in_dir(other, sizeof other, "no-such-folder/x.safetensors");
    expect_write_fail(other, sample, 1, NCL_ERR_IO, "cannot create temporary file");

    /* the temporary file's name is taken by a folder: fails before touching path */
    snprintf(other, sizeof other, "%s.tmp-%ld", path, (long)getpid());
    CHECK(mkdir(other, 0700) == 0, "mkdir %s", other);
    enum ncl_status s = ncl_st_write(path, sample, 1, NULL, NULL, 0);
    CHECK(s == NCL_ERR_IO && strstr(ncl_last_error(), "cannot create temporary file"), "%s", ncl_last_error());
    rmdir(other);
    check_intact(path);

    /* the disk fills up in the middle of the data (a file size limit stands in for a full disk):
     * the old file stays, the partial temporary file goes */
    static float big[8192];
    struct ncl_st_tensor large = {.name = "big", .ndim = 1, .dims = {8192}, .data = big};
    struct rlimit old_lim, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_lim) == 0, "getrlimit");
    lim = old_lim;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    s = ncl_st_write(path, &large, 1, NULL, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_handler);
    CHECK(s == NCL_ERR_IO, "write past the size limit: %s", ncl_status_str(s));
    CHECK(strstr(ncl_last_error(), path) && strstr(ncl_last_error(), "File too large"), "message: %s",
          ncl_last_error());
    CHECK(temp_files() == 0, "the partial temporary file was left behind");
    check_intact(path);

    /* the rename fails (path is a folder): the temporary file is removed */
    in_dir(other, sizeof other, "a-folder");
    CHECK(mkdir(other, 0700) == 0, "mkdir %s", other);
    expect_write_fail(other, sample, 1, NCL_ERR_IO, "cannot rename");
    rmdir(other);

    /* a path without a folder part syncs "." */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    CHECK(chdir(dir) == 0, "chdir");
    CHECK(ncl_st_write("plain.safetensors", sample, 2, NULL, NULL, 0) == NCL_OK, "relative write: %s",
          ncl_last_error());
    CHECK(chdir(cwd) == 0, "chdir back");
    CHECK(temp_files() == 0, "a temporary file was left behind");
}

/* Removes the scratch folder (flat: only files and the folders the tests removed already). */
static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test-st-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_foreign();
    test_bad_files();
    test_write_failures();
    remove_dir();
    return check_done("test-safetensors");
}
