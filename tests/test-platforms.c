/* Several OpenCL implementations side by side, as on a machine with PoCL, Mesa's Clover and
 * rusticl and a vendor driver installed. The test builds an ICD folder from the machine's real
 * .icd files ($OCL_ICD_VENDORS when it names a folder, else /etc/OpenCL/vendors: with Debian's
 * mesa-opencl-icd that holds Clover, which has no devices without a GPU, and rusticl, which
 * has none unless RUSTICL_ENABLE names one) and adds three that are not right: broken.icd
 * (tests/icd/broken-icd.c: a GPU that refuses a context, and a warning printed on load),
 * gone.icd (a library that is not there) and not-icd.icd (a library that is no ICD). Through
 * the real binary ($NINCL_BIN) with OCL_ICD_VENDORS pointing at that folder:
 *   - `nincl devices` lists every device, the broken GPU included, and exits 0;
 *   - the default device choice (GPUs first) passes over the broken GPU for one that works;
 *   - naming the broken GPU fails with exit 1 and a message naming it and clCreateContext;
 *   - on every working device, `nincl bench` shows profiling times or says that there are none
 *     (JSON null, "n/a" in the table), never 0.00 for all (rusticl 22.3 has none).
 * NCL_BROKEN_ICD is the path of the built broken ICD (tests/CMakeLists.txt). */
#include "robust.h"

#include <glob.h>

static char icd_dir[512];

static void make_icd_set(void)
{
    const char *real = getenv("OCL_ICD_VENDORS");
    struct stat st;
    if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        real = "/etc/OpenCL/vendors";
    snprintf(icd_dir, sizeof icd_dir, "%s", rb_path("vendors"));
    CHECK(mkdir(icd_dir, 0755) == 0, "mkdir %s: %s", icd_dir, strerror(errno));
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/*.icd", real);
    glob_t g;
    int copied = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *base = strrchr(g.gl_pathv[i], '/') + 1;
            rb_copy(g.gl_pathv[i], rb_path("vendors/%s", base));
            printf("  real ICD %s\n", g.gl_pathv[i]);
            copied++;
        }
        globfree(&g);
    }
    CHECK(copied > 0, "no .icd files in %s", real);
    static const char *const extra[][2] = {{"broken.icd", NCL_BROKEN_ICD "\n"},
                                           {"gone.icd", "/nonexistent/libnincl-gone.so\n"},
                                           {"not-icd.icd", "libz.so.1\n"}};
    for (int i = 0; i < 3; i++)
        rb_write_all(rb_path("vendors/%s", extra[i][0]), extra[i][1], strlen(extra[i][1]));
    setenv("OCL_ICD_VENDORS", icd_dir, 1);
}

static void test_devices(void)
{
    rb_run("devices");
    printf("  devices: exit %d, stderr: %s\n", rb_last.code, rb_first_line(rb_err));
    CHECK(rb_last.code == 0, "devices: exit %d\nstdout: %.2000s\nstderr: %.2000s", rb_last.code, rb_out, rb_err);
    CHECK(strstr(rb_out, "nincl broken test GPU") != NULL, "devices does not list the broken GPU:\n%.2000s", rb_out);
    CHECK(strstr(rb_err, "broken-icd: warning") != NULL, "the broken ICD was not loaded (no warning):\n%.1000s",
          rb_err);
    int devices = 0;
    for (const char *p = rb_out; (p = strstr(p, "  device ")); p++)
        devices++;
    CHECK(devices >= 2, "devices lists %d device(s), want the broken GPU and a real one:\n%.2000s", devices, rb_out);

    /* the library's own list, in this process (the loader reads OCL_ICD_VENDORS at first use) */
    struct ncl_device_info *list = NULL;
    int n = 0;
    CHECK(ncl_device_list(&list, &n) == NCL_OK, "ncl_device_list: %s", ncl_last_error());
    CHECK(n == devices, "ncl_device_list gives %d devices, nincl devices %d", n, devices);
    free(list);
}

