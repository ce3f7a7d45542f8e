/* Device faults end in a message and an exit code, never a crash: a batch far beyond the device's
 * memory names the memory needed and a batch that fits; a loss or weights that turn NaN stop
 * training without writing a poisoned checkpoint (what is left loads and is finite); a kernel
 * that does not compile shows its file, build options and the compiler's log. Runs the real
 * binary ($NINCL_BIN). */
#include "robust.h"

static char data[512];

#define SMALL "--model nin-small --batch 16 --train-limit 64 --test-limit 32"
#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Exit 1 or 2 with a message naming the batch, the memory needed and a smaller batch that
 * fits (smaller than asked). */
static void expect_too_big(const char *name, int batch)
{
    printf("  %-28s exit %d: %s\n", name, rb_last.code, rb_first_line(rb_err));
    CHECK(rb_last.code == 1 || rb_last.code == 2, "%s: exit %d (signal %d), want 1 or 2\n%.2000s", name, rb_last.code,
          rb_last.sig, rb_err);
    CHECK(rb_out[0] == 0, "%s: printed on stdout: %.500s", name, rb_out);
    char want[64];
    snprintf(want, sizeof want, "batch %d needs", batch);
    CHECK(strstr(rb_err, want) && strstr(rb_err, "MiB") && strstr(rb_err, "smaller --batch"),
          "%s: the message lacks the batch, the memory or the advice:\n%s", name, rb_err);
    const char *fits = strstr(rb_err, "about ");
    int n = fits ? atoi(fits + 6) : 0;
    CHECK(n >= 1 && n < batch, "%s: suggests batch %d for a failed batch %d", name, n, batch);
}

static void test_memory(void)
{
    printf("too large for the device:\n");
    const char *out = rb_path("out-big");
    rb_run("train --batch 60000 --resize 224 --epochs 1 --data %s --out %s", data, out);
    expect_too_big("train --batch 60000 (224)", 60000);
    CHECK(!rb_exists(out), "the refused run left %s", out);
    rb_run("train --model nin-small --batch 65536 --epochs 1 --data %s --out %s", data, out);
    expect_too_big("train nin-small --batch 65536", 65536);
    rb_run("bench --batch 60000");
    expect_too_big("bench --batch 60000", 60000);
    rb_run("shapes --batch 60000");
    expect_too_big("shapes --batch 60000", 60000);
    rb_run("eval --checkpoint %s --data %s --batch 65536", rb_path("lr-ok"), data);
    expect_too_big("eval --batch 65536", 65536);
    /* one image alone too large: whatever the advice, a message and exit 1 or 2 */
    rb_run("shapes --model nin-small --input 1x4096x4096");
    printf("  %-28s exit %d: %s\n", "shapes 1x4096x4096", rb_last.code, rb_first_line(rb_err));
    CHECK((rb_last.code == 1 || rb_last.code == 2) && strstr(rb_err, "MiB"), "one 4096x4096 image: exit %d\n%s",
          rb_last.code, rb_err);
}

/* Every checkpoint in dir (if any) is sound and loads with nincl eval. */
static void expect_sound_run(const char *name, const char *dir)
{
    char ckpt[1024];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    if (!rb_exists(ckpt))
        return;
    CHECK(rb_checkpoint_sound(ckpt), "%s: %s", name, ckpt);
    int rc = rb_run("eval --checkpoint %s --data %s", dir, data);
    CHECK(rc == 0 && strstr(rb_out, "test acc"), "%s: eval of the checkpoint left behind: exit %d\n%s", name, rc,
          rb_err);
}

/* No "nan" or "inf" in the numbers of the epoch and summary lines (the device name after " on "
 * and the paths are not looked at). */
static int finite_numbers(const char *out)
{
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "epoch ", 6) && strncmp(line, "loss ", 5))
            continue;
        size_t n = strcspn(line, "\n");
        const char *on = strstr(line, " on ");
        if (on && (size_t)(on - line) < n)
            n = (size_t)(on - line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)n, line);
        if (strstr(buf, "nan") || strstr(buf, "inf"))
            return 0;
    }
    return 1;
}

