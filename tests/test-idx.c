/* IDX reader: the real Fashion-MNIST files, round trips of small raw and gzip files, and one
 * generated bad file per failure the reader must catch, each checked for its status and for a
 * message that names the file and the problem. Also replays the fuzzer's corpus. */
#include "check.h"
#include "nincl.h"
#include "remove-tree.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static char tmp_dir[64];

static char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp_dir, name);
    return p;
}

static void write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    CHECK(fwrite(data, 1, n, f) == n, "cannot write %s", path);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    CHECK(gz != NULL, "cannot create %s", path);
    if (!gz)
        return;
    CHECK(n == 0 || gzwrite(gz, data, (unsigned)n) == (int)n, "cannot write %s", path);
    CHECK(gzclose(gz) == Z_OK, "cannot close %s", path);
}

static uint8_t *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* An IDX image: header for dims, then data_len bytes of pseudo-random values 0..9 (valid labels
 * too). data_len may differ from what the dims declare, to make bad files. */
static uint8_t *make_idx(uint8_t type, int ndim, const uint32_t *dims, size_t data_len, size_t *len)
{
    size_t header = 4 + 4 * (size_t)ndim;
    uint8_t *p = malloc(header + data_len + 1);
    p[0] = 0, p[1] = 0, p[2] = type, p[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        p[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        p[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        p[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        p[7 + 4 * i] = (uint8_t)dims[i];
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < data_len; i++) {
        x = x * 1103515245u + 12345u;
        p[header + i] = (uint8_t)((x >> 16) % 10);
    }
    *len = header + data_len;
    return p;
}

/* Writes an IDX file with the given dims and data length, raw or gzip. */
static void write_idx(const char *path, int gz, uint8_t type, int ndim, const uint32_t *dims, size_t data_len)
{
    size_t len;
    uint8_t *p = make_idx(type, ndim, dims, data_len, &len);
    if (gz)
        write_gz(path, p, len);
    else
        write_raw(path, p, len);
    free(p);
}

static void expect_fail_at(int line, const char *path, int ndim, enum ncl_status want, const char *word)
{
    struct ncl_idx idx;
    memset(&idx, 0xab, sizeof idx);
    enum ncl_status s = ncl_idx_read(path, ndim, &idx);
    const char *msg = ncl_last_error();
    printf("  line %d: %s\n", line, msg);
    CHECK(s == want, "line %d: status '%s', want '%s' (%s)", line, ncl_status_str(s), ncl_status_str(want), msg);
    CHECK(strstr(msg, path) != NULL, "line %d: message lacks the path: %s", line, msg);
    CHECK(strstr(msg, word) != NULL, "line %d: message lacks '%s': %s", line, word, msg);
    CHECK(strchr(msg, '\n') == NULL, "line %d: message is not one line: %s", line, msg);
    CHECK(idx.data == NULL && idx.ndim == 0 && idx.dims[0] == 0, "line %d: out not cleared on failure", line);
}
#define EXPECT_FAIL(path, ndim, want, word) expect_fail_at(__LINE__, path, ndim, want, word)

static void expect_dataset_fail_at(int line, const char *dir, const char *split, int classes,
                                   enum ncl_status want, const char *w1, const char *w2, const char *w3)
{
    struct ncl_dataset ds;
    memset(&ds, 0xab, sizeof ds);
    enum ncl_status s = ncl_dataset_load(dir, split, classes, &ds);
    const char *msg = ncl_last_error();
    printf("  line %d: %s\n", line, msg);
    CHECK(s == want, "line %d: status '%s', want '%s' (%s)", line, ncl_status_str(s), ncl_status_str(want), msg);
    const char *words[3] = { w1, w2, w3 };
    for (int i = 0; i < 3; i++)
        CHECK(!words[i] || strstr(msg, words[i]), "line %d: message lacks '%s': %s", line, words[i], msg);
    CHECK(strchr(msg, '\n') == NULL, "line %d: message is not one line: %s", line, msg);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.count == 0, "line %d: out not cleared on failure", line);
}
#define EXPECT_DATASET_FAIL(dir, split, classes, want, w1, w2, w3) \
    expect_dataset_fail_at(__LINE__, dir, split, classes, want, w1, w2, w3)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_real_split(const char *split, int64_t count, int label0, int label1, long pixel_sum0)
{
    struct ncl_dataset ds;
    enum ncl_status s = ncl_dataset_load(DATA_DIR, split, 10, &ds);
    CHECK(s == NCL_OK, "%s: %s", split, ncl_last_error());
    if (s != NCL_OK)
        return;
    CHECK(ds.count == count && ds.rows == 28 && ds.cols == 28, "%s: %lld x %d x %d", split, (long long)ds.count,
          ds.rows, ds.cols);
    CHECK(ds.labels[0] == label0 && ds.labels[1] == label1, "%s: labels start %d %d", split, ds.labels[0],
          ds.labels[1]);
    /* Fashion-MNIST is balanced: every class has count / 10 examples. */
    int64_t per_class[10] = { 0 };
    int bad = 0;
    for (int64_t i = 0; i < ds.count; i++) {
        if (ds.labels[i] < 10)
            per_class[ds.labels[i]]++;
        else
            bad++;
    }
    CHECK(bad == 0, "%s: %d labels >= 10", split, bad);
    for (int c = 0; c < 10; c++)
        CHECK(per_class[c] == count / 10, "%s: class %d has %lld examples", split, c, (long long)per_class[c]);
    /* The first image's pixel sum and last image's existence catch an offset or short read. */
    long sum = 0;
    for (int i = 0; i < 28 * 28; i++)
        sum += ds.images[i];
    CHECK(sum == pixel_sum0, "%s: first image pixel sum %ld, want %ld", split, sum, pixel_sum0);
    volatile uint8_t last = ds.images[ds.count * 28 * 28 - 1];
    (void)last;
    ncl_dataset_free(&ds);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.count == 0, "free clears the struct");
}

static void test_real_data(void)
{
    /* Values read from the files with Python's gzip module. */
    test_real_split("train", 60000, 9, 0, 76247);
    test_real_split("t10k", 10000, 9, 2, 33456);

    struct ncl_idx idx;
    enum ncl_status s = ncl_idx_read(DATA_DIR "/t10k-images-idx3-ubyte.gz", 3, &idx);
    CHECK(s == NCL_OK, "%s", ncl_last_error());
    if (s == NCL_OK) {
        CHECK(idx.ndim == 3 && idx.dims[0] == 10000 && idx.dims[1] == 28 && idx.dims[2] == 28, "t10k dims");
        /* Row 14 of the first t10k image starts 00 00 62 88 (Python). */
        CHECK(idx.data[14 * 28 + 10 + 2] == 0x62 && idx.data[14 * 28 + 10 + 3] == 0x88, "t10k pixel values");
    }
    ncl_idx_free(&idx);
    s = ncl_idx_read(DATA_DIR "/train-labels-idx1-ubyte.gz", 1, &idx);
    CHECK(s == NCL_OK, "%s", ncl_last_error());
    CHECK(idx.ndim == 1 && idx.dims[0] == 60000 && idx.dims[1] == 1 && idx.dims[2] == 1, "train label dims");
    CHECK(idx.data && idx.data[0] == 9 && idx.data[3] == 3, "train label values");
    ncl_idx_free(&idx);

    EXPECT_FAIL(DATA_DIR "/train-images-idx3-ubyte.gz", 1, NCL_ERR_FORMAT, "dimensions");
    EXPECT_FAIL(DATA_DIR "/train-labels-idx1-ubyte.gz", 3, NCL_ERR_FORMAT, "dimensions");
}

static void test_round_trip(void)
{
    uint32_t dims[3] = { 2, 3, 3 };
    size_t len;
    uint8_t *want = make_idx(0x08, 3, dims, 18, &len);
    for (int gz = 0; gz < 2; gz++) {
        const char *path = tmp_path(gz ? "good.idx.gz" : "good.idx");
        write_idx(path, gz, 0x08, 3, dims, 18);
        struct ncl_idx idx;
        enum ncl_status s = ncl_idx_read(path, 3, &idx);
        CHECK(s == NCL_OK, "%s", ncl_last_error());
        if (s != NCL_OK)
            continue;
        CHECK(idx.ndim == 3 && idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 3, "%s: dims", path);
        CHECK(memcmp(idx.data, want + 16, 18) == 0, "%s: data differs", path);
        ncl_idx_free(&idx);
        CHECK(idx.data == NULL && idx.ndim == 0, "free clears the struct");
    }
    free(want);

    /* A label file big enough to make the reader grow its buffer several times, gzip. */
    uint32_t n = 1000003;
    const char *path = tmp_path("big-labels.gz");
    write_idx(path, 1, 0x08, 1, &n, n);
    want = make_idx(0x08, 1, &n, n, &len);
    struct ncl_idx idx;
    enum ncl_status s = ncl_idx_read(path, 1, &idx);
    CHECK(s == NCL_OK, "%s", ncl_last_error());
    CHECK(s != NCL_OK || (idx.dims[0] == n && memcmp(idx.data, want + 8, n) == 0), "big label file differs");
    ncl_idx_free(&idx);
    free(want);

    /* Freeing NULL and zeroed structs is a no-op. */
    ncl_idx_free(NULL);
    ncl_dataset_free(NULL);
    struct ncl_idx zi = { 0 };
    struct ncl_dataset zd = { 0 };
    ncl_idx_free(&zi);
    ncl_dataset_free(&zd);
}

static void test_bad_files(void)
{
    uint32_t d233[3] = { 2, 3, 3 };
    const char *path;

    EXPECT_FAIL(tmp_path("no-such-file"), 3, NCL_ERR_IO, "No such file");
    EXPECT_FAIL(tmp_dir, 3, NCL_ERR_IO, "directory");

    path = tmp_path("empty");
    write_raw(path, "", 0);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "empty");
    path = tmp_path("empty.gz");
    write_gz(path, "", 0);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "empty");

    path = tmp_path("magic");
    write_raw(path, "\x12\x34\x08\x03\0\0\0\1\0\0\0\1\0\0\0\1x", 17);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "magic");
    path = tmp_path("float-type");
    write_idx(path, 0, 0x0d, 3, d233, 18 * 4);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "element type 0x0d");
    path = tmp_path("text");
    write_raw(path, "hello, world\n", 13);
    EXPECT_FAIL(path, 1, NCL_ERR_FORMAT, "magic");

    path = tmp_path("ndim");
    write_idx(path, 0, 0x08, 3, d233, 18);
    EXPECT_FAIL(path, 1, NCL_ERR_FORMAT, "3 dimensions, expected 1");

    path = tmp_path("header3");
    write_raw(path, "\0\0\x08", 3);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated header");
    path = tmp_path("header9");
    write_raw(path, "\0\0\x08\x03\0\0\0\x02\0", 9);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated header");
    path = tmp_path("header9.gz");
    write_gz(path, "\0\0\x08\x03\0\0\0\x02\0", 9);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated header");

    path = tmp_path("short");
    write_idx(path, 0, 0x08, 3, d233, 10);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated data: header declares 2 x 3 x 3 = 18 bytes, file holds 10");
    path = tmp_path("short.gz");
    write_idx(path, 1, 0x08, 3, d233, 17);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated data");
    path = tmp_path("long");
    write_idx(path, 0, 0x08, 3, d233, 20);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "trailing data");
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "2 bytes more");
    path = tmp_path("long.gz");
    uint32_t five = 5;
    write_idx(path, 1, 0x08, 1, &five, 6);
    EXPECT_FAIL(path, 1, NCL_ERR_FORMAT, "trailing data: header declares 5 bytes, file holds 1 bytes more");

    /* Dimensions against limits and against the size: zero, too large, and a file sized for
     * other dims (2 x 3 x 4 = 24 bytes where 3 x 3 x 3 = 27 are declared). */
    uint32_t zero[3] = { 2, 0, 3 }, wide[3] = { 2, 5000, 3 }, many[3] = { 100000001, 1, 1 }, d333[3] = { 3, 3, 3 };
    path = tmp_path("zero-dim");
    write_idx(path, 0, 0x08, 3, zero, 0);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "dimension 1 is zero");
    path = tmp_path("wide");
    write_idx(path, 0, 0x08, 3, wide, 30);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "limit");
    path = tmp_path("many");
    write_idx(path, 0, 0x08, 3, many, 30);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "limit");
    path = tmp_path("dims-vs-size");
    write_idx(path, 0, 0x08, 3, d333, 24);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "3 x 3 x 3 = 27 bytes, file holds 24");

    /* Huge declared sizes in tiny files fail fast: 4e9 labels is over the count limit;
     * 1e8 x 4096 x 4096 (1.6 PB) passes the limits and must fail as truncated without
     * allocating it (under ASan such a malloc would abort the test). */
    uint32_t labels4e9 = 4000000000u, huge[3] = { 100000000, 4096, 4096 };
    double t0 = now_s();
    path = tmp_path("huge-labels");
    write_idx(path, 0, 0x08, 1, &labels4e9, 100);
    EXPECT_FAIL(path, 1, NCL_ERR_FORMAT, "limit");
    path = tmp_path("huge-images");
    write_idx(path, 0, 0x08, 3, huge, 1000);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated data: header declares 100000000 x 4096 x 4096");
    path = tmp_path("huge-images.gz");
    write_idx(path, 1, 0x08, 3, huge, 100000);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "file holds 100000");
    double took = now_s() - t0;
    CHECK(took < 2.0, "huge declared sizes took %.2f s", took);

    /* Corrupt gzip: flip bytes in the middle of a valid stream; cut a stream short; a gzip
     * magic followed by garbage. */
    uint32_t d100[3] = { 100, 28, 28 };
    path = tmp_path("corrupt.gz");
    write_idx(path, 1, 0x08, 3, d100, 100 * 28 * 28);
    size_t n = 0;
    uint8_t *z = read_whole(path, &n);
    CHECK(z && n > 1000, "gzip of 78400 bytes is %zu bytes", n);
    if (z && n > 1000) {
        for (size_t i = n / 2; i < n / 2 + 8; i++)
            z[i] ^= 0x5a;
        write_raw(path, z, n);
        EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "corrupt gzip");
        for (size_t i = n / 2; i < n / 2 + 8; i++)
            z[i] ^= 0x5a;
        path = tmp_path("cut.gz");
        write_raw(path, z, n / 2);
        EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "truncated gzip");
        /* Only the 8-byte CRC/length trailer is damaged: all the data decodes, the check fails. */
        path = tmp_path("crc.gz");
        z[n - 6] ^= 1;
        write_raw(path, z, n);
        EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "gzip");
    }
    free(z);
    path = tmp_path("garbage.gz");
    write_raw(path, "\x1f\x8b\x08\x00garbage garbage garbage garbage", 35);
    EXPECT_FAIL(path, 3, NCL_ERR_FORMAT, "gzip");

    /* Bad arguments. */
    struct ncl_idx idx;
    CHECK(ncl_idx_read(NULL, 3, &idx) == NCL_ERR_ARG, "NULL path");
    CHECK(ncl_idx_read(tmp_path("good.idx"), 2, &idx) == NCL_ERR_ARG, "expect_ndim 2");
    CHECK(ncl_idx_read(tmp_path("good.idx"), 3, NULL) == NCL_ERR_ARG, "NULL out");
    struct ncl_dataset ds;
    CHECK(ncl_dataset_load(tmp_dir, "x", 0, &ds) == NCL_ERR_ARG, "0 classes");
    CHECK(ncl_dataset_load(NULL, "x", 10, &ds) == NCL_ERR_ARG, "NULL dir");
}

