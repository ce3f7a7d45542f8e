/* Bad input never crashes nincl or gets silently used: damaged data sets through `train --data`
 * and `eval --data`, damaged checkpoints through `eval --checkpoint` and `train --resume`, and
 * bad flags of train, eval, bench and shapes. Each must exit 2 with a message that names the
 * file (or flag) and the problem; a refused training run leaves no output folder, and a refused
 * resume leaves the checkpoint untouched. Runs the real binary ($NINCL_BIN). */
#include "robust.h"

static char data[512];   /* a valid data set: 64 training, 32 test images */
static char good[512];   /* a good nin-small checkpoint (1 epoch on `data`) */

#define SMALL "--model nin-small --batch 16 --epochs 1"

/* ---- data sets ----------------------------------------------------------------------------- */

enum { TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS };
static const char *const file_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* A copy of the good data set in <tmp>/<name>; returns the path of one of its files. */
static const char *bad_copy(const char *name, int which, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/data-%s", rb_tmp, name);
    mkdir(dir, 0755);
    for (int i = 0; i < 4; i++) {
        char from[1024], to[1024];
        snprintf(from, sizeof from, "%s/%s", data, file_names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, file_names[i]);
        rb_copy(from, to);
    }
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file_names[which]);
    return p;
}

/* Rewrites bytes [at, at + n) of a file. */
static void poke(const char *path, size_t at, const void *bytes, size_t n)
{
    size_t len;
    unsigned char *b = rb_read_all(path, &len);
    CHECK(b && at + n <= len, "poke %s", path);
    if (b && at + n <= len) {
        memcpy(b + at, bytes, n);
        rb_write_all(path, b, len);
    }
    free(b);
}

static void cut(const char *path, size_t keep)
{
    CHECK(truncate(path, (off_t)keep) == 0, "truncate %s", path);
}

/* gzip-compresses a file in place to <path>.gz, the raw one removed; returns the new path. */
static const char *to_gz(const char *path)
{
    static char gz[1024];
    size_t len;
    unsigned char *b = rb_read_all(path, &len);
    snprintf(gz, sizeof gz, "%s.gz", path);
    rb_write_gz(gz, b, len);
    free(b);
    unlink(path);
    return gz;
}

/* train --data dir must fail with exit 2, one line naming `file` and each needle, and leave no
 * output folder. */
