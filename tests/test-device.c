/* Devices and contexts on whatever OpenCL device is present (PoCL in CI): listing, selection
 * by index, by case-insensitive name or type substring and through NINCL_PLATFORM /
 * NINCL_DEVICE, the errors of a selection that matches nothing (which must list what is
 * there), an unknown GEMM name, and kernel loading from a folder: a kernel that fails to
 * build reports the file, the build options and the compiler's log; a missing folder names
 * its path. */
#include "check.h"
#include "nincl.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ncl_device_info *devs;
static int ndev;

static void env_clear(void)
{
    unsetenv("NINCL_PLATFORM");
    unsetenv("NINCL_DEVICE");
    unsetenv("NINCL_KERNEL_DIR");
    unsetenv("NINCL_GEMM");
    unsetenv("NINCL_KERNELS");
    unsetenv("NINCL_CONV");
}

/* Creates a context, checks the status, and on success returns the selected device's info
 * (copied) and frees the context. */
static enum ncl_status try_ctx(const char *platform, const char *device, const char *gemm,
                               struct ncl_device_info *got)
{
    struct ncl_ctx_params p = {.platform = platform, .device = device, .gemm = gemm};
    struct ncl_ctx *ctx = NULL;
    enum ncl_status s = ncl_ctx_create(&p, &ctx);
    if (s == NCL_OK) {
        CHECK(ctx != NULL, "ncl_ctx_create returned OK and no context");
        if (ctx && got)
            *got = *ncl_ctx_device(ctx);
    } else {
        CHECK(ctx == NULL, "ncl_ctx_create failed (%s) and set a context", ncl_status_str(s));
        ctx = NULL;
    }
    ncl_ctx_free(ctx);
    return s;
}

static int same_device(const struct ncl_device_info *a, const struct ncl_device_info *b)
{
    return a->platform_index == b->platform_index && a->device_index == b->device_index &&
           strcmp(a->name, b->name) == 0;
}

/* A mixed-case substring of s from the middle (so matching must ignore case and not anchor
 * at the start), at most 8 characters, digits-only avoided (that would be an index). */
static void mixed_substring(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s), start = n > 10 ? 2 : 0, len = n - start < 8 ? n - start : 8;
    if (len >= cap)
        len = cap - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[start + i];
        out[i] = (char)(i % 2 ? toupper(c) : tolower(c));
    }
    out[len] = 0;
}

static void test_list(void)
{
    enum ncl_status s = ncl_device_list(&devs, &ndev);
    CHECK(s == NCL_OK, "ncl_device_list: %s", ncl_last_error());
    if (s != NCL_OK) {
        devs = NULL;
        ndev = 0;
        return;
    }
    CHECK(ndev >= 1, "no OpenCL device listed (PoCL should be there)");
    int pocl = 0;
    for (int i = 0; i < ndev; i++) {
        const struct ncl_device_info *d = &devs[i];
        printf("device: platform %d (%s), device %d: %s [%s], vendor %s, %u compute units, %.2f GiB\n",
               d->platform_index, d->platform_name, d->device_index, d->name, d->type, d->vendor, d->compute_units,
               d->global_mem_bytes / 1073741824.0);
        CHECK(d->platform_name[0] && d->name[0], "device %d has an empty platform or device name", i);
        CHECK(!strcmp(d->type, "GPU") || !strcmp(d->type, "CPU") || !strcmp(d->type, "ACCELERATOR") ||
                  !strcmp(d->type, "OTHER"),
              "device %d type '%s'", i, d->type);
        CHECK(d->compute_units >= 1 && d->global_mem_bytes > 0 && d->max_alloc_bytes > 0 &&
                  d->max_alloc_bytes <= d->global_mem_bytes && d->max_work_group_size >= 1,
              "device %d (%s): implausible limits", i, d->name);
        CHECK(!strncmp(d->version, "OpenCL ", 7), "device %d version '%s'", i, d->version);
        /* indices: platforms in order, devices numbered from 0 within each */
        if (i > 0) {
            const struct ncl_device_info *p = &devs[i - 1];
            CHECK(d->platform_index > p->platform_index ||
                      (d->platform_index == p->platform_index && d->device_index == p->device_index + 1),
                  "device %d: platform %d device %d follows platform %d device %d", i, d->platform_index,
                  d->device_index, p->platform_index, p->device_index);
        } else {
            CHECK(d->device_index == 0, "the first device has index %d", d->device_index);
        }
        pocl |= strstr(d->platform_name, "Portable Computing Language") != NULL;
    }
    if (pocl)
        printf("PoCL present\n");
}