static void test_dataset_files(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/set", tmp_dir);
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    char img[192], img_gz[192], lbl[192], lbl_gz[192];
    snprintf(img, sizeof img, "%s/x-images-idx3-ubyte", dir);
    snprintf(img_gz, sizeof img_gz, "%s/x-images-idx3-ubyte.gz", dir);
    snprintf(lbl, sizeof lbl, "%s/x-labels-idx1-ubyte", dir);
    snprintf(lbl_gz, sizeof lbl_gz, "%s/x-labels-idx1-ubyte.gz", dir);

    /* Nothing there: the message names both names tried. */
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_IO, "missing", img, img_gz);

    /* The raw file wins over the .gz one (which has a different count); labels come gzipped. */
    uint32_t d3[3] = { 3, 4, 5 }, d4[3] = { 4, 4, 5 }, three = 3, four = 4;
    write_idx(img, 0, 0x08, 3, d3, 60);
    write_idx(img_gz, 1, 0x08, 3, d4, 80);
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_IO, "missing", lbl, lbl_gz);
    write_idx(lbl_gz, 1, 0x08, 1, &three, 3);
    struct ncl_dataset ds;
    enum ncl_status s = ncl_dataset_load(dir, "x", 10, &ds);
    CHECK(s == NCL_OK, "%s", ncl_last_error());
    CHECK(s != NCL_OK || (ds.count == 3 && ds.rows == 4 && ds.cols == 5 && ds.labels[0] < 10), "small set");
    ncl_dataset_free(&ds);

    /* The labels are values 0..9; with 5 classes some is out of range. */
    EXPECT_DATASET_FAIL(dir, "x", 5, NCL_ERR_FORMAT, lbl_gz, "out of range", "index");
    write_raw(lbl, "\0\0\x08\x01\0\0\0\x03\x01\x02\x0a", 11);
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_FORMAT, lbl, "label 10 at index 2", NULL);

    /* Count mismatch names both files and both counts. */
    write_idx(lbl, 0, 0x08, 1, &four, 4);
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_FORMAT, img, lbl, "3 images");
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_FORMAT, "4 labels", NULL, NULL);

    /* A file problem inside a data set keeps the reader's message. */
    unlink(img);
    unlink(img_gz);
    CHECK(mkdir(img, 0700) == 0, "mkdir %s", img);
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_IO, img, "directory", NULL);
    rmdir(img);
    write_idx(img, 0, 0x08, 3, d3, 59);
    EXPECT_DATASET_FAIL(dir, "x", 10, NCL_ERR_FORMAT, img, "truncated data", NULL);
}

