/* Interruption and determinism, through the real binary ($NINCL_BIN):
 *  - two runs with the same seed print the same per-epoch numbers and save bit-identical tensors;
 *  - `--epochs 1` then `--resume --epochs 3` matches an uninterrupted 3-epoch run exactly;
 *  - SIGINT mid-epoch saves a checkpoint, exits 130 saying how to resume, and the resumed run
 *    ends with the same tensors and the same later epochs (the interrupted epoch's loss is
 *    printed next to the uninterrupted one);
 *  - SIGKILL at random moments (seeded: NINCL_ROBUST_SEED, default 1), half of them just as an
 *    epoch's checkpoint is being written: after each kill the checkpoint present loads, no
 *    temporary file sits at its path, and resuming until the end gives the uninterrupted result. */
#include "robust.h"

static char data[512];

/* 6 batches of 16 per epoch, 3 epochs, and a test pass of 32 images after each */
#define RECIPE "--model nin-small --batch 16 --train-limit 96 --test-limit 32 --seed 7 --progress off"
/* 2 batches of 16 per epoch, 8 epochs */
#define KILL_RECIPE "--model nin-small --batch 16 --train-limit 32 --test-limit 16 --seed 3 --epochs 8 --progress off"

static uint64_t rng_state;

static double uniform(void)   /* splitmix64 -> [0, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* metrics.csv's epoch, train_loss, train_acc and test_acc columns, one line per epoch. */
static int read_metrics(const char *dir, char rows[][96], int cap)
{
    char path[1024], text[8192];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    rb_slurp(path, text, sizeof text);
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < cap; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "epoch", 5))
            continue;
        char *p = line;
        for (int commas = 0; *p && !(*p == ',' && ++commas == 4); p++) {
        }
        snprintf(rows[n++], 96, "%.*s", (int)(p - line), line);
    }
    return n;
}

/* The training seconds of an epoch (1-based) in metrics.csv; 0.3 if unknown. */
static double epoch_train_seconds(const char *dir, int epoch)
{
    char path[1024], text[8192];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    rb_slurp(path, text, sizeof text);
    int e = 0;
    double secs = 0.3, v[5];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &e, &v[0], &v[1], &v[2], &v[3], &v[4]) == 6 && e == epoch)
            secs = v[4];
    return secs;
}

/* The loss, train acc and test acc of each epoch in the checkpoint's history (%.17g). */
static int read_history(const char *ckpt, double v[][3], int cap)
{
    char hist[8192];
    rb_meta(ckpt, "history", hist, sizeof hist);
    int n = 0;
    for (char *e = strtok(hist, ";"); e && n < cap; e = strtok(NULL, ";"), n++)
        sscanf(e, "%lf,%lf,%lf", &v[n][0], &v[n][1], &v[n][2]);
    return n;
}

/* Same tensors, same metrics.csv numbers, same history numbers; `skip_loss_epoch` (1-based, 0:
 * none) is an interrupted epoch whose loss may differ in the last bits. */
static void expect_same_run(const char *name, const char *ref, const char *dir, int epochs, int skip_loss_epoch)
{
    char a[1024], b[1024], why[256] = "";
    snprintf(a, sizeof a, "%s/checkpoint.safetensors", ref);
    snprintf(b, sizeof b, "%s/checkpoint.safetensors", dir);
    CHECK(rb_same_tensors(a, b, why, sizeof why), "%s: tensors differ from %s: %s", name, ref, why);
    char ra[16][96], rbuf[16][96];
    int na = read_metrics(ref, ra, 16), nb = read_metrics(dir, rbuf, 16);
    CHECK(na == epochs && nb == epochs, "%s: metrics.csv has %d and %d epochs, want %d", name, na, nb, epochs);
    for (int i = 0; i < na && i < nb; i++) {
        if (i + 1 == skip_loss_epoch) {   /* compare the accuracies only */
            const char *x = strchr(strchr(ra[i], ',') + 1, ','), *y = strchr(strchr(rbuf[i], ',') + 1, ',');
            CHECK(!strcmp(x, y), "%s: epoch %d accuracies: %s vs %s", name, i + 1, ra[i], rbuf[i]);
        } else {
            CHECK(!strcmp(ra[i], rbuf[i]), "%s: metrics.csv epoch %d: %s vs %s", name, i + 1, ra[i], rbuf[i]);
        }
    }
    double ha[16][3], hb[16][3];
    int ka = read_history(a, ha, 16), kb = read_history(b, hb, 16);
    CHECK(ka == epochs && kb == epochs, "%s: history of %d and %d epochs", name, ka, kb);
    for (int i = 0; i < ka && i < kb; i++)
        for (int j = i + 1 == skip_loss_epoch ? 1 : 0; j < 3; j++)
            CHECK(ha[i][j] == hb[i][j], "%s: epoch %d value %d: %.17g vs %.17g", name, i + 1, j, ha[i][j], hb[i][j]);
}

