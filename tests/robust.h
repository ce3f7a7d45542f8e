/* Helpers shared by tests/test-robust-*.c: run the real nincl binary ($NINCL_BIN, set by ctest)
 * with fork + exec and a time limit, capture stdout and stderr apart, tell an exit from a death
 * by signal; write small Fashion-MNIST-like IDX data sets; read, edit and compare checkpoints.
 * Every case prints one line "case: exit N: <first stderr line>" so the test log records what
 * the program said for each bad input. */
#ifndef NCL_ROBUST_H
#define NCL_ROBUST_H

#define _DEFAULT_SOURCE
#include "check.h"
#include "nincl.h"
#include "remove-tree.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char rb_bin[1024], rb_tmp[256], rb_stdout_path[300], rb_stderr_path[300];
static char rb_out[1 << 16], rb_err[1 << 16];

struct rb_result {
    int code;       /* exit status, or -1 when killed by a signal */
    int sig;        /* the signal that ended it, or 0 */
    int timed_out;
    double seconds;
};
static struct rb_result rb_last;

static inline double rb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void rb_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void rb_slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

static inline int rb_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static inline long rb_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The whole file, malloc'ed; *len its size. NULL if it cannot be read. */
static inline unsigned char *rb_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline void rb_write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s: %s", path, strerror(errno));
    if (!f)
        return;
    CHECK(fwrite(data, 1, len, f) == len, "cannot write %s", path);
    fclose(f);
}

static inline void rb_copy(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = rb_read_all(from, &n);
    CHECK(b != NULL, "cannot read %s", from);
    if (b)
        rb_write_all(to, b, n);
    free(b);
}

/* The first occurrence of needle (n bytes) in hay (len bytes), or NULL. */
static inline unsigned char *rb_find(unsigned char *hay, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

static inline int rb_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = rb_read_all(a, &na), *y = rb_read_all(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* "<tmp>/<name>" in a static ring of 64 buffers, for building paths inline (copy one that must
 * live longer). */
static inline const char *rb_path(const char *fmt, ...)
{
    static char ring[64][1024];
    static int next;
    char *p = ring[next++ % 64];
    int n = snprintf(p, 1024, "%s/", rb_tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p + n, 1024 - (size_t)n, fmt, ap);
    va_end(ap);
    return p;
}

/* Splits args (words separated by single spaces; paths here never hold one) into argv after
 * the binary. */
static inline int rb_argv(char *args, char **argv, int cap)
{
    int n = 0;
    argv[n++] = rb_bin;
    for (char *t = strtok(args, " "); t && n < cap - 1; t = strtok(NULL, " "))
        argv[n++] = t;
    argv[n] = NULL;
    return n;
}

/* Starts `nincl <args>` with stdout and stderr going to <tmp>/stdout and <tmp>/stderr. */
static inline pid_t rb_spawn(const char *fmt, va_list ap)
{
    static char args[8192];
    char *argv[128];
    vsnprintf(args, sizeof args, fmt, ap);
    rb_argv(args, argv, 128);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int o = open(rb_stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(rb_stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit(125);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(rb_bin, argv);
        _exit(126);
    }
    CHECK(pid > 0, "fork failed: %s", strerror(errno));
    return pid;
}

static inline pid_t rb_start(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pid_t pid = rb_spawn(fmt, ap);
    va_end(ap);
    return pid;
}

/* Waits for pid up to `timeout` seconds (then kills it and says so), fills rb_last, rb_out and
 * rb_err. */
static inline struct rb_result rb_wait(pid_t pid, double t0, double timeout)
{
    struct rb_result r = {-1, 0, 0, 0};
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st = -1;
            break;
        }
        if (rb_now() - t0 > timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            r.timed_out = 1;
            break;
        }
        rb_sleep(0.002);
    }
    r.seconds = rb_now() - t0;
    if (st != -1 && WIFEXITED(st))
        r.code = WEXITSTATUS(st);
    else if (st != -1 && WIFSIGNALED(st))
        r.sig = WTERMSIG(st);
    rb_slurp(rb_stdout_path, rb_out, sizeof rb_out);
    rb_slurp(rb_stderr_path, rb_err, sizeof rb_err);
    CHECK(!r.timed_out, "nincl ran past its %.0f s limit\nstderr: %.1000s", timeout, rb_err);
    CHECK(r.sig == 0 || r.sig == SIGKILL || r.sig == SIGINT, "nincl died of signal %d (%s)\nstderr: %.2000s", r.sig,
          strsignal(r.sig), rb_err);
    rb_last = r;
    return r;
}

/* Runs `nincl <args>` to the end (at most 60 s); returns the exit code, -1 after a signal. */
static inline int rb_run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    double t0 = rb_now();
    pid_t pid = rb_spawn(fmt, ap);
    va_end(ap);
    return rb_wait(pid, t0, 60).code;
}