static void expect_bad_train_data(const char *name, const char *dir, const char *file, const char *const *needles)
{
    char safe[64];
    snprintf(safe, sizeof safe, "%s", name);
    for (char *q = safe; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')))
            *q = '-';
    const char *out = rb_path("out-%s", safe);
    rb_run("train " SMALL " --data %s --out %s", dir, out);
    const char *all[8] = {file};
    for (int i = 0; needles[i] && i < 6; i++)
        all[i + 1] = needles[i];
    char label[64];
    snprintf(label, sizeof label, "train %s", name);
    rb_expect(label, 2, 1, 0, all);
    CHECK(!rb_exists(out), "%s: the refused run left its output folder %s", name, out);
}

static void expect_bad_eval_data(const char *name, const char *dir, const char *file, const char *const *needles)
{
    rb_run("eval --checkpoint %s --data %s", good, dir);
    const char *all[8] = {file};
    for (int i = 0; needles[i] && i < 6; i++)
        all[i + 1] = needles[i];
    char label[64];
    snprintf(label, sizeof label, "eval %s", name);
    rb_expect(label, 2, 1, 0, all);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_bad_data(void)
{
    printf("bad data sets (train --data, eval --data):\n");
    char dir[1024];
    const char *f;
    unsigned char be[4];

    /* the folder itself */
    f = rb_path("no-such-folder");
    expect_bad_train_data("missing folder", f, f, NEEDLES("data folder", "No such file"));
    expect_bad_eval_data("missing folder", f, f, NEEDLES("data folder", "No such file"));
    f = bad_copy("folder-is-file", TRAIN_IMAGES, dir, sizeof dir);
    expect_bad_train_data("folder is a file", f, f, NEEDLES("not a folder"));

    f = bad_copy("missing-file", TRAIN_LABELS, dir, sizeof dir);
    unlink(f);
    expect_bad_train_data("missing file", dir, f, NEEDLES("missing data file", ".gz"));
    f = bad_copy("missing-test-file", TEST_IMAGES, dir, sizeof dir);
    unlink(f);
    expect_bad_eval_data("missing file", dir, f, NEEDLES("missing data file"));

    f = bad_copy("empty", TRAIN_IMAGES, dir, sizeof dir);
    cut(f, 0);
    expect_bad_train_data("empty file", dir, f, NEEDLES("empty file"));
    f = bad_copy("empty-gz", TEST_LABELS, dir, sizeof dir);
    cut(f, 0);
    f = to_gz(f);   /* a valid gzip of nothing */
    expect_bad_eval_data("empty gzip", dir, f, NEEDLES("empty"));

    f = bad_copy("dir", TRAIN_IMAGES, dir, sizeof dir);
    unlink(f);
    mkdir(f, 0755);
    expect_bad_train_data("directory for a file", dir, f, NEEDLES("is a directory"));

    /* magic */
    f = bad_copy("magic-labels", TRAIN_IMAGES, dir, sizeof dir);
    poke(f, 3, "\x01", 1);   /* a labels magic on the images file */
    expect_bad_train_data("wrong magic (ndim)", dir, f, NEEDLES("bad magic", "1 dimensions", "expected 3"));
    f = bad_copy("magic-zip", TRAIN_IMAGES, dir, sizeof dir);
    poke(f, 0, "PK\x03\x04", 4);
    expect_bad_train_data("wrong magic (zip)", dir, f, NEEDLES("bad magic", "not an IDX file"));
    f = bad_copy("magic-type", TEST_LABELS, dir, sizeof dir);
    poke(f, 2, "\x0d", 1);   /* float elements */
    expect_bad_eval_data("wrong magic (float)", dir, f, NEEDLES("bad magic", "element type 0x0d"));
    f = bad_copy("labels-are-images", TRAIN_LABELS, dir, sizeof dir);
    rb_copy(rb_path("data-labels-are-images/%s", file_names[TRAIN_IMAGES]), f);
    expect_bad_train_data("images as labels", dir, f, NEEDLES("bad magic", "3 dimensions", "expected 1"));

    /* header and size */
    f = bad_copy("short-header", TRAIN_IMAGES, dir, sizeof dir);
    cut(f, 10);
    expect_bad_train_data("truncated header", dir, f, NEEDLES("truncated header", "6 of 12"));
    f = bad_copy("short-magic", TRAIN_LABELS, dir, sizeof dir);
    cut(f, 3);
    expect_bad_train_data("truncated magic", dir, f, NEEDLES("truncated header", "3 of 4"));
    f = bad_copy("short-data", TRAIN_IMAGES, dir, sizeof dir);
    cut(f, 16 + 64 * 784 - 100);
    expect_bad_train_data("truncated data", dir, f, NEEDLES("truncated data", "64 x 28 x 28 = 50176 bytes", "50076"));
    f = bad_copy("short-test-data", TEST_IMAGES, dir, sizeof dir);
    cut(f, 16 + 31 * 784);
    expect_bad_eval_data("truncated data", dir, f, NEEDLES("truncated data"));
    f = bad_copy("dims-small", TRAIN_IMAGES, dir, sizeof dir);
    rb_be32(be, 27);
    poke(f, 8, be, 4);
    expect_bad_train_data("dims < size", dir, f, NEEDLES("trailing data", "64 x 27 x 28"));
    f = bad_copy("dims-large", TRAIN_IMAGES, dir, sizeof dir);
    rb_be32(be, 29);
    poke(f, 12, be, 4);
    expect_bad_train_data("dims > size", dir, f, NEEDLES("truncated data", "64 x 28 x 29"));
    f = bad_copy("zero-count", TRAIN_IMAGES, dir, sizeof dir);
    rb_be32(be, 0);
    poke(f, 4, be, 4);
    expect_bad_train_data("zero images", dir, f, NEEDLES("dimension 0 is zero"));
    {   /* a 116-byte file declaring 1.6 PB must fail as truncated, not try to allocate it */
        f = bad_copy("huge", TRAIN_IMAGES, dir, sizeof dir);
        unsigned char h[116] = {0};
        rb_be32(h, 0x803);
        rb_be32(h + 4, 100000000);
        rb_be32(h + 8, 4096);
        rb_be32(h + 12, 4096);
        rb_write_all(f, h, sizeof h);
        double t0 = rb_now();
        expect_bad_train_data("huge declared size", dir, f, NEEDLES("truncated data", "1677721600000000 bytes"));
        CHECK(rb_now() - t0 < 5, "a huge declared size took %.1f s", rb_now() - t0);
        rb_be32(h + 4, 0xffffffff);
        rb_write_all(f, h, sizeof h);
        expect_bad_train_data("dims over the limit", dir, f, NEEDLES("4294967295", "more than the limit"));
    }

    /* the two files of a split, and the two splits */
    f = bad_copy("count", TRAIN_LABELS, dir, sizeof dir);
    {
        size_t len;
        unsigned char *b = rb_read_all(f, &len);
        rb_be32(b + 4, 63);
        rb_write_all(f, b, len - 1);
        free(b);
    }
    expect_bad_train_data("image/label count", dir, f, NEEDLES("holds 64 images but", "holds 63 labels"));
    f = bad_copy("label-10", TEST_LABELS, dir, sizeof dir);
    poke(f, 8 + 5, "\x0a", 1);
    expect_bad_eval_data("label 10", dir, f, NEEDLES("label 10 at index 5", "out of range"));
    expect_bad_train_data("label 10", dir, f, NEEDLES("label 10 at index 5", "out of range"));
    f = bad_copy("label-255", TRAIN_LABELS, dir, sizeof dir);
    poke(f, 8 + 63, "\xff", 1);
    expect_bad_train_data("label 255", dir, f, NEEDLES("label 255 at index 63"));
    bad_copy("test-32x32", TEST_IMAGES, dir, sizeof dir);
    rb_write_split(dir, "t10k", 32, 32, 0, 2);
    expect_bad_train_data("test images 32x32", dir, dir, NEEDLES("28x28", "32x32", "not one data set"));

    /* gzip */
    f = to_gz(bad_copy("gz-corrupt", TRAIN_IMAGES, dir, sizeof dir));
    {
        size_t len;
        unsigned char *b = rb_read_all(f, &len);
        b[len / 2] ^= 0x55;
        rb_write_all(f, b, len);
        free(b);
    }
    expect_bad_train_data("corrupt gzip", dir, f, NEEDLES("gzip"));
    f = to_gz(bad_copy("gz-crc", TRAIN_IMAGES, dir, sizeof dir));
    {
        size_t len;
        unsigned char *b = rb_read_all(f, &len);
        b[len - 6] ^= 0x01;   /* the CRC32 in the trailer */
        rb_write_all(f, b, len);
        free(b);
    }
    expect_bad_train_data("gzip CRC", dir, f, NEEDLES("corrupt gzip", "incorrect data check"));
    f = to_gz(bad_copy("gz-cut", TEST_IMAGES, dir, sizeof dir));
    cut(f, (size_t)rb_file_size(f) / 2);
    expect_bad_eval_data("truncated gzip", dir, f, NEEDLES("truncated gzip"));
    f = bad_copy("gz-garbage", TRAIN_LABELS, dir, sizeof dir);
    rb_write_all(f, "\x1f\x8b\x08\x00garbage, not deflate data at all", 36);
    expect_bad_train_data("gzip magic, garbage", dir, f, NEEDLES("gzip"));
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* <tmp>/ck-<name>/checkpoint.safetensors, made from the good one by `edit`. */
static const char *ck_path(const char *name)
{
    const char *dir = rb_path("ck-%s", name);
    mkdir(dir, 0755);
    return rb_path("ck-%s/checkpoint.safetensors", name);
}

/* eval --checkpoint F and train --resume DIR both refuse with exit 2 and a message naming F and
 * each needle; the refused resume leaves F as it was and writes nothing beside it. */
static void expect_bad_checkpoint(const char *name, const char *path, const char *const *needles, int resume_too)
{
    const char *all[8] = {path};
    for (int i = 0; needles[i] && i < 6; i++)
        all[i + 1] = needles[i];
    char label[80];
    rb_run("eval --checkpoint %s --data %s", path, data);
    snprintf(label, sizeof label, "eval %s", name);
    rb_expect(label, 2, 1, 0, all);
    if (!resume_too)
        return;
    char dir[1024], copy[1100];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    snprintf(copy, sizeof copy, "%s.orig", dir);
    rb_copy(path, copy);
    rb_run("train --resume %s --data %s --epochs 2", dir, data);
    snprintf(label, sizeof label, "resume %s", name);
    rb_expect(label, 2, 1, 0, all);
    CHECK(rb_same_file(path, copy), "%s: the refused resume changed %s", name, path);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while (d && (e = readdir(d)))
        files += e->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK(files == 1, "%s: the refused resume wrote into %s (%d files)", name, dir, files);
    unlink(copy);
}

static void test_bad_checkpoints(void)
{
    printf("bad checkpoints (eval --checkpoint, train --resume):\n");
    size_t len;
    unsigned char *b = rb_read_all(good, &len);
    CHECK(b && len > 4096, "no good checkpoint at %s", good);
    if (!b || len <= 4096)
        return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    const char *p;
    unsigned char *c = malloc(len);

    /* missing */
    p = rb_path("no-such-run");
    rb_run("eval --checkpoint %s --data %s", p, data);
    rb_expect("eval missing checkpoint", 2, 1, 0, NEEDLES(p, "cannot open", "No such file"));
    rb_run("train --resume %s --data %s", p, data);
    rb_expect("resume missing checkpoint", 2, 1, 0, NEEDLES(p, "cannot open", "No such file"));
    CHECK(!rb_exists(p), "a refused resume created %s", p);
    /* a file that is not a checkpoint at all: named as given */
    p = rb_path("ck-idx");
    rb_copy(rb_path("data/t10k-labels-idx1-ubyte"), p);
    rb_run("eval --checkpoint %s --data %s", p, data);
    rb_expect("eval an IDX file", 2, 1, 0, NEEDLES(p, "header length"));

    /* the 8-byte length and the header */
    p = ck_path("short");
    rb_write_all(p, b, 5);
    expect_bad_checkpoint("short file", p, NEEDLES("5 bytes", "shorter than the 8-byte header length"), 1);
    p = ck_path("empty");
    rb_write_all(p, b, 0);
    expect_bad_checkpoint("empty file", p, NEEDLES("0 bytes"), 1);
    p = ck_path("hlen-huge");
    memcpy(c, b, len);
    memcpy(c, "\x00\x10\xa5\xd4\xe8\x00\x00\x00", 8);   /* 10^12 */
    rb_write_all(p, c, len);
    expect_bad_checkpoint("header length 1e12", p, NEEDLES("header length 1000000000000", "over the limit"), 1);
    p = ck_path("hlen-past");
    memcpy(c, b, len);
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)((uint64_t)len >> (8 * i));
    rb_write_all(p, c, len);
    expect_bad_checkpoint("header length past end", p, NEEDLES("past the end"), 1);
    p = ck_path("hlen-zero");
    memcpy(c, b, len);
    memset(c, 0, 8);
    rb_write_all(p, c, len);
    expect_bad_checkpoint("header length 0", p, NEEDLES("header length is 0"), 1);
    p = ck_path("not-json");
    memcpy(c, b, len);
    c[8] = '[';
    rb_write_all(p, c, len);
    expect_bad_checkpoint("header not an object", p, NEEDLES("does not start with '{'"), 1);
    p = ck_path("bad-json");
    memcpy(c, b, len);
    {
        unsigned char *at = rb_find(c + 8, hlen, "\"dtype\":", 8);
        CHECK(at != NULL, "no dtype in the header");
        if (at)
            at[7] = ';';
    }
    rb_write_all(p, c, len);
    expect_bad_checkpoint("malformed JSON", p, NEEDLES("not a JSON object", "near byte"), 1);
    p = ck_path("bad-utf8");
    memcpy(c, b, len);
    {
        unsigned char *at = rb_find(c + 8, hlen, "nin-small", 9);
        CHECK(at != NULL, "no model name in the header");
        if (at)
            at[0] = 0xff;
    }
    rb_write_all(p, c, len);
    expect_bad_checkpoint("header not UTF-8", p, NEEDLES("not UTF-8"), 1);
    p = ck_path("truncated");
    rb_write_all(p, b, len - 1000);
    expect_bad_checkpoint("truncated data", p, NEEDLES("beyond the", "data buffer"), 1);
    p = ck_path("trailing");
    memcpy(c, b, len);
    rb_write_all(p, c, len);
    {
        FILE *f = fopen(p, "ab");
        fwrite("12345678", 1, 8, f);
        fclose(f);
    }
    expect_bad_checkpoint("trailing bytes", p, NEEDLES("bytes after the last tensor"), 1);

    /* tensors: edits of the JSON header (cJSON), data adjusted where the edit needs it */
    struct rb_st_raw raw;
    CHECK(rb_st_parse(good, &raw), "cannot parse %s", good);
    cJSON *h = raw.header;

    p = ck_path("missing-tensor");
    {   /* drop the last tensor (7.4.bias, 10 floats at the end of the buffer) */
        cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(h, "7.4.bias");
        CHECK(t != NULL, "no tensor 7.4.bias");
        rb_st_write(p, h, raw.data, raw.data_len - 40);
        cJSON_AddItemToObject(h, "7.4.bias", t);
    }
    expect_bad_checkpoint("missing tensor", p, NEEDLES("tensor 7.4.bias is missing"), 1);

    p = ck_path("extra-tensor");
    {
        cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(2));
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)raw.data_len));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)raw.data_len + 8));
        cJSON_AddItemToObject(t, "data_offsets", offs);
        cJSON_AddItemToObject(h, "8.weight", t);
        unsigned char *d = calloc(raw.data_len + 8, 1);
        memcpy(d, raw.data, raw.data_len);
        rb_st_write(p, h, d, raw.data_len + 8);
        free(d);
        cJSON_DeleteItemFromObjectCaseSensitive(h, "8.weight");
    }
    expect_bad_checkpoint("extra tensor", p, NEEDLES("unexpected tensor 8.weight"), 1);

    p = ck_path("shape");
    {   /* 0.2.weight [48, 48, 1, 1] as [96, 24, 1, 1]: the same bytes, the wrong shape */
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "0.2.weight"), "shape");
        cJSON *old = cJSON_Duplicate(shape, 1);
        cJSON_ReplaceItemInArray(shape, 0, cJSON_CreateNumber(96));
        cJSON_ReplaceItemInArray(shape, 1, cJSON_CreateNumber(24));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "0.2.weight"), "shape", old);
    }
    expect_bad_checkpoint("wrong shape", p, NEEDLES("tensor 0.2.weight has shape [96, 24, 1, 1]", "[48, 48, 1, 1]"),
                          1);
    p = ck_path("rank");
    {   /* [48, 48, 1, 1] as [48, 48] */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.2.weight");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape"), *old = cJSON_Duplicate(shape, 1);
        cJSON_DeleteItemFromArray(shape, 3);
        cJSON_DeleteItemFromArray(shape, 2);
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "shape", old);
    }
    expect_bad_checkpoint("wrong rank", p, NEEDLES("tensor 0.2.weight has shape [48, 48]"), 1);
    p = ck_path("shape-size");
    {   /* a shape that disagrees with its data_offsets */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.0.bias");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape"), *old = cJSON_Duplicate(shape, 1);
        cJSON_ReplaceItemInArray(shape, 0, cJSON_CreateNumber(49));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "shape", old);
    }
    expect_bad_checkpoint("shape vs offsets", p, NEEDLES("'0.0.bias' has shape [49]", "hold 192 bytes"), 1);

    p = ck_path("dtype");
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.0.bias");
        cJSON_ReplaceItemInObjectCaseSensitive(t, "dtype", cJSON_CreateString("F16"));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "dtype", cJSON_CreateString("F32"));
    }
    expect_bad_checkpoint("wrong dtype", p, NEEDLES("'0.0.bias' has dtype 'F16'", "only F32"), 1);
    p = ck_path("dtype-missing");
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.0.bias");
        cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(t, "dtype");
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_AddItemToObject(t, "dtype", d);
    }
    expect_bad_checkpoint("no dtype", p, NEEDLES("'0.0.bias' has no dtype"), 1);

    p = ck_path("offsets-past-end");
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "7.4.bias");
        cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), *old = cJSON_Duplicate(o, 1);
        double end = cJSON_GetArrayItem(o, 1)->valuedouble;
        cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(end + 4000));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", old);
    }
    expect_bad_checkpoint("offsets past the end", p, NEEDLES("'7.4.bias' has data_offsets", "beyond the"), 1);
    p = ck_path("offsets-2^62");
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "7.4.bias");
        cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), *old = cJSON_Duplicate(o, 1);
        cJSON_ReplaceItemInArray(o, 0, cJSON_CreateNumber(4611686018427387904.0));
        cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(4611686018427387904.0 + 40));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", old);
    }
    expect_bad_checkpoint("offsets 2^62", p, NEEDLES("'7.4.bias'", "data_offsets"), 1);
    p = ck_path("offsets-overlap");
    {   /* 0.0.bias moved 4 bytes back into 0.0.weight */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.0.bias");
        cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), *old = cJSON_Duplicate(o, 1);
        cJSON_ReplaceItemInArray(o, 0, cJSON_CreateNumber(cJSON_GetArrayItem(o, 0)->valuedouble - 4));
        cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(cJSON_GetArrayItem(o, 1)->valuedouble - 4));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", old);
    }
    expect_bad_checkpoint("overlapping offsets", p, NEEDLES("overlaps"), 1);
    p = ck_path("offsets-reversed");
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "0.0.bias");
        cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), *old = cJSON_Duplicate(o, 1);
        double a = cJSON_GetArrayItem(o, 0)->valuedouble, e = cJSON_GetArrayItem(o, 1)->valuedouble;
        cJSON_ReplaceItemInArray(o, 0, cJSON_CreateNumber(e));
        cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(a));
        rb_st_write(p, h, raw.data, raw.data_len);
        cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", old);
    }
    expect_bad_checkpoint("offsets reversed", p, NEEDLES("ending before they begin"), 1);

    /* values: a NaN or an infinity in the weights would only ever give garbage */
    p = ck_path("nan");
    {
        unsigned char *d = malloc(raw.data_len);
        memcpy(d, raw.data, raw.data_len);
        float nan_value = NAN;
        memcpy(d + 4 * 7, &nan_value, 4);   /* 0.0.weight[7] */
        rb_st_write(p, h, d, raw.data_len);
        float inf_value = -INFINITY;
        memcpy(d, raw.data, raw.data_len);
        memcpy(d + raw.data_len - 4, &inf_value, 4);   /* 7.4.bias[9] */
        rb_st_write(ck_path("inf"), h, d, raw.data_len);
        free(d);
    }
    expect_bad_checkpoint("NaN weight", p, NEEDLES("tensor 0.0.weight holds NaN at element 7"), 1);
    expect_bad_checkpoint("-inf bias", ck_path("inf"), NEEDLES("tensor 7.4.bias holds infinity at element 9"), 1);

    /* another model: a real nin checkpoint, and each model's checkpoint labelled as the other */
    const char *nin = rb_path("nin/checkpoint.safetensors");
    if (rb_exists(nin)) {
        rb_run("eval --checkpoint %s --data %s --model nin-small", nin, data);
        rb_expect("eval nin as --model nin-small", 2, 1, 0, NEEDLES(nin, "checkpoint of model 'nin'", "nin-small"));
        rb_run("eval --checkpoint %s --data %s --model nin", good, data);
        rb_expect("eval nin-small as --model nin", 2, 1, 0, NEEDLES(good, "model 'nin-small', not 'nin'"));
        struct rb_st_raw n;
        CHECK(rb_st_parse(nin, &n), "cannot parse %s", nin);
        rb_st_set_meta(&n, "model", "nin-small");
        rb_st_set_meta(&n, "resize", "28");
        p = ck_path("nin-as-small");
        rb_st_write(p, n.header, n.data, n.data_len);
        rb_st_free(&n);
        expect_bad_checkpoint("nin labelled nin-small", p,
                              NEEDLES("tensor 0.0.weight has shape [96, 1, 11, 11]", "needs [48, 1, 5, 5]"), 1);
    }
    p = ck_path("small-as-nin");
    rb_st_set_meta(&raw, "model", "nin");
    rb_st_set_meta(&raw, "resize", "224");
    rb_st_write(p, h, raw.data, raw.data_len);
    expect_bad_checkpoint("nin-small labelled nin", p,
                          NEEDLES("tensor 0.0.weight has shape [48, 1, 5, 5]", "needs [96, 1, 11, 11]"), 1);
    p = ck_path("small-as-nin-28");
    rb_st_set_meta(&raw, "resize", "28");
    rb_st_write(p, h, raw.data, raw.data_len);
    expect_bad_checkpoint("nin at 28x28", p, NEEDLES("model 'nin'", "at 28x28", "layer", "empty output"), 1);
    p = ck_path("model-bogus");
    rb_st_set_meta(&raw, "model", "resnet");
    rb_st_write(p, h, raw.data, raw.data_len);
    expect_bad_checkpoint("unknown model", p, NEEDLES("model 'resnet'", "unknown model"), 1);
    rb_st_set_meta(&raw, "model", "nin-small");
    p = ck_path("resize-bad");
    rb_st_set_meta(&raw, "resize", "0");
    rb_st_write(p, h, raw.data, raw.data_len);
    expect_bad_checkpoint("metadata resize 0", p, NEEDLES("'resize' is '0'"), 1);
    rb_st_set_meta(&raw, "resize", "28");

    /* training metadata, which only --resume reads */
    struct {
        const char *name, *key, *value, *needle;
    } meta[] = {
        {"meta batch abc", "batch", "abc", "metadata 'batch' is 'abc'"},
        {"meta batch 0", "batch", "0", "metadata 'batch' is '0'"},
        {"meta lr -1", "lr", "-1", "metadata 'lr' is '-1'"},
        {"meta lr nan", "lr", "nan", "metadata 'lr' is 'nan'"},
        {"meta seed -3", "seed", "-3", "metadata 'seed' is '-3'"},
        {"meta epoch vs history", "epoch", "2", "inconsistent training metadata"},
        {"meta batch_index 1000", "batch_index", "1000", "does not fit"},
        {"meta step", "step", "5", "does not fit"},
        {"meta partial_count", "batch_index", "1", "does not fit"},
        {"meta format", "format", "other-1", "unknown checkpoint format 'other-1'"},
        {"meta other data", "data", "64/32/0123456789abcdef", "trained on other data"},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        char old[4096];
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "__metadata__"),
                                                          meta[i].key);
        snprintf(old, sizeof old, "%s", cJSON_IsString(m) ? m->valuestring : "");
        char name[64];
        snprintf(name, sizeof name, "meta-%zu", i);
        p = ck_path(name);
        rb_st_set_meta(&raw, meta[i].key, meta[i].value);
        rb_st_write(p, h, raw.data, raw.data_len);
        rb_st_set_meta(&raw, meta[i].key, old);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", p);
        *strrchr(dir, '/') = 0;
        rb_run("train --resume %s --data %s --epochs 2", dir, data);
        rb_expect(meta[i].name, 2, 1, 0, NEEDLES(p, meta[i].needle));
    }
    p = ck_path("meta-none");
    cJSON_DeleteItemFromObjectCaseSensitive(h, "__metadata__");
    rb_st_write(p, h, raw.data, raw.data_len);
    {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", p);
        *strrchr(dir, '/') = 0;
        rb_run("train --resume %s --data %s --epochs 2", dir, data);
        rb_expect("no metadata", 2, 1, 0, NEEDLES(p, "not a nincl training checkpoint"));
    }
    rb_st_free(&raw);
    free(c);
    free(b);

    /* a run's checkpoint is never overwritten by a new run, nor resumed on other data */
    const char *run_dir = rb_path("base");
    rb_run("train " SMALL " --data %s --out %s", data, run_dir);
    rb_expect("new run into a run's folder", 2, 1, 0, NEEDLES("already holds a run's checkpoint", "--resume"));
    const char *other = rb_path("data-other");
    rb_write_dataset(other, 64, 32, 28, 1);
    rb_write_split(other, "train", 64, 28, 1, 9);
    rb_run("train --resume %s --data %s --epochs 2", run_dir, other);
    rb_expect("resume on other data", 2, 1, 0, NEEDLES("trained on other data", "64/32/"));
    rb_run("train --resume %s --data %s", run_dir, data);
    rb_expect("resume a finished run", 2, 1, 0, NEEDLES("already finished 1 of 1 epochs", "--epochs"));
    rb_run("train --resume %s --data %s --lr 0.5", run_dir, data);
    rb_expect("resume with another --lr", 2, 1, 0, NEEDLES("--lr cannot be changed on --resume"));
    const char *no_parent = rb_path("no/such/run");
    rb_run("train " SMALL " --data %s --out %s", data, no_parent);
    rb_expect("--out in a missing folder", 2, 1, 0, NEEDLES("cannot create output folder", no_parent));
    rb_run("train " SMALL " --data %s --out %s", data, good);
    rb_expect("--out is a file", 2, 1, 0, NEEDLES(good, "is not a folder"));

    /* momentum lives in a second file, written just before the checkpoint */
    char mom[512], opt[600], dir[600], file[700];
    snprintf(mom, sizeof mom, "%s/momentum", rb_tmp);
    snprintf(opt, sizeof opt, "%s/checkpoint.optimizer.safetensors", mom);
    int rc = rb_run("train " SMALL " --momentum 0.9 --data %s --out %s", data, mom);
    CHECK(rc == 0 && rb_exists(opt), "the momentum run: exit %d, %s %s\n%s", rc, opt,
          rb_exists(opt) ? "written" : "missing", rb_err);
    snprintf(dir, sizeof dir, "%s-cut", mom);   /* a damaged optimizer file */
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/checkpoint.safetensors", dir);
    rb_copy(rb_path("momentum/checkpoint.safetensors"), file);
    snprintf(file, sizeof file, "%s/checkpoint.optimizer.safetensors", dir);
    rb_copy(opt, file);
    cut(file, (size_t)rb_file_size(file) - 100);
    rb_run("eval --checkpoint %s --data %s", dir, data);
    rb_expect("eval, optimizer file cut", 2, 1, 0, NEEDLES(file, "beyond the"));
    rb_run("train --resume %s --data %s --epochs 2", dir, data);
    rb_expect("resume, optimizer file cut", 2, 1, 0, NEEDLES(file, "beyond the"));
    /* A kill after the checkpoint's rename but before the momentum's: the optimizer file holds
     * the previous step's momentum and the pending file this step's; resume must use the latter. */
    snprintf(dir, sizeof dir, "%s-step", mom);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/checkpoint.safetensors", dir);
    rb_copy(rb_path("momentum/checkpoint.safetensors"), file);
    char pending[4200];
    snprintf(file, sizeof file, "%s/checkpoint.optimizer.safetensors", dir);
    snprintf(pending, sizeof pending, "%s.pending", file);
    rb_copy(opt, pending);
    struct rb_st_raw o;
    CHECK(rb_st_parse(opt, &o), "cannot parse %s", opt);
    rb_st_set_meta(&o, "step", "8");
    rb_st_write(file, o.header, o.data, o.data_len);
    rb_st_free(&o);
    rb_run("train --resume %s --data %s --epochs 2", dir, data);
    rb_expect("resume, momentum still pending", 0, 0, 1, NEEDLES("epoch 2/2"));
    /* neither file holds the checkpoint's step: an error, not a silent restart from zero */
    snprintf(dir, sizeof dir, "%s-lost", mom);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/checkpoint.safetensors", dir);
    rb_copy(rb_path("momentum/checkpoint.safetensors"), file);
    snprintf(file, sizeof file, "%s/checkpoint.optimizer.safetensors", dir);
    CHECK(rb_st_parse(opt, &o), "cannot parse %s", opt);
    rb_st_set_meta(&o, "step", "8");
    rb_st_write(file, o.header, o.data, o.data_len);
    rb_st_free(&o);
    rb_run("train --resume %s --data %s --epochs 2", dir, data);
    rb_expect("resume, momentum of another step", 2, 1, 0, NEEDLES(file, "momentum of its step"));
    unlink(file);   /* no optimizer file at all */
    rb_run("train --resume %s --data %s --epochs 2", dir, data);
    rb_expect("resume, optimizer file gone", 2, 1, 0, NEEDLES(file, "neither"));
}