/* Waits until the file holds `text` (or the process ended, or `timeout` passed). */
static int wait_for_text(const char *path, const char *text, pid_t pid, double timeout)
{
    static char buf[1 << 16];
    double t0 = rb_now();
    while (rb_now() - t0 < timeout) {
        rb_slurp(path, buf, sizeof buf);
        if (strstr(buf, text))
            return 1;
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            return 0;   /* it ended (not reaped: rb_wait does that) */
        rb_sleep(0.001);
    }
    return 0;
}

/* Only the files a run writes, temporary ones excepted; none of them may be a directory. */
static void expect_clean_folder(const char *dir, int round)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int tmp = 0;
    while (d && (e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.')
            continue;
        if (strstr(n, ".tmp-")) {
            tmp++;
            continue;
        }
        CHECK(!strcmp(n, "checkpoint.safetensors") || !strcmp(n, "metrics.csv") || !strcmp(n, "curves.svg") ||
                  !strcmp(n, "checkpoint.optimizer.safetensors") ||
                  !strcmp(n, "checkpoint.optimizer.safetensors.pending"),
              "kill %d: unexpected file %s/%s", round, dir, n);
    }
    if (d)
        closedir(d);
    if (tmp)
        printf("    (%d temporary file%s left by the kill)\n", tmp, tmp > 1 ? "s" : "");
}