static void test_divergence(void)
{
    printf("loss or weights turning NaN:\n");
    /* a fresh run that diverges in its first epoch: no checkpoint, and no folder left behind */
    const char *out = rb_path("lr-1e6");
    rb_run("train " SMALL " --epochs 2 --lr 1e6 --progress off --data %s --out %s", data, out);
    rb_expect("train --lr 1e6", 1, 0, 1, NEEDLES("NaN", "smaller --lr", "No checkpoint was saved"));
    CHECK(strstr(rb_err, "the loss became") || strstr(rb_err, "the parameters became"), "lr 1e6: %s", rb_err);
    CHECK(!rb_exists(out), "lr 1e6: a run that saved nothing left %s", out);

    /* larger and larger rates: whatever happens, nothing non-finite is saved or reported */
    static const char *const rates[] = {"10", "100", "1000", "30000"};
    for (int i = 0; i < 4; i++) {
        out = rb_path("lr-%s", rates[i]);
        int rc = rb_run("train " SMALL " --epochs 3 --lr %s --progress off --data %s --out %s", rates[i], data, out);
        char name[64];
        snprintf(name, sizeof name, "train --lr %s", rates[i]);
        printf("  %-28s exit %d: %s\n", name, rc, rc ? rb_first_line(rb_err) : "(finished)");
        CHECK(rc == 0 || rc == 1, "%s: exit %d\n%s", name, rc, rb_err);
        CHECK(rc == 0 || (strstr(rb_err, "smaller --lr") && (strstr(rb_err, "NaN") || strstr(rb_err, "infinite"))),
              "%s: %s", name, rb_err);
        CHECK(finite_numbers(rb_out), "%s printed a non-finite number:\n%s", name, rb_out);
        char csv[1024], text[4096];
        snprintf(csv, sizeof csv, "%s/metrics.csv", out);
        rb_slurp(csv, text, sizeof text);
        CHECK(!strstr(text, "nan") && !strstr(text, "inf"), "%s: metrics.csv holds a non-finite number:\n%s", name,
              text);
        expect_sound_run(name, out);
    }

    /* an epoch done, then divergence: the epoch's checkpoint stays as it was and still loads.
     * The learning rate comes from the checkpoint on --resume, so raise it there. */
    const char *ok = rb_path("lr-ok");
    int rc = rb_run("train " SMALL " --epochs 1 --data %s --out %s", data, ok);
    CHECK(rc == 0, "the 1-epoch run failed: %s", rb_err);
    char ckpt[1024], saved[1100];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", ok);
    const char *div = rb_path("diverge");
    mkdir(div, 0755);
    snprintf(saved, sizeof saved, "%s/checkpoint.safetensors", div);
    struct rb_st_raw raw;
    CHECK(rb_st_parse(ckpt, &raw), "cannot parse %s", ckpt);
    rb_st_set_meta(&raw, "lr", "1000000");
    rb_st_write(saved, raw.header, raw.data, raw.data_len);
    rb_st_free(&raw);
    rb_copy(saved, rb_path("diverge.orig"));
    char opt_from[1100], opt_to[1100];   /* nin-small trains with momentum: its file goes along */
    snprintf(opt_from, sizeof opt_from, "%s/checkpoint.optimizer.safetensors", ok);
    snprintf(opt_to, sizeof opt_to, "%s/checkpoint.optimizer.safetensors", div);
    rb_copy(opt_from, opt_to);
    rb_run("train --resume %s --epochs 3 --progress off --data %s", div, data);
    rb_expect("resume at --lr 1e6", 1, 0, 1,
              NEEDLES("smaller --lr", "The last good checkpoint is", saved, "saved after epoch 1"));
    CHECK(rb_same_file(saved, rb_path("diverge.orig")), "the diverged run changed the last good checkpoint");
    expect_sound_run("resume at --lr 1e6", div);
}

/* A copy of kernels/ with maxpool.cl broken; returns the folder. */
static const char *broken_kernels(void)
{
    const char *dir = rb_path("kernels");
    mkdir(dir, 0755);
    DIR *d = opendir(NINCL_SOURCE_DIR "/kernels");
    CHECK(d != NULL, "no kernels folder at %s", NINCL_SOURCE_DIR "/kernels");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".cl"))
            continue;
        char from[1024], to[1024];
        snprintf(from, sizeof from, "%s/kernels/%s", NINCL_SOURCE_DIR, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        rb_copy(from, to);
        if (!strcmp(e->d_name, "maxpool.cl")) {
            FILE *f = fopen(to, "ab");
            fputs("\n__kernel void robust_broken(void) { int x = nincl_undeclared_identifier; }\n", f);
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return dir;
}

static void test_kernel_build(void)
{
    printf("a kernel that does not compile:\n");
    const char *kd = broken_kernels();
    char pool[1024];
    snprintf(pool, sizeof pool, "%s/maxpool.cl", kd);
    rb_run("shapes --model nin-small --input 1x28x28 --kernel-dir %s", kd);
    rb_expect("shapes, broken maxpool.cl", 1, 0, 0,
              NEEDLES(pool, "MaxPool2d", "with options", "failed", "nincl_undeclared_identifier"));
    const char *out = rb_path("out-kernels");
    rb_run("train " SMALL " --epochs 1 --kernel-dir %s --data %s --out %s", kd, data, out);
    rb_expect("train, broken maxpool.cl", 1, 0, 0, NEEDLES(pool, "with options", "nincl_undeclared_identifier"));
    CHECK(!rb_exists(out), "the failed run left %s", out);
    unlink(pool);
    rb_run("shapes --model nin-small --input 1x28x28 --kernel-dir %s", kd);
    rb_expect("shapes, maxpool.cl missing", 2, 1, 0, NEEDLES(pool, "cannot open kernel file"));
}

int main(int argc, char **argv)
{
    (void)argc;
    double t0 = rb_now();
    rb_setup("test-robust-faults", argv[0]);
    snprintf(data, sizeof data, "%s/data", rb_tmp);
    rb_write_dataset(data, 64, 32, 28, 1);

    test_divergence();
    test_memory();
    test_kernel_build();

    printf("test-robust-faults: %.1f s\n", rb_now() - t0);
    rb_cleanup();
    return check_done("test-robust-faults");
}
