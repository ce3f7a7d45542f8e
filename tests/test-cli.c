/* The nincl command as a user runs it: the real binary ($NINCL_BIN, set by ctest; else the
 * nincl beside this test's folder) with stdout and stderr captured apart, checking exit codes
 * (0 ok, 2 usage or bad input) and that each message says what went wrong and what to do.
 * `shapes` must print the reference table of nin-reference.md line for line. */
#include "check.h"
#include "nincl.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bin[1024], tmp_dir[64];
static char out[65536], err[65536];

/* The reference prints exactly this for one 1x1x224x224 input (nin-reference.md). */
static const char *const ref_table[10] = {
    "Sequential output shape:         torch.Size([1, 96, 54, 54])",
    "MaxPool2d output shape:          torch.Size([1, 96, 26, 26])",
    "Sequential output shape:         torch.Size([1, 256, 26, 26])",
    "MaxPool2d output shape:          torch.Size([1, 256, 12, 12])",
    "Sequential output shape:         torch.Size([1, 384, 12, 12])",
    "MaxPool2d output shape:          torch.Size([1, 384, 5, 5])",
    "Dropout output shape:            torch.Size([1, 384, 5, 5])",
    "Sequential output shape:         torch.Size([1, 10, 5, 5])",
    "AdaptiveAvgPool2d output shape:  torch.Size([1, 10, 1, 1])",
    "Flatten output shape:            torch.Size([1, 10])",
};

static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Runs `nincl <args>` (args are shell words, already quoted where needed); returns the exit
 * code, or -1 if it did not exit normally. */