/* The message line of stderr for the log: the first that starts with "nincl" or "interrupted"
 * (progress lines and compiler logs come around it), else the first. */
static inline const char *rb_first_line(const char *s)
{
    static char line[1024];
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, "nincl", 5) || !strncmp(p, "interrupted", 11)) {
            s = p;
            break;
        }
    while (*s == '\n')
        s++;
    size_t n = strcspn(s, "\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, s, n);
    line[n] = 0;
    return line;
}

static inline int rb_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Checks the last run: exit code `code`, nothing on stdout (unless stdout_ok), and stderr
 * holding every needle (a NULL-terminated list); `one_line` asks for a single line. Logs the
 * case. */
static inline void rb_expect(const char *name, int code, int one_line, int stdout_ok, const char *const *needles)
{
    printf("  %-28s exit %d: %s\n", name, rb_last.code, rb_first_line(rb_err));
    CHECK(rb_last.code == code, "%s: exit %d (signal %d), want %d\nstdout: %.1000s\nstderr: %.2000s", name,
          rb_last.code, rb_last.sig, code, rb_out, rb_err);
    CHECK(stdout_ok || rb_out[0] == 0, "%s: printed on stdout: %.1000s", name, rb_out);
    CHECK(!one_line || rb_count_lines(rb_err) == 1, "%s: want one line on stderr, got:\n%.2000s", name, rb_err);
    for (int i = 0; needles && needles[i]; i++)
        CHECK(strstr(rb_err, needles[i]) != NULL, "%s: the message lacks \"%s\":\n%.2000s", name, needles[i], rb_err);
}

/* ---- data sets ----------------------------------------------------------------------------- */

static inline void rb_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void rb_write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL, "gzopen %s failed", path);
    if (!g)
        return;
    CHECK(gzwrite(g, data, (unsigned)len) == (int)len, "gzwrite %s failed", path);
    gzclose(g);
}

/* A learnable stand-in for Fashion-MNIST: class y is a bright band at rows 2y+4..2y+5 over
 * seeded noise. Writes <dir>/<split>-images-idx3-ubyte and -labels-idx1-ubyte (".gz" appended
 * and compressed when gz). */
static inline void rb_write_split(const char *dir, const char *split, int count, int side, int gz, uint32_t seed)
{
    size_t ilen = 16 + (size_t)count * side * side, llen = 8 + (size_t)count;
    unsigned char *img = malloc(ilen), *lab = malloc(llen);
    rb_be32(img, 0x803);
    rb_be32(img + 4, (uint32_t)count);
    rb_be32(img + 8, (uint32_t)side);
    rb_be32(img + 12, (uint32_t)side);
    rb_be32(lab, 0x801);
    rb_be32(lab + 4, (uint32_t)count);
    uint32_t s = seed * 2654435761u + 1;
    for (int i = 0; i < count; i++) {
        int y = (int)((i * 7 + (s >> 28)) % 10);
        lab[8 + i] = (unsigned char)y;
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++) {
                s = s * 1664525u + 1013904223u;
                int v = (int)(s >> 26);   /* 0..63 */
                if (r * 28 / side / 2 == y + 2)
                    v += 180;
                img[16 + ((size_t)i * side + r) * side + c] = (unsigned char)v;
            }
    }
    char p[1024];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, split, gz ? ".gz" : "");
    gz ? rb_write_gz(p, img, ilen) : rb_write_all(p, img, ilen);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, split, gz ? ".gz" : "");
    gz ? rb_write_gz(p, lab, llen) : rb_write_all(p, lab, llen);
    free(img);
    free(lab);
}

