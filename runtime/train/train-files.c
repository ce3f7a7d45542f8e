/* What a training run writes beside its checkpoint: the per-epoch history as metrics.csv and
 * as curves.svg (loss and accuracies against epoch, like d2l's live plot). */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train-impl.h"

int ncl_history_add(struct ncl_train_history *h, double loss, double train_acc, double test_acc, double speed,
                    double seconds)
{
    double **cols[5] = {&h->loss, &h->train_acc, &h->test_acc, &h->speed, &h->seconds};
    double vals[5] = {loss, train_acc, test_acc, speed, seconds};
    for (int i = 0; i < 5; i++) {
        double *p = realloc(*cols[i], (size_t)(h->count + 1) * sizeof *p);
        if (!p)
            return -1;
        p[h->count] = vals[i];
        *cols[i] = p;
    }
    h->count++;
    return 0;
}

void ncl_history_free(struct ncl_train_history *h)
{
    free(h->loss);
    free(h->train_acc);
    free(h->test_acc);
    free(h->speed);
    free(h->seconds);
    memset(h, 0, sizeof *h);
}

char *ncl_history_encode(const struct ncl_train_history *h)
{
    size_t cap = 32 + (size_t)h->count * 5 * 26;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = 0;
    s[0] = 0;
    for (int i = 0; i < h->count; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%.17g,%.17g,%.17g,%.17g,%.17g", i ? ";" : "", h->loss[i],
                              h->train_acc[i], h->test_acc[i], h->speed[i], h->seconds[i]);
    return s;
}

int ncl_history_decode(const char *s, struct ncl_train_history *h)
{
    while (s && *s) {
        double v[5];
        int used = 0;
        if (sscanf(s, "%lf,%lf,%lf,%lf,%lf%n", &v[0], &v[1], &v[2], &v[3], &v[4], &used) != 5)
            return -1;
        if (ncl_history_add(h, v[0], v[1], v[2], v[3], v[4]))
            return -1;
        s += used;
        if (*s == ';')
            s++;
    }
    return 0;
}

static int write_curves_svg(const char *path, int epochs_total, int count, const double *loss, const double *train_acc,
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
    int rc = n < cap ? ncl_write_file_atomic(path, s, n) : -1;
    free(s);
    return rc;
}

int ncl_history_write_files(const char *dir, const struct ncl_train_history *h, int epochs_total)
{
    size_t cap = 128 + (size_t)h->count * 128;
    char *csv = malloc(cap), path[4200];
    if (!csv)
        return -1;
    size_t n = (size_t)snprintf(csv, cap, "epoch,train_loss,train_acc,test_acc,examples_per_sec,train_seconds\n");
    for (int i = 0; i < h->count; i++)
        n += (size_t)snprintf(csv + n, cap - n, "%d,%.6f,%.6f,%.6f,%.1f,%.3f\n", i + 1, h->loss[i], h->train_acc[i],
                              h->test_acc[i], h->speed[i], h->seconds[i]);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    int rc = ncl_write_file_atomic(path, csv, n);
    free(csv);
    snprintf(path, sizeof path, "%s/curves.svg", dir);
    return rc | write_curves_svg(path, epochs_total, h->count, h->loss, h->train_acc, h->test_acc);
}