static void test_select(void)
{
    struct ncl_device_info got;
    const struct ncl_device_info *d0 = &devs[0];
    enum ncl_status s;

    /* default: the first GPU, else the first device */
    const struct ncl_device_info *want = d0;
    for (int i = 0; i < ndev; i++)
        if (!strcmp(devs[i].type, "GPU")) {
            want = &devs[i];
            break;
        }
    s = try_ctx(NULL, NULL, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, want), "default selection: %s, got %s, want %s", ncl_status_str(s),
          got.name, want->name);

    /* indices */
    char pidx[16], didx[16];
    snprintf(pidx, sizeof pidx, "%d", d0->platform_index);
    snprintf(didx, sizeof didx, "%d", d0->device_index);
    s = try_ctx(pidx, didx, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, d0), "--platform %s --device %s: %s", pidx, didx, ncl_last_error());
    s = try_ctx("0", "0", NULL, &got);
    CHECK(s == NCL_OK && got.platform_index == 0 && got.device_index == 0, "--platform 0 --device 0: %s",
          ncl_last_error());

    /* case-insensitive substrings of the platform name, the device name and the type */
    char psub[16], dsub[16], tsub[16];
    mixed_substring(d0->platform_name, psub, sizeof psub);
    mixed_substring(d0->name, dsub, sizeof dsub);
    snprintf(tsub, sizeof tsub, "%s", d0->type);
    for (char *c = tsub; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    s = try_ctx(psub, NULL, NULL, &got);
    CHECK(s == NCL_OK && got.platform_index == d0->platform_index, "--platform '%s': %s", psub, ncl_last_error());
    s = try_ctx(psub, dsub, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, d0), "--platform '%s' --device '%s': %s", psub, dsub, ncl_last_error());
    s = try_ctx(NULL, tsub, NULL, &got);
    CHECK(s == NCL_OK && !strcmp(got.type, d0->type), "--device '%s': %s", tsub, ncl_last_error());
    if (strstr(d0->platform_name, "Portable Computing Language")) {
        /* PoCL by the names a user types */
        s = try_ctx("portable", "cpu", NULL, &got);
        CHECK(s == NCL_OK && !strcmp(got.type, "CPU"), "--platform portable --device cpu: %s", ncl_last_error());
        s = try_ctx("PORTABLE", "CPU", NULL, &got);
        CHECK(s == NCL_OK && !strcmp(got.type, "CPU"), "--platform PORTABLE --device CPU: %s", ncl_last_error());
        s = try_ctx(NULL, "pthread", NULL, &got);
        CHECK(s == NCL_OK && strstr(got.name, "pthread"), "--device pthread: %s", ncl_last_error());
    }

    /* environment fallbacks, and explicit parameters win over them */
    setenv("NINCL_PLATFORM", psub, 1);
    setenv("NINCL_DEVICE", dsub, 1);
    s = try_ctx(NULL, NULL, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, d0), "NINCL_PLATFORM='%s' NINCL_DEVICE='%s': %s", psub, dsub,
          ncl_last_error());
    setenv("NINCL_DEVICE", "7", 1);
    s = try_ctx(NULL, NULL, NULL, &got);
    CHECK(s == NCL_ERR_NO_DEVICE, "NINCL_DEVICE=7 is not read: %s", ncl_status_str(s));
    s = try_ctx(NULL, didx, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, d0), "--device %s does not override NINCL_DEVICE=7: %s", didx,
          ncl_last_error());
    setenv("NINCL_PLATFORM", "9", 1);
    s = try_ctx(NULL, didx, NULL, &got);
    CHECK(s == NCL_ERR_NO_DEVICE, "NINCL_PLATFORM=9 is not read: %s", ncl_status_str(s));
    s = try_ctx(pidx, didx, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, d0), "--platform %s does not override NINCL_PLATFORM=9: %s", pidx,
          ncl_last_error());
    setenv("NINCL_PLATFORM", "", 1);   /* empty: unset */
    setenv("NINCL_DEVICE", "", 1);
    s = try_ctx(NULL, NULL, NULL, &got);
    CHECK(s == NCL_OK && same_device(&got, want), "empty NINCL_PLATFORM / NINCL_DEVICE: %s", ncl_last_error());
    env_clear();
}