static void test_default_choice(void)
{
    rb_run("shapes --model nin-small");
    rb_expect("shapes (default device)", 0, 0, 1, NULL);
    CHECK(strstr(rb_out, "Flatten output shape:") != NULL, "shapes printed no table:\n%.2000s", rb_out);
    struct ncl_ctx *ctx = NULL;
    enum ncl_status s = ncl_ctx_create(NULL, &ctx);
    CHECK(s == NCL_OK, "ncl_ctx_create with the broken GPU first: %s", ncl_last_error());
    if (ctx) {
        printf("  default device: %s (%s)\n", ncl_ctx_device(ctx)->name, ncl_ctx_device(ctx)->platform_name);
        CHECK(strstr(ncl_ctx_device(ctx)->name, "broken") == NULL, "the default is the broken GPU");
    }
    ncl_ctx_free(ctx);

    rb_run("shapes --model nin-small --device broken");
    rb_expect("shapes --device broken", 1, 0, 0,
              ((const char *const[]){"nincl broken test GPU", "clCreateContext", "CL_OUT_OF_RESOURCES", NULL}));
}

/* Every per-layer and per-kernel figure a number (summing to more than 0) with
 * "profiling_times": true, or every one null with false; the table likewise, with "n/a". */
static void check_bench_json(const char *name, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    CHECK(root != NULL, "%s: not JSON: %.1000s", name, json);
    if (!root)
        return;
    const cJSON *usable = cJSON_GetObjectItem(root, "profiling_times");
    CHECK(cJSON_IsBool(usable), "%s: no profiling_times", name);
    int want_numbers = cJSON_IsTrue(usable), numbers = 0, nulls = 0;
    double sum = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "layers"))
    {
        const char *keys[2] = {"forward_ms", "backward_ms"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItem(l, keys[k]);
            numbers += cJSON_IsNumber(v);
            nulls += cJSON_IsNull(v);
            sum += cJSON_IsNumber(v) ? v->valuedouble : 0;
        }
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(root, "kernels"))
    {
        const cJSON *v = cJSON_GetObjectItem(k, "ms");
        numbers += cJSON_IsNumber(v);
        nulls += cJSON_IsNull(v);
    }
    printf("  %s: profiling_times %s, %d numbers, %d nulls, layers sum %.3f ms\n", name,
           want_numbers ? "true" : "false", numbers, nulls, sum);
    CHECK(numbers + nulls > 0, "%s: no layer or kernel times", name);
    if (want_numbers)
        CHECK(nulls == 0 && sum > 0, "%s: profiling_times true with %d nulls, sum %.3f", name, nulls, sum);
    else
        CHECK(numbers == 0, "%s: profiling_times false with %d numbers", name, numbers);
    cJSON_Delete(root);
}

static void test_bench_profiling(void)
{
    struct ncl_device_info *list = NULL;
    int n = 0;
    if (ncl_device_list(&list, &n) != NCL_OK)
        return;
    for (int i = 0; i < n; i++) {
        if (strstr(list[i].name, "broken"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "bench on %.100s (%.60s)", list[i].name, list[i].platform_name);
        const char *small = "--model nin-small --batch 2 --resize 16 --steps 1 --warmup 0";
        double t0 = rb_now();
        rb_wait(rb_start("bench %s --platform %d --device %d --json", small, list[i].platform_index,
                         list[i].device_index),
                t0, 300);
        CHECK(rb_last.code == 0, "%s: exit %d\nstderr: %.2000s", name, rb_last.code, rb_err);
        if (rb_last.code == 0)
            check_bench_json(name, rb_out);
        int usable = strstr(rb_out, "\"profiling_times\": true") != NULL;
        t0 = rb_now();
        rb_wait(rb_start("bench %s --platform %d --device %d", small, list[i].platform_index, list[i].device_index),
                t0, 300);
        CHECK(rb_last.code == 0, "%s (text): exit %d\nstderr: %.2000s", name, rb_last.code, rb_err);
        const char *total = strstr(rb_out, "\ntotal ");
        CHECK(total != NULL, "%s: no total line:\n%.3000s", name, rb_out);
        if (total && usable)
            CHECK(!strstr(rb_out, "n/a") && !strstr(rb_out, "unavailable"), "%s: n/a with usable times:\n%.3000s",
                  name, rb_out);
        if (total && !usable)
            CHECK(strstr(rb_out, "per-layer times unavailable") && strstr(rb_out, "per-kernel times unavailable") &&
                      strncmp(total, "\ntotal                                       n/a         n/a", 58) == 0,
                  "%s: times missing but the table does not say so:\n%.3000s", name, rb_out);
    }
    free(list);
}

int main(int argc, char **argv)
{
    (void)argc;
    rb_setup("test-platforms", argv[0]);
    make_icd_set();
    test_devices();
    test_default_choice();
    test_bench_profiling();
    rb_cleanup();
    return check_done("test-platforms");
}