/* Every file of the fuzzer's corpus (seeds and any crash-* inputs it found) must read or fail
 * cleanly, with the path in the message. */
static void test_fuzz_corpus(void)
{
    char dir[512];
    const char *slash = strrchr(__FILE__, '/');
    int base = slash ? (int)(slash - __FILE__) : 1;
    snprintf(dir, sizeof dir, "%.*s/fuzz/corpus-idx", base, slash ? __FILE__ : ".");
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d)
        return;
    int files = 0, good = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        files++;
        for (int ndim = 1; ndim <= 3; ndim += 2) {
            struct ncl_idx idx;
            enum ncl_status s = ncl_idx_read(path, ndim, &idx);
            if (s == NCL_OK) {
                good++;
                CHECK(idx.data && idx.ndim == ndim && idx.dims[0] > 0, "%s: ok but empty", path);
            } else {
                CHECK(s == NCL_ERR_FORMAT, "%s: status %s", path, ncl_status_str(s));
                CHECK(strstr(ncl_last_error(), path) != NULL, "%s: message lacks path: %s", path, ncl_last_error());
                CHECK(idx.data == NULL, "%s: data left on failure", path);
            }
            ncl_idx_free(&idx);
        }
    }
    closedir(d);
    printf("  corpus %s: %d files, %d good reads\n", dir, files, good);
    CHECK(files >= 4 && good >= 3, "corpus has %d files, %d good reads", files, good);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test-idx-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_real_data();
    test_round_trip();
    test_bad_files();
    test_dataset_files();
    test_fuzz_corpus();
    remove_tree(tmp_dir);
    return check_done("test-idx");
}
