/* Helpers shared by the train, eval and bench commands. */
#define _DEFAULT_SOURCE
#include "run-util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flags.h"

const char *const fashion_mnist_classes[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                               "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int load_split(const char *dir, const char *split, int64_t limit, struct ncl_dataset *ds)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "nincl: data folder %s: %s\n", dir, strerror(errno));
        return EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "nincl: data folder %s is not a folder\n", dir);
        return EXIT_USAGE;
    }
    enum ncl_status s = ncl_dataset_load(dir, split, 10, ds);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl: %s\n", ncl_last_error());
        return exit_code_for(s);
    }
    if (limit > 0 && limit < ds->count)
        ds->count = limit;
    return -1;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void epoch_order(uint64_t seed, int epoch, int32_t *order, int64_t count)
{
    uint64_t state = seed * 0x100000001B3ull + (uint64_t)epoch;
    for (int64_t i = 0; i < count; i++)
        order[i] = (int32_t)i;
    for (int64_t i = count - 1; i > 0; i--) {   /* Fisher-Yates */
        int64_t j = (int64_t)(splitmix64(&state) % (uint64_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

enum ncl_status evaluate(struct ncl_graph *g, struct ncl_device_data *d, int64_t count, int batch,
                         int64_t *correct, float *logits)
{
    int32_t *order = malloc((size_t)count * sizeof *order);
    if (!order)
        return NCL_ERR_NO_MEMORY;
    for (int64_t i = 0; i < count; i++)
        order[i] = (int32_t)i;
    int classes = ncl_graph_output_shape(g).c;
    enum ncl_status s = ncl_device_data_set_order(d, order, count);
    if (s == NCL_OK)
        s = ncl_graph_read_metrics(g, NULL, 1);
    for (int64_t first = 0; s == NCL_OK && first < count; first += batch) {
        int n = count - first < batch ? (int)(count - first) : batch;
        s = ncl_graph_load_batch(g, d, first, n);
        if (s == NCL_OK)
            s = ncl_graph_forward(g, n, NCL_MODE_EVAL, 0);
        if (s == NCL_OK)
            s = ncl_graph_loss(g, n);   /* counts correct predictions on the device */
        if (s == NCL_OK)
            s = ncl_ctx_throttle(ncl_graph_ctx(g), 2);
        if (s == NCL_OK && logits)
            s = ncl_graph_read_output(g, logits + first * classes, n);
    }
    struct ncl_metrics m = {0};
    if (s == NCL_OK)
        s = ncl_graph_read_metrics(g, &m, 1);
    if (s == NCL_OK)
        *correct = m.correct;
    free(order);
    return s;
}

int write_file_atomic(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int write_curves_svg(const char *path, int epochs_total, int count, const double *loss, const double *train_acc,
                     const double *test_acc)
{
    const int W = 640, H = 420, L = 60, R = 150, T = 20, B = 50;
    double ymax = 1.0;
    for (int i = 0; i < count; i++)
        if (isfinite(loss[i]) && loss[i] > ymax)
            ymax = ceil(loss[i] * 2) / 2;
    size_t cap = 16384 + (size_t)count * 256;
    char *s = malloc(cap);
    if (!s)
        return -1;
    size_t n = 0;
#define OUT(...) n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__)
    OUT("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
        "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        W, H);
    int pw = W - L - R, ph = H - T - B;
    int xmax = epochs_total > 1 ? epochs_total : 2;
    OUT("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", L, T, pw, ph);
    for (int e = 1; e <= xmax; e++) {
        double x = L + (double)(e - 1) / (xmax - 1) * pw;
        OUT("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
            x, T, x, T + ph, x, T + ph + 16, e);
    }
    for (int k = 0; k <= 5; k++) {
        double v = ymax * k / 5, y = T + ph - v / ymax * ph;
        OUT("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
            L, y, L + pw, y, L - 6, y + 4, v);
    }
    OUT("<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", L + pw / 2, H - 10);
    const double *series[3] = {loss, train_acc, test_acc};
    const char *names[3] = {"train loss", "train acc", "test acc"};
    const char *colors[3] = {"#1f77b4", "#d62728", "#2ca02c"};
    const char *dash[3] = {"", "8,4", "3,3"};
    for (int k = 0; k < 3; k++) {
        OUT("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"%s\" points=\"", colors[k],
            dash[k]);
        for (int i = 0; i < count; i++) {
            double v = isfinite(series[k][i]) ? series[k][i] : ymax;
            OUT("%.1f,%.1f ", L + (double)i / (xmax - 1) * pw, T + ph - (v > ymax ? ymax : v) / ymax * ph);
        }
        OUT("\"/>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\" "
            "stroke-dasharray=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
            L + pw + 10, T + 20 + 20 * k, L + pw + 40, T + 20 + 20 * k, colors[k], dash[k], L + pw + 46,
            T + 24 + 20 * k, names[k]);
    }
    OUT("</svg>\n");
#undef OUT
    int rc = n < cap ? write_file_atomic(path, s, n) : -1;
    free(s);
    return rc;
}