int main(int argc, char **argv)
{
    (void)argc;
    double t0 = rb_now();
    rb_setup("test-robust-recovery", argv[0]);
    snprintf(data, sizeof data, "%s/data", rb_tmp);
    rb_write_dataset(data, 96, 32, 28, 1);
    const char *env = getenv("NINCL_ROBUST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : 1;
    rng_state = seed;

    /* determinism: the reference run and a second one */
    char ref[512], again[512], split[512], intr[512], kref[512], kd[512];
    snprintf(ref, sizeof ref, "%s/ref", rb_tmp);
    snprintf(again, sizeof again, "%s/again", rb_tmp);
    snprintf(split, sizeof split, "%s/split", rb_tmp);
    snprintf(intr, sizeof intr, "%s/sigint", rb_tmp);
    snprintf(kref, sizeof kref, "%s/kill-ref", rb_tmp);
    snprintf(kd, sizeof kd, "%s/sigkill", rb_tmp);
    int rc = rb_run("train " RECIPE " --epochs 3 --data %s --out %s", data, ref);
    CHECK(rc == 0, "the reference run: exit %d\n%s", rc, rb_err);
    printf("reference run (%.1f s):\n%s", rb_last.seconds, rb_out);
    rc = rb_run("train " RECIPE " --epochs 3 --data %s --out %s", data, again);
    CHECK(rc == 0, "the second run: exit %d\n%s", rc, rb_err);
    expect_same_run("same seed", ref, again, 3, 0);
    {
        double h[16][3];
        char ck[1024];
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", ref);
        int n = read_history(ck, h, 16);
        CHECK(n == 3 && h[2][0] < h[0][0], "the loss did not fall over 3 epochs (%d epochs)", n);
    }

    /* stopped at an epoch boundary, then resumed */
    rc = rb_run("train " RECIPE " --epochs 1 --data %s --out %s", data, split);
    CHECK(rc == 0, "--epochs 1: exit %d\n%s", rc, rb_err);
    rc = rb_run("train --resume %s --epochs 3 --data %s", split, data);
    CHECK(rc == 0 && strstr(rb_out, "(resumed)"), "--resume --epochs 3: exit %d\n%s", rc, rb_err);
    expect_same_run("--epochs 1, then --resume --epochs 3", ref, split, 3, 0);

    /* SIGINT during epoch 2 */
    double start = rb_now();
    pid_t pid = rb_start("train " RECIPE " --epochs 3 --data %s --out %s", data, intr);
    CHECK(wait_for_text(rb_stdout_path, "epoch 1/3:", pid, 60), "the run never finished epoch 1");
    rb_sleep((0.1 + 0.3 * uniform()) * epoch_train_seconds(ref, 2));   /* into epoch 2's steps */
    kill(pid, SIGINT);
    rb_wait(pid, start, 60);
    rb_expect("SIGINT in epoch 2", 130, 0, 1,
              (const char *const[]){"interrupted: checkpoint saved to", intr, "nincl train --resume", NULL});
    char ck[1024], bi[64], ep[64];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", intr);
    rb_checkpoint_sound(ck);
    rb_meta(ck, "batch_index", bi, sizeof bi);
    rb_meta(ck, "epoch", ep, sizeof ep);
    printf("  interrupted at epoch %d, after batch %s of 6\n", atoi(ep) + 1, bi);
    rc = rb_run("eval --checkpoint %s --data %s", intr, data);
    CHECK(rc == 0, "eval of the interrupted run's checkpoint: exit %d\n%s", rc, rb_err);
    rc = rb_run("train --resume %s --data %s", intr, data);
    CHECK(rc == 0, "resuming the interrupted run: exit %d\n%s", rc, rb_err);
    int cut_epoch = atoi(bi) > 0 ? atoi(ep) + 1 : 0;
    expect_same_run("SIGINT, then --resume", ref, intr, 3, cut_epoch);
    if (cut_epoch) {
        double a[16][3], b[16][3];
        char ra[1024];
        snprintf(ra, sizeof ra, "%s/checkpoint.safetensors", ref);
        if (read_history(ra, a, 16) >= cut_epoch && read_history(ck, b, 16) >= cut_epoch) {
            double d = fabs(a[cut_epoch - 1][0] - b[cut_epoch - 1][0]);
            printf("  interrupted epoch %d: loss %.17g, uninterrupted %.17g (difference %.3g, relative %.3g)\n",
                   cut_epoch, b[cut_epoch - 1][0], a[cut_epoch - 1][0], d, d / a[cut_epoch - 1][0]);
            CHECK(d <= 1e-6 * a[cut_epoch - 1][0], "the interrupted epoch's loss is off by %.3g", d);
        }
    }

    /* SIGTERM (what `timeout` sends) is handled as SIGINT */
    char term[512];
    snprintf(term, sizeof term, "%s/sigterm", rb_tmp);
    start = rb_now();
    pid = rb_start("train " KILL_RECIPE " --data %s --out %s", data, term);
    CHECK(wait_for_text(rb_stdout_path, "epoch 2/8:", pid, 60), "the run never finished epoch 2");
    kill(pid, SIGTERM);
    rb_wait(pid, start, 60);
    rb_expect("SIGTERM", 130, 0, 1, (const char *const[]){"interrupted: checkpoint saved to", term, "--resume", NULL});
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", term);
    rb_checkpoint_sound(ck);

    /* SIGKILL at random moments, in a run of 8 short epochs so that each round moves on at
     * most an epoch or two and all six find the run still going */
    start = rb_now();
    rc = rb_run("train " KILL_RECIPE " --data %s --out %s", data, kref);
    CHECK(rc == 0, "the reference run for the kills: exit %d\n%s", rc, rb_err);
    double kill_ref_seconds = rb_last.seconds, epoch_seconds = epoch_train_seconds(kref, 2);
    printf("SIGKILL (seed %llu; an epoch takes about %.0f ms):\n", (unsigned long long)seed, epoch_seconds * 1e3);
    char kck[1024];
    snprintf(kck, sizeof kck, "%s/checkpoint.safetensors", kd);
    int kills = 0, saves_hit = 0;
    for (int round = 0; round < 6; round++) {
        char e[64] = "";
        int done = rb_exists(kck) ? atoi(rb_meta(kck, "epoch", e, sizeof e)) : 0;
        if (done >= 8)
            break;   /* finished already */
        start = rb_now();
        if (rb_exists(kck))
            pid = rb_start("train --resume %s --data %s", kd, data);
        else
            pid = rb_start("train " KILL_RECIPE " --data %s --out %s", data, kd);
        /* round 1, 4: just after an epoch line, while its checkpoint is written; 2, 5: somewhere
         * in the next epoch; 3, 6: anywhere from the start (loading, kernels, training) */
        char when[96], line[32];
        snprintf(line, sizeof line, "epoch %d/8:", done + 1);
        if (round % 3 == 2) {
            double delay = 2 * kill_ref_seconds / 8 * uniform();   /* up to two epochs' share of a run */
            rb_sleep(delay);
            snprintf(when, sizeof when, "anywhere: %.0f ms after the start", delay * 1e3);
        } else {
            int seen = wait_for_text(rb_stdout_path, line, pid, 60);
            double delay = (round % 3 == 0 ? 0.006 : epoch_seconds) * uniform();
            rb_sleep(delay);
            snprintf(when, sizeof when, "%s: %.0f ms after \"%s\"%s", round % 3 == 0 ? "at a save" : "mid-epoch",
                     delay * 1e3, line, seen ? "" : " (not seen)");
            saves_hit += round % 3 == 0 && seen;
        }
        kill(pid, SIGKILL);
        struct rb_result r = rb_wait(pid, start, 60);
        kills += r.sig == SIGKILL;
        char b2[64] = "";
        int have = rb_exists(kck);
        if (have) {
            rb_meta(kck, "epoch", e, sizeof e);
            rb_meta(kck, "batch_index", b2, sizeof b2);
        }
        printf("  kill %d (%s): %s; checkpoint %s%s\n", round + 1, when,
               r.sig == SIGKILL ? "killed" : "had already exited", have ? "after epoch " : "none", have ? e : "");
        CHECK(r.sig == SIGKILL || r.code == 0, "kill %d: exit %d\n%s", round + 1, r.code, rb_err);
        expect_clean_folder(kd, round + 1);
        if (have) {
            rb_checkpoint_sound(kck);
            rc = rb_run("eval --checkpoint %s --data %s", kd, data);
            CHECK(rc == 0, "kill %d: eval of the checkpoint left: exit %d\n%s", round + 1, rc, rb_err);
            CHECK(!strcmp(b2, "0"), "kill %d: a SIGKILL'ed run saved mid-epoch (batch %s)", round + 1, b2);
        }
    }
    CHECK(kills >= 5, "only %d of 6 runs were killed while running", kills);
    /* finish: resume (or start) until the run is done; a finished one only repairs metrics.csv */
    if (rb_exists(kck)) {
        char e[64];
        int finished = atoi(rb_meta(kck, "epoch", e, sizeof e)) >= 8;
        rc = rb_run("train --resume %s --data %s", kd, data);
        CHECK(finished ? rc == 2 : rc == 0, "finishing the killed run: exit %d\n%s", rc, rb_err);
    } else {
        rc = rb_run("train " KILL_RECIPE " --data %s --out %s", data, kd);
        CHECK(rc == 0, "finishing the killed run: exit %d\n%s", rc, rb_err);
    }
    expect_same_run("SIGKILL x6, then --resume", kref, kd, 8, 0);
    printf("  %d kills, %d just after an epoch line; the finished run matches the uninterrupted one\n", kills,
           saves_hit);

    printf("test-robust-recovery: %.1f s\n", rb_now() - t0);
    rb_cleanup();
    return check_done("test-robust-recovery");
}