/* ---- flags ----------------------------------------------------------------------------------- */

static void test_bad_flags(void)
{
    printf("bad flags:\n");
    struct {
        const char *args;
        const char *needles[4];
    } cases[] = {
        {"train --bogus 1", {"unknown flag --bogus"}},
        {"train --epoch 2", {"unknown flag --epoch", "did you mean --epochs"}},
        {"train --lr", {"--lr needs a value"}},
        {"train --lr abc", {"--lr must be a number", "abc"}},
        {"train --lr=", {"--lr must be a number"}},
        {"train --lr 0", {"--lr must be in (0,", "got 0"}},
        {"train --lr -1", {"--lr must be in (0,", "got -1"}},
        {"train --lr nan", {"--lr must be a number", "nan"}},
        {"train --lr inf", {"--lr must be a number", "inf"}},
        {"train --batch 0", {"--batch must be in [1, 65536]", "got 0"}},
        {"train --batch 1.5", {"--batch must be an integer", "1.5"}},
        {"train --batch 99999999999999999999", {"--batch must be in"}},
        {"train --epochs 0", {"--epochs must be in [1,", "got 0"}},
        {"train --epochs -3", {"--epochs", "got -3"}},
        {"train --momentum 2", {"--momentum must be in [0, 1]"}},
        {"train --seed -1", {"--seed must be a non-negative integer", "-1"}},
        {"train --train-limit -1", {"--train-limit", "got -1"}},
        {"train --resize 5000", {"--resize must be in [0, 4096]"}},
        {"train --progress maybe", {"--progress takes auto, on or off", "maybe"}},
        {"train extra", {"unexpected argument 'extra'"}},
        {"eval --bogus", {"unknown flag --bogus"}},
        {"eval", {"--checkpoint is required"}},
        {"eval --checkpoint", {"--checkpoint needs a value"}},
        {"eval --batch 0 --checkpoint x", {"--batch must be in [1, 65536]"}},
        {"eval --test-limit -5 --checkpoint x", {"--test-limit", "got -5"}},
        {"bench --bogus", {"unknown flag --bogus"}},
        {"bench --batch 0", {"--batch must be in", "got 0"}},
        {"bench --steps 0", {"--steps must be in", "got 0"}},
        {"bench --steps abc", {"--steps must be an integer", "abc"}},
        {"bench --json maybe", {"--json takes on or off", "maybe"}},
        {"shapes --bogus", {"unknown flag --bogus"}},
        {"shapes --batch -2", {"--batch", "got -2"}},
        {"shapes --input 0x28x28", {"--input must be CxHxW", "0x28x28"}},
        {"shapes --input 1x28x28x", {"--input must be CxHxW", "1x28x28x"}},
        {"shapes --input abc", {"--input must be CxHxW", "abc"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rb_run("%s", cases[i].args);
        const char *n[5] = {cases[i].needles[0], cases[i].needles[1], cases[i].needles[2], cases[i].needles[3]};
        rb_expect(cases[i].args, 2, 1, 0, n);
    }

    /* values the flags accept but the model or the machine does not: these reach the device */
    struct {
        const char *args;
        int one_line;
        const char *needles[4];
    } dev[] = {
        {"train --resize 8 --epochs 1", 1, {"layer 0.0 (Conv2d)", "empty output", "1x8x8"}},
        {"train --model nin-small --resize 8 --epochs 1", 1, {"layer", "MaxPool2d", "empty output"}},
        {"train --model bogus --epochs 1", 1, {"unknown model 'bogus'", "nin-small"}},
        {"train --model nin-small --platform 7", 0, {"no OpenCL device matches --platform '7'", "available"}},
        {"train --model nin-small --device no-such-device", 0, {"no-such-device", "available"}},
        {"train --model nin-small --gemm fastest", 1, {"unknown GEMM implementation 'fastest'"}},
        {"train --model nin-small --kernel-dir /no/such/folder", 1, {"/no/such/folder", "not a folder"}},
        {"bench --model nin --resize 8", 1, {"layer 0.0 (Conv2d)", "empty output"}},
        {"bench --model nope", 1, {"unknown model 'nope'"}},
        {"bench --device 5", 0, {"no OpenCL device matches", "'5'", "available"}},
        {"shapes --model nin-small --input 1x8x8", 1, {"layer", "MaxPool2d", "empty output"}},
        {"shapes --platform 3", 0, {"--platform '3'", "available"}},
        {"shapes --platform nope --device 0", 0, {"--platform 'nope'", "available"}},
    };
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) {
        const int is_train = strncmp(dev[i].args, "train", 5) == 0;
        const char *out = rb_path("out-flags-%zu", i);
        if (is_train)
            rb_run("%s --data %s --out %s", dev[i].args, data, out);
        else
            rb_run("%s", dev[i].args);
        const char *n[5] = {dev[i].needles[0], dev[i].needles[1], dev[i].needles[2], dev[i].needles[3]};
        rb_expect(dev[i].args, 2, dev[i].one_line, 0, n);
        CHECK(!is_train || !rb_exists(out), "%s: the refused run left %s", dev[i].args, out);
    }
    rb_run("eval --checkpoint %s --data %s --device 9", good, data);
    rb_expect("eval --device 9", 2, 0, 0, NEEDLES("no OpenCL device matches", "'9'", "available"));
    rb_run("eval --checkpoint %s --data %s --resize 8", good, data);
    rb_expect("eval --resize 8", 2, 1, 0, NEEDLES("layer", "empty output"));
    rb_run("eval --checkpoint %s --data %s --logits %s/no/such/x.npy", good, data, rb_tmp);
    rb_expect("eval --logits in no folder", 2, 1, 1, NEEDLES("cannot write", "x.npy", "No such file"));
}

int main(int argc, char **argv)
{
    (void)argc;
    double t0 = rb_now();
    rb_setup("test-robust-input", argv[0]);
    snprintf(data, sizeof data, "%s/data", rb_tmp);
    rb_write_dataset(data, 64, 32, 28, 0);

    /* the good checkpoint every damaged one is made from, and a nin one (67x67 is the smallest
     * input nin takes) */
    const char *base = rb_path("base");
    int rc = rb_run("train " SMALL " --data %s --out %s", data, base);
    CHECK(rc == 0, "the base run failed: exit %d\n%s", rc, rb_err);
    snprintf(good, sizeof good, "%s/checkpoint.safetensors", base);
    CHECK(rb_checkpoint_sound(good), "the base checkpoint is not sound");
    rc = rb_run("train --model nin --resize 67 --batch 8 --train-limit 8 --test-limit 8 --epochs 1 --data %s --out %s",
                data, rb_path("nin"));
    CHECK(rc == 0, "the nin run failed: exit %d\n%s", rc, rb_err);
    rc = rb_run("eval --checkpoint %s --data %s", good, data);
    CHECK(rc == 0 && strstr(rb_out, "test acc"), "eval of the good checkpoint failed: exit %d\n%s", rc, rb_err);

    test_bad_data();
    test_bad_checkpoints();
    test_bad_flags();

    printf("test-robust-input: %.1f s\n", rb_now() - t0);
    rb_cleanup();
    return check_done("test-robust-input");
}
