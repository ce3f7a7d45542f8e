/* Per-device choices (runtime/tune/): the kernel-variant measurement and the on-disk tuning
 * cache it fills, on the device present (PoCL in CI). The table of measured devices names
 * PoCL, so the test calls ncl_variant_choose without the table to see the cache at work:
 *   - an empty cache: measured (a note says so), the CPU set chosen on a CPU device (PoCL runs
 *     it ~5x faster), and the result stored under this device's key;
 *   - again: read from the cache, not measured; a cache entry saying "gpu" is obeyed;
 *   - another device's, driver's or kernel build's entry is not used, and is kept;
 *   - damaged files (wrong header, a cut-off last line, a NUL byte, a line with one field, an
 *     oversized file) are ignored with a warning, measured again and rewritten whole;
 *   - a cache that cannot be written: a warning, and the choice still made;
 *   - ncl_ctx_create: "auto" takes the table, "measure" measures, a forced set is "forced",
 *     an unknown name is refused with the list of names. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "tune-impl.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char notes[8192];
static int note_count;

static void on_note(const char *message, void *user)
{
    (void)user;
    note_count++;
    snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "%s\n", message);
}

static void notes_clear(void)
{
    notes[0] = 0;
    note_count = 0;
}

static char dir[256], path[320];

static void write_text(const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

static char *read_text(void)
{
    static char buf[1 << 16];
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    return buf;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* ncl_variant_choose without the table; returns cpu_kernels, or -1 on failure */
static int choose(struct ncl_ctx *ctx)
{
    notes_clear();
    enum ncl_status s = ncl_variant_choose(ctx, 0, 1);
    CHECK(s == NCL_OK, "ncl_variant_choose: %s", ncl_last_error());
    return s == NCL_OK ? ctx->cpu_kernels : -1;
}

static void test_cache(struct ncl_ctx *ctx)
{
    int is_cpu = strcmp(ctx->info.type, "CPU") == 0;
    char key[512];
    ncl_tune_key(ctx, key, sizeof key);
    printf("  key: %s\n", key);

    int got = choose(ctx);
    printf("  empty cache: %s (%s)\n", got ? "cpu" : "gpu", ctx->variant_how);
    CHECK(strstr(notes, "measuring which kernel variants") != NULL, "no note that it measures:\n%s", notes);
    CHECK(strstr(ctx->variant_how, "measured on this device:") != NULL, "how: %s", ctx->variant_how);
    if (is_cpu)
        CHECK(got == 1, "the GPU set chosen on a CPU device: %s", ctx->variant_how);
    char *text = read_text();
    CHECK(strncmp(text, "nincl-tune 1\n", 13) == 0 && strstr(text, key) && count_lines(text) == 2,
          "the cache after one measurement:\n%s", text);

    CHECK(choose(ctx) == got, "a second choice differs");
    CHECK(note_count == 0, "measured again, or warned:\n%s", notes);
    CHECK(strstr(ctx->variant_how, "tuning cache") != NULL, "not from the cache: %s", ctx->variant_how);

    /* the cache is obeyed: an entry for the other set */
    char entry[1024];
    snprintf(entry, sizeof entry, "nincl-tune 1\n%s\tkernels\t%d 5.000 6.000\n", key, !got);
    write_text(entry, strlen(entry));
    CHECK(choose(ctx) == !got && note_count == 0, "the cache's entry for the other set was not taken (%s)",
          ctx->variant_how);

    /* entries of another device, driver or kernel build are not this one's, and stay */
    char other[2048];
    snprintf(other, sizeof other, "nincl-tune 1\n%s | other device\tkernels\t%d 5.000 6.000\n"
                                  "%s\tother-choice\tx y z\n", key, !got, key);
    write_text(other, strlen(other));
    CHECK(choose(ctx) == got, "another entry was taken for this device");
    CHECK(strstr(notes, "measuring") != NULL, "not measured with only other entries:\n%s", notes);
    text = read_text();
    CHECK(count_lines(text) == 4 && strstr(text, "| other device\tkernels") && strstr(text, "\tother-choice\tx y z\n"),
          "other entries not kept:\n%s", text);

    /* damaged files: ignored with a warning, measured again, rewritten whole */
    static char big[(1 << 20) + 64];
    memset(big, 'x', sizeof big);
    memcpy(big, "nincl-tune 1\n", 13);
    big[sizeof big - 1] = '\n';
    char nul[64] = "nincl-tune 1\na\tb\tc\n";
    nul[15] = 0;
    const struct {
        const char *what, *text;
        size_t len;
    } damaged[] = {
        {"a wrong header", "nincl-tune 2\n", 13},
        {"no header", "", 0},
        {"a cut-off last line", "nincl-tune 1\nkey\tkernels\t1 2", 28},
        {"a NUL byte", nul, 19},
        {"a line with one field", "nincl-tune 1\njust one field\n", 28},
        {"a line with an empty value", "nincl-tune 1\nkey\tkernels\t\n", 26},
        {"an oversized file", big, sizeof big},
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        write_text(damaged[i].text, damaged[i].len);
        int c = choose(ctx);
        int warned = strstr(notes, "warning:") && strstr(notes, path) && strstr(notes, "measuring");
        printf("  %s: %s", damaged[i].what, notes);
        CHECK(c == got && warned, "%s: choice %d, notes:\n%s", damaged[i].what, c, notes);
        text = read_text();
        CHECK(strncmp(text, "nincl-tune 1\n", 13) == 0 && count_lines(text) == 2 && strstr(text, key),
              "%s: not rewritten whole:\n%.300s", damaged[i].what, text);
    }

    /* a cache that cannot be written (its folder would be under a file) */
    char blocked[320];
    snprintf(blocked, sizeof blocked, "%s/file/sub", dir);
    snprintf(path, sizeof path, "%s/file", dir);
    write_text("not a folder\n", 13);
    setenv("NINCL_CACHE_DIR", blocked, 1);
    CHECK(choose(ctx) == got && strstr(notes, "warning: cannot write the tuning cache"),
          "an unwritable cache: notes:\n%s", notes);
    setenv("NINCL_CACHE_DIR", dir, 1);
    snprintf(path, sizeof path, "%s/tune.txt", dir);
}