/* A selection that matches nothing: NCL_ERR_NO_DEVICE, naming the selection and listing
 * every device there is. */
static void expect_no_device(const char *platform, const char *device)
{
    enum ncl_status s = try_ctx(platform, device, NULL, NULL);
    const char *msg = ncl_last_error();
    CHECK(s == NCL_ERR_NO_DEVICE, "--platform %s --device %s: %s, want NCL_ERR_NO_DEVICE", platform ? platform : "-",
          device ? device : "-", ncl_status_str(s));
    const char *sel = device ? device : platform;
    CHECK(strstr(msg, sel) != NULL, "the message does not name the selection '%s': %s", sel, msg);
    for (int i = 0; i < ndev; i++)
        CHECK(strstr(msg, devs[i].name) && strstr(msg, devs[i].platform_name),
              "the message does not list device '%s' of platform '%s': %s", devs[i].name, devs[i].platform_name, msg);
    CHECK(strstr(msg, "available") != NULL, "the message does not say what is available: %s", msg);
}

static void test_errors(void)
{
    expect_no_device(NULL, "7");
    expect_no_device("9", NULL);
    expect_no_device(NULL, "no-such-device");
    expect_no_device("no-such-platform", NULL);
    expect_no_device("0", "no-such-device");
    printf("no-device message: %s\n", ncl_last_error());

    enum ncl_status s = try_ctx(NULL, NULL, "no-such-gemm", NULL);
    CHECK(s == NCL_ERR_ARG, "gemm 'no-such-gemm': %s, want NCL_ERR_ARG", ncl_status_str(s));
    CHECK(strstr(ncl_last_error(), "no-such-gemm") && strstr(ncl_last_error(), "clblast"),
          "the message names neither the bad GEMM nor the choices: %s", ncl_last_error());
    setenv("NINCL_GEMM", "bogus", 1);
    s = try_ctx(NULL, NULL, NULL, NULL);
    CHECK(s == NCL_ERR_ARG && strstr(ncl_last_error(), "bogus"), "NINCL_GEMM=bogus: %s", ncl_status_str(s));
    s = try_ctx(NULL, NULL, "clblast", NULL);
    CHECK(s == NCL_OK, "gemm 'clblast' does not override NINCL_GEMM=bogus: %s", ncl_last_error());
    env_clear();
    static const char *const gemms[] = {"auto", "clblast", "packed"};
    for (int i = 0; i < 3; i++) {
        s = try_ctx(NULL, NULL, gemms[i], NULL);
        CHECK(s == NCL_OK, "gemm '%s': %s", gemms[i], ncl_last_error());
    }
    /* kernel variants: an unknown one is refused with the choices */
    setenv("NINCL_KERNELS", "fpga", 1);
    s = try_ctx(NULL, NULL, NULL, NULL);
    CHECK(s == NCL_ERR_ARG && strstr(ncl_last_error(), "fpga") && strstr(ncl_last_error(), "cpu, gpu or measure"),
          "NINCL_KERNELS=fpga: %s: %s", ncl_status_str(s), ncl_last_error());
    static const char *const variants[] = {"auto", "cpu", "gpu", "measure"};
    for (int i = 0; i < 4; i++) {
        setenv("NINCL_KERNELS", variants[i], 1);
        s = try_ctx(NULL, NULL, NULL, NULL);
        CHECK(s == NCL_OK, "NINCL_KERNELS=%s: %s", variants[i], ncl_last_error());
    }
    unsetenv("NINCL_KERNELS");
    /* convolution method: likewise */
    setenv("NINCL_CONV", "fft", 1);
    s = try_ctx(NULL, NULL, NULL, NULL);
    CHECK(s == NCL_ERR_ARG && strstr(ncl_last_error(), "fft") && strstr(ncl_last_error(), "winograd or im2col"),
          "NINCL_CONV=fft: %s: %s", ncl_status_str(s), ncl_last_error());
    static const char *const convs[] = {"auto", "winograd", "im2col"};
    for (int i = 0; i < 3; i++) {
        setenv("NINCL_CONV", convs[i], 1);
        s = try_ctx(NULL, NULL, NULL, NULL);
        CHECK(s == NCL_OK, "NINCL_CONV=%s: %s", convs[i], ncl_last_error());
    }
    unsetenv("NINCL_CONV");
}