/* A folder holding a valid data set: `ntrain` + `ntest` images of side x side. */
static inline void rb_write_dataset(const char *dir, int ntrain, int ntest, int side, int gz)
{
    mkdir(dir, 0755);
    rb_write_split(dir, "train", ntrain, side, gz, 1);
    rb_write_split(dir, "t10k", ntest, side, gz, 2);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* Every tensor of a safetensors file finite; names the first that is not. */
static inline int rb_all_finite(const struct ncl_st_file *f, char *bad, size_t cap)
{
    for (int i = 0; i < f->count; i++) {
        size_t n = 1;
        for (int d = 0; d < f->tensors[i].ndim; d++)
            n *= (size_t)f->tensors[i].dims[d];
        for (size_t k = 0; k < n; k++)
            if (!isfinite(f->tensors[i].data[k])) {
                snprintf(bad, cap, "%s[%zu] = %g", f->tensors[i].name, k, f->tensors[i].data[k]);
                return 0;
            }
    }
    return 1;
}

/* The checkpoint at path reads (in this process, with the runtime's reader) and holds only
 * finite numbers. */
static inline int rb_checkpoint_sound(const char *path)
{
    struct ncl_st_file f = {0};
    enum ncl_status s = ncl_st_read(path, &f);
    CHECK(s == NCL_OK, "%s does not read: %s", path, ncl_last_error());
    char bad[160] = "";
    int ok = s == NCL_OK && rb_all_finite(&f, bad, sizeof bad);
    CHECK(s != NCL_OK || ok, "%s holds a non-finite value: %s", path, bad);
    ncl_st_free(&f);
    return ok;
}

/* Same tensor names, shapes and bits. */
static inline int rb_same_tensors(const char *a, const char *b, char *why, size_t cap)
{
    struct ncl_st_file x = {0}, y = {0};
    int same = 0;
    if (ncl_st_read(a, &x) != NCL_OK || ncl_st_read(b, &y) != NCL_OK) {
        snprintf(why, cap, "cannot read: %s", ncl_last_error());
        goto out;
    }
    if (x.count != y.count) {
        snprintf(why, cap, "%d vs %d tensors", x.count, y.count);
        goto out;
    }
    for (int i = 0; i < x.count; i++) {
        const struct ncl_st_tensor *t = &x.tensors[i], *u = ncl_st_find(&y, t->name);
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= (size_t)t->dims[d];
        if (!u || u->ndim != t->ndim || memcmp(u->dims, t->dims, sizeof t->dims[0] * (size_t)t->ndim) != 0) {
            snprintf(why, cap, "tensor %s missing or of another shape", t->name);
            goto out;
        }
        if (memcmp(t->data, u->data, n * sizeof(float)) != 0) {
            size_t k = 0;
            while (k < n && memcmp(&t->data[k], &u->data[k], sizeof(float)) == 0)
                k++;
            snprintf(why, cap, "tensor %s differs first at element %zu: %.9g vs %.9g", t->name, k, t->data[k],
                     u->data[k]);
            goto out;
        }
    }
    same = 1;
out:
    ncl_st_free(&x);
    ncl_st_free(&y);
    return same;
}

/* A metadata value of a checkpoint, copied into buf ("" when absent or unreadable). */
static inline const char *rb_meta(const char *path, const char *key, char *buf, size_t cap)
{
    struct ncl_st_file f = {0};
    buf[0] = 0;
    if (ncl_st_read(path, &f) == NCL_OK) {
        const char *v = ncl_st_meta(&f, key);
        snprintf(buf, cap, "%s", v ? v : "");
    }
    ncl_st_free(&f);
    return buf;
}

/* The file's header as cJSON and its data buffer. */
struct rb_st_raw {
    cJSON *header;
    unsigned char *data;
    size_t data_len;
};

static inline int rb_st_parse(const char *path, struct rb_st_raw *raw)
{
    size_t len;
    unsigned char *b = rb_read_all(path, &len);
    memset(raw, 0, sizeof *raw);
    if (!b || len < 8) {
        free(b);
        return 0;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    raw->header = cJSON_ParseWithLength((const char *)b + 8, (size_t)n);
    raw->data_len = len - 8 - (size_t)n;
    raw->data = malloc(raw->data_len ? raw->data_len : 1);
    memcpy(raw->data, b + 8 + n, raw->data_len);
    free(b);
    return raw->header != NULL;
}

/* Writes header (padded with spaces to 8 bytes) and data as a safetensors file. */
static inline void rb_st_write(const char *path, const cJSON *header, const unsigned char *data, size_t data_len)
{
    char *text = cJSON_PrintUnformatted(header);
    size_t n = strlen(text), pad = (8 - n % 8) % 8;
    size_t total = 8 + n + pad + data_len;
    unsigned char *b = malloc(total);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)(n + pad) >> (8 * i));
    memcpy(b + 8, text, n);
    memset(b + 8 + n, ' ', pad);
    memcpy(b + 8 + n + pad, data, data_len);
    rb_write_all(path, b, total);
    free(b);
    cJSON_free(text);
}