static void test_ctx_params(void)
{
    struct ncl_ctx *ctx = NULL;
    struct ncl_ctx_params p = {.on_warning = on_note};
    const char *how = NULL;

    notes_clear();
    CHECK(ncl_ctx_create(&p, &ctx) == NCL_OK, "auto: %s", ncl_last_error());
    if (ctx) {
        const char *v = ncl_ctx_kernel_variants(ctx, &how);
        printf("  auto: %s (%s)\n", v, how);
        int in_table = strstr(ctx->info.platform_name, "Portable Computing Language") != NULL;
        if (in_table)
            CHECK(strstr(how, "table") && strcmp(v, strcmp(ctx->info.type, "CPU") == 0 ? "cpu" : "gpu") == 0 &&
                      note_count == 0, "auto on PoCL: %s (%s), notes: %s", v, how, notes);
    }
    ncl_ctx_free(ctx);

    p.kernels = "measure";
    notes_clear();
    ctx = NULL;
    CHECK(ncl_ctx_create(&p, &ctx) == NCL_OK, "measure: %s", ncl_last_error());
    if (ctx) {
        const char *v = ncl_ctx_kernel_variants(ctx, &how);
        printf("  measure: %s (%s)\n", v, how);
        CHECK(strstr(how, "measured on this device:") && strstr(notes, "measuring"), "measure: %s, notes: %s", how,
              notes);
        CHECK(ncl_ctx_device_bytes(ctx) == 0, "the probe left %llu device bytes in the context",
              (unsigned long long)ncl_ctx_device_bytes(ctx));
    }
    ncl_ctx_free(ctx);

    p.kernels = "gpu";
    ctx = NULL;
    CHECK(ncl_ctx_create(&p, &ctx) == NCL_OK, "gpu: %s", ncl_last_error());
    if (ctx)
        CHECK(strcmp(ncl_ctx_kernel_variants(ctx, &how), "gpu") == 0 && strcmp(how, "forced") == 0, "gpu: %s", how);
    ncl_ctx_free(ctx);

    p.kernels = "fastest";
    ctx = NULL;
    CHECK(ncl_ctx_create(&p, &ctx) == NCL_ERR_ARG && ctx == NULL, "an unknown name was accepted");
    CHECK(strstr(ncl_last_error(), "'fastest' (choose auto, cpu, gpu or measure)") != NULL, "message: %s",
          ncl_last_error());
}

int main(void)
{
    unsetenv("NINCL_KERNELS");
    snprintf(dir, sizeof dir, "/tmp/nincl-test-tune-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("NINCL_CACHE_DIR", dir, 1);
    snprintf(path, sizeof path, "%s/tune.txt", dir);

    struct ncl_ctx *ctx = NULL;
    struct ncl_ctx_params p = {.kernels = "cpu", .on_warning = on_note};
    if (ncl_ctx_create(&p, &ctx) != NCL_OK) {
        fprintf(stderr, "no device: %s\n", ncl_last_error());
        return 1;
    }
    printf("device: %s (%s)\n", ctx->info.name, ctx->info.platform_name);
    test_cache(ctx);
    ncl_ctx_free(ctx);
    test_ctx_params();

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    return check_done("test-tune");
}