/* ---- kernels from a folder ---- */

static char tmp_dir[64];

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int ok = in && out;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out)
        ok &= fclose(out) == 0;
    return ok;
}

/* Copies the .cl files of <source tree>/kernels into tmp_dir; returns the number copied. */
static int copy_kernels(void)
{
    char src_dir[1024];
    snprintf(src_dir, sizeof src_dir, "%s", __FILE__);
    char *slash = strrchr(src_dir, '/');
    if (slash)
        *slash = 0;   /* .../tests */
    else
        snprintf(src_dir, sizeof src_dir, ".");
    strncat(src_dir, "/../kernels", sizeof src_dir - strlen(src_dir) - 1);
    DIR *d = opendir(src_dir);
    CHECK(d != NULL, "cannot open the kernel sources %s", src_dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".cl") != 0)
            continue;
        char from[1400], to[1400];
        snprintf(from, sizeof from, "%s/%s", src_dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", tmp_dir, e->d_name);
        CHECK(copy_file(from, to), "cannot copy %s to %s", from, to);
        n++;
    }
    closedir(d);
    return n;
}

static void remove_tmp(void)
{
    DIR *d = opendir(tmp_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
}

static int append(const char *file, const char *text)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", tmp_dir, file);
    FILE *f = fopen(p, "ab");
    if (!f)
        return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* A context that loads kernels from `dir`, with a 1x9x9 -> 3x3 max-pool graph: returns the
 * status of ncl_graph_reserve (which builds maxpool.cl, loss.cl and sgd.cl). */
static enum ncl_status pool_graph(const char *dir, enum ncl_status *ctx_status)
{
    struct ncl_ctx_params p = {.kernel_dir = dir};
    struct ncl_ctx *ctx = NULL;
    struct ncl_graph *g = NULL;
    enum ncl_status s = ncl_ctx_create(&p, &ctx);
    *ctx_status = s;
    if (s != NCL_OK)
        return s;
    s = ncl_graph_create(ctx, (struct ncl_shape){2, 1, 9, 9}, &g);
    CHECK(s == NCL_OK, "ncl_graph_create: %s", ncl_last_error());
    if (s == NCL_OK) {
        s = ncl_graph_add_maxpool(g, "pool", 0, "MaxPool2d", 3, 3);
        CHECK(s == NCL_OK, "ncl_graph_add_maxpool: %s", ncl_last_error());
    }
    if (s == NCL_OK) {
        s = ncl_graph_reserve(g);
        if (s == NCL_OK) {   /* and it runs */
            float x[2 * 81], y[2 * 9];
            for (int i = 0; i < 2 * 81; i++)
                x[i] = (float)((i * 37) % 101);
            enum ncl_status r = ncl_graph_write_input(g, x, 2);
            if (r == NCL_OK)
                r = ncl_graph_forward(g, 2, NCL_MODE_EVAL, 0);
            if (r == NCL_OK)
                r = ncl_graph_read_output(g, y, 2);
            CHECK(r == NCL_OK, "running the max-pool graph: %s", ncl_last_error());
            int good = r == NCL_OK;
            for (int n = 0; good && n < 2; n++)
                for (int oy = 0; oy < 3; oy++)
                    for (int ox = 0; ox < 3; ox++) {
                        float m = -1;
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++)
                                m = fmaxf(m, x[n * 81 + (oy * 3 + ky) * 9 + ox * 3 + kx]);
                        good &= y[n * 9 + oy * 3 + ox] == m;
                    }
            CHECK(good, "the max-pool graph with kernels from %s computes wrong values", dir);
        }
    }
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    return s;
}