static int run(const char *args)
{
    char cmd[4096], o[128], e[128];
    snprintf(o, sizeof o, "%s/out", tmp_dir);
    snprintf(e, sizeof e, "%s/err", tmp_dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s' </dev/null", bin, args, o, e);
    int st = system(cmd);
    slurp(o, out, sizeof out);
    slurp(e, err, sizeof err);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define EXPECT(args, code)                                                                          \
    do {                                                                                            \
        int rc_ = run(args);                                                                        \
        CHECK(rc_ == (code), "nincl %s: exit %d, want %d\nstdout: %.2000s\nstderr: %.2000s", args, rc_, \
              code, out, err);                                                                      \
    } while (0)
#define HAS(buf, text) CHECK(strstr(buf, text) != NULL, "%s lacks \"%s\":\n%.2000s", #buf, text, buf)

/* A usage error: exit 2, a message on stderr naming each of `needles`, nothing on stdout. */
static void expect_usage(const char *args, const char *const *needles, int n)
{
    EXPECT(args, 2);
    CHECK(out[0] == 0, "nincl %s: an error printed on stdout: %.500s", args, out);
    CHECK(err[0] != 0, "nincl %s: nothing on stderr", args);
    for (int i = 0; i < n; i++)
        CHECK(strstr(err, needles[i]) != NULL, "nincl %s: the message lacks \"%s\":\n%.2000s", args, needles[i], err);
}

/* stdout is exactly the reference table with batch `batch`. */
static void expect_table(const char *args, int batch)
{
    const char *p = out;
    for (int i = 0; i < 10; i++) {
        char want[128];
        const char *at = strstr(ref_table[i], "[1,");
        snprintf(want, sizeof want, "%.*s[%d,%s", (int)(at - ref_table[i]), ref_table[i], batch, at + 3);
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        CHECK(nl && len == strlen(want) && !strncmp(p, want, len), "nincl %s, line %d: \"%.*s\", want \"%s\"", args,
              i + 1, (int)len, p, want);
        p = nl ? nl + 1 : p + len;
    }
    CHECK(*p == 0, "nincl %s: more output after the table: %.500s", args, p);
}

static void find_binary(const char *argv0)
{
    check_nincl_binary(bin, sizeof bin, argv0);
    CHECK(access(bin, X_OK) == 0, "no nincl binary at %s (set NINCL_BIN)", bin);
    CHECK(strchr(bin, '\'') == NULL, "the binary path %s has a quote", bin);
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)argc;
    find_binary(argv[0]);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nincl-test-cli-XXXXXX");
    CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp failed");
    /* the user's device selection must not leak into the runs */
    unsetenv("NINCL_PLATFORM");
    unsetenv("NINCL_DEVICE");
    unsetenv("NINCL_KERNEL_DIR");
    unsetenv("NINCL_GEMM");

    struct ncl_device_info *devs = NULL;
    int ndev = 0;
    CHECK(ncl_device_list(&devs, &ndev) == NCL_OK && ndev >= 1, "no OpenCL device: %s", ncl_last_error());

    /* devices: every platform and device, with the indices --platform / --device take */
    EXPECT("devices", 0);
    HAS(out, "platform 0");
    HAS(out, "device 0");
    for (int i = 0; i < ndev; i++) {
        HAS(out, devs[i].name);
        HAS(out, devs[i].platform_name);
    }
    EXPECT("devices --help", 0);
    HAS(out, "--help");

    /* help: the commands, and each command's flags with their defaults */
    EXPECT("--help", 0);
    HAS(out, "devices");
    HAS(out, "shapes");
    EXPECT("help", 0);
    HAS(out, "shapes");
    EXPECT("shapes --help", 0);
    static const char *const shape_flags[] = {"--model", "(default: nin)", "--input", "(default: 1x224x224)",
                                              "--batch", "(default: 1)",   "--platform", "--device",
                                              "--kernel-dir", "--gemm", "--help"};
    for (size_t i = 0; i < sizeof shape_flags / sizeof shape_flags[0]; i++)
        HAS(out, shape_flags[i]);
    EXPECT("shapes --batch 5 --help", 0);   /* --help wins wherever it is */
    HAS(out, "--batch");

    /* usage errors */
    {
        static const char *const n[] = {"unknown command", "frobnicate", "usage", "shapes"};
        expect_usage("frobnicate", n, 4);
    }
    {
        static const char *const n[] = {"usage"};
        expect_usage("", n, 1);
    }
    {
        static const char *const n[] = {"unknown flag", "--batchh", "did you mean --batch"};
        expect_usage("shapes --batchh 3", n, 3);
    }
    {
        static const char *const n[] = {"--batch", "needs a value"};
        expect_usage("shapes --batch", n, 2);
    }
    {
        static const char *const n[] = {"--batch", "integer", "abc"};
        expect_usage("shapes --batch abc", n, 3);
        expect_usage("shapes --batch=abc", n, 3);
    }
    {
        static const char *const n[] = {"--batch", "got 0"};
        expect_usage("shapes --batch 0", n, 2);
    }
    {
        static const char *const n[] = {"--batch", "2.5"};
        expect_usage("shapes --batch 2.5", n, 2);
    }
    {
        static const char *const n[] = {"unexpected argument", "extra"};
        expect_usage("shapes extra", n, 2);
    }
    {
        static const char *const n[] = {"unknown flag", "--bogus"};
        expect_usage("devices --bogus", n, 2);
    }
    {
        static const char *const n[] = {"unknown model", "nope", "nin"};
        expect_usage("shapes --model nope", n, 3);
    }
    /* an input too small: the layer whose output would be empty is named */
    {
        static const char *const n[] = {"layer 3", "MaxPool2d", "empty"};
        expect_usage("shapes --input 1x32x32", n, 3);
    }
    {
        static const char *const n[] = {"--input", "CxHxW", "3x224"};
        expect_usage("shapes --input 3x224", n, 3);
    }
    /* a device that is not there: the message lists the ones that are */
    {
        const char *n[] = {"7", "available", devs ? devs[0].name : "?"};
        expect_usage("shapes --device 7", n, 3);
        expect_usage("shapes --platform 9", n + 1, 2);
        expect_usage("shapes --device no-such-device", n + 1, 2);
    }

    /* shapes: the reference table line for line */
    EXPECT("shapes", 0);
    expect_table("shapes", 1);
    /* the = form, with the device's type ("cpu" on PoCL) as the selection */
    char args[128], type[16] = "cpu";
    for (int i = 0; devs && devs[0].type[i] && i < 15; i++)
        type[i] = (char)(devs[0].type[i] | 0x20), type[i + 1] = 0;
    snprintf(args, sizeof args, "shapes --device=%s", type);
    EXPECT(args, 0);
    expect_table(args, 1);
    EXPECT("shapes --batch=3 --platform 0 --device 0 --model nin --input=1x224x224", 0);
    expect_table("shapes --batch=3 ...", 3);

    /* bench: the JSON figures, and --cold-cache starts from an empty kernel cache that is gone
     * afterwards (TMPDIR points it into our folder) */
    EXPECT("bench --model nin-small --batch 2 --steps 1 --warmup 0 --json", 0);
    HAS(out, "\"train_images_per_sec\"");
    HAS(out, "\"kernel_cache\": \"as found\"");
    HAS(out, "\"kernels\": [{\"name\": ");
    HAS(out, "\"kernel_variants_chosen\": \"");   /* which set ran, and why (runtime/tune/) */
    EXPECT("bench --model nin-small --batch 2 --steps 1 --warmup 0 --kernels gpu", 0);
    HAS(out, "kernel variants: gpu (forced)");
    EXPECT("bench --model nin-small --batch 2 --steps 1 --warmup 0 --kernels fastest", 2);
    HAS(err, "unknown kernel variants 'fastest' (choose auto, cpu, gpu or measure)");
    setenv("TMPDIR", tmp_dir, 1);
    EXPECT("bench --model nin-small --batch 2 --steps 1 --warmup 0 --json --cold-cache", 0);
    unsetenv("TMPDIR");
    HAS(out, "\"kernel_cache\": \"cold\"");
    DIR *d = opendir(tmp_dir);
    int left = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        left += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "out") && strcmp(e->d_name, "err");
    if (d)
        closedir(d);
    CHECK(d && left == 0, "bench --cold-cache left %d entries in %s", left, tmp_dir);

    free(devs);
    unlink(strcat(strcpy(out, tmp_dir), "/out"));
    unlink(strcat(strcpy(out, tmp_dir), "/err"));
    rmdir(tmp_dir);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test-cli: %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return check_done("test-cli");
}