static inline void rb_st_free(struct rb_st_raw *raw)
{
    cJSON_Delete(raw->header);
    free(raw->data);
}

/* Sets a metadata key of the header (adds it when absent). */
static inline void rb_st_set_meta(struct rb_st_raw *raw, const char *key, const char *value)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(raw->header, "__metadata__");
    if (cJSON_GetObjectItemCaseSensitive(meta, key))
        cJSON_ReplaceItemInObjectCaseSensitive(meta, key, cJSON_CreateString(value));
    else
        cJSON_AddStringToObject(meta, key, value);
}

/* ---- setup --------------------------------------------------------------------------------- */

static inline void rb_setup(const char *name, const char *argv0)
{
    check_nincl_binary(rb_bin, sizeof rb_bin, argv0);
    if (access(rb_bin, X_OK) != 0) {
        fprintf(stderr, "%s: no nincl binary at %s (set NINCL_BIN)\n", name, rb_bin);
        exit(1);
    }
    snprintf(rb_tmp, sizeof rb_tmp, "/tmp/nincl-%s-XXXXXX", name);
    if (!mkdtemp(rb_tmp)) {
        fprintf(stderr, "%s: mkdtemp failed: %s\n", name, strerror(errno));
        exit(1);
    }
    snprintf(rb_stdout_path, sizeof rb_stdout_path, "%s/stdout", rb_tmp);
    snprintf(rb_stderr_path, sizeof rb_stderr_path, "%s/stderr", rb_tmp);
    /* the user's device selection must not leak into the runs */
    unsetenv("NINCL_PLATFORM");
    unsetenv("NINCL_DEVICE");
    unsetenv("NINCL_KERNEL_DIR");
    unsetenv("NINCL_GEMM");
    printf("%s: binary %s, scratch %s\n", name, rb_bin, rb_tmp);
}

/* Removes the scratch folder unless something failed (then it stays for a look). */
static inline void rb_cleanup(void)
{
    if (check_failed == 0)
        remove_tree(rb_tmp);
    else
        printf("scratch folder kept: %s\n", rb_tmp);
}

#endif