static void test_kernel_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nincl-test-device-XXXXXX");
    CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp failed");
    int n = copy_kernels();
    CHECK(n >= 5, "only %d kernel files copied", n);

    /* the intact copy works */
    enum ncl_status cs, s = pool_graph(tmp_dir, &cs);
    CHECK(s == NCL_OK, "kernels from an intact copy in %s: %s", tmp_dir, ncl_last_error());

    /* a syntax error in maxpool.cl: the message names the file (and folder), the options and
     * carries the compiler's log, which names the undeclared identifier */
    CHECK(append("maxpool.cl", "\n__kernel void broken(__global float *x) { x[0] = nincl_undeclared_name; }\n"),
          "cannot break maxpool.cl");
    s = pool_graph(tmp_dir, &cs);
    const char *msg = ncl_last_error();
    printf("build failure message: %.600s\n", msg);
    CHECK(cs == NCL_OK, "ncl_ctx_create with kernel_dir %s: %s", tmp_dir, msg);
    CHECK(s == NCL_ERR_BUILD, "broken maxpool.cl: %s, want NCL_ERR_BUILD", ncl_status_str(s));
    CHECK(strstr(msg, "maxpool.cl") != NULL, "the message does not name maxpool.cl: %s", msg);
    CHECK(strstr(msg, tmp_dir) != NULL, "the message does not name the kernel folder %s: %s", tmp_dir, msg);
    CHECK(strstr(msg, "options ''") != NULL, "the message does not give the (empty) build options: %s", msg);
    CHECK(strstr(msg, "nincl_undeclared_name") != NULL, "the message lacks the compiler's build log: %s", msg);
    CHECK(strstr(msg, "error") != NULL, "the build log has no 'error': %s", msg);

    /* build options show: the packed GEMM's kernels are built with -D tile sizes */
    CHECK(append("gemm-packed.cl", "\n__kernel void broken2(__global float *x) { x[0] = nincl_undeclared_gemm; }\n"),
          "cannot break gemm-packed.cl");
    {
        struct ncl_ctx_params p = {.kernel_dir = tmp_dir, .gemm = "packed"};
        struct ncl_ctx *ctx = NULL;
        struct ncl_graph *g = NULL;
        s = ncl_ctx_create(&p, &ctx);
        CHECK(s == NCL_OK, "ncl_ctx_create: %s", ncl_last_error());
        if (s == NCL_OK)
            s = ncl_graph_create(ctx, (struct ncl_shape){1, 4, 4, 4}, &g);
        if (s == NCL_OK)
            s = ncl_graph_add_conv(g, "conv", 0, "Conv2d", (struct ncl_conv_params){8, 1, 1, 0, 0});
        /* the GEMM kernels may be built at reserve or on first use */
        if (s == NCL_OK)
            s = ncl_graph_reserve(g);
        if (s == NCL_OK)
            s = ncl_graph_init_params(g, 1);
        if (s == NCL_OK)
            s = ncl_graph_forward(g, 1, NCL_MODE_EVAL, 0);
        if (s == NCL_OK)
            s = ncl_ctx_finish(ctx);
        msg = ncl_last_error();
        CHECK(s == NCL_ERR_BUILD, "broken gemm-packed.cl: %s, want NCL_ERR_BUILD", ncl_status_str(s));
        CHECK(strstr(msg, "gemm-packed.cl") && strstr(msg, "-D") && strstr(msg, "nincl_undeclared_gemm"),
              "the message lacks the file, the -D options or the log: %.600s", msg);
        ncl_graph_free(g);
        ncl_ctx_free(ctx);
    }

    /* a missing folder: an error naming the path (at context creation or when the first
     * kernel is loaded) */
    remove_tmp();
    s = pool_graph(tmp_dir, &cs);
    msg = ncl_last_error();
    printf("missing folder message: %s\n", msg);
    CHECK(s == NCL_ERR_IO || (cs != NCL_OK && s == cs), "missing kernel folder: %s", ncl_status_str(s));
    CHECK(s != NCL_OK && strstr(msg, tmp_dir) != NULL, "the message does not name the folder %s: %s", tmp_dir, msg);

    /* NINCL_KERNEL_DIR is the fallback for kernel_dir */
    setenv("NINCL_KERNEL_DIR", "/nonexistent/nincl-kernels", 1);
    s = pool_graph(NULL, &cs);
    CHECK(s != NCL_OK && strstr(ncl_last_error(), "/nonexistent/nincl-kernels"),
          "NINCL_KERNEL_DIR is not read: %s", ncl_last_error());
    env_clear();
}

int main(void)
{
    env_clear();
    test_list();
    if (ndev >= 1) {
        test_select();
        test_errors();
        test_kernel_dir();
    }
    free(devs);
    return check_done("test-device");
}
