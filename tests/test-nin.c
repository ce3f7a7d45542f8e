/* The whole d2l NiN at 224x224 on batch 2, on whatever OpenCL device is present:
 * (a) per-layer output shapes equal the reference table of nin-reference.md;
 * (b) a seeded training-mode forward is finite, bit-identical across two graphs built and
 *     initialised with the same seed, and different with another seed (init or dropout);
 * (c) backward's gradients of the mean cross-entropy agree with central finite differences
 *     for a sample of entries of every one of the 24 parameter tensors;
 * (d) a few SGD steps at lr 0.1 on one fixed batch lower its loss. */
#include "check.h"
#include "nincl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 2
#define CLASSES 10
#define SEED 7
#define STEP 3

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x1234567ull;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static float input[BATCH * 224 * 224];
static const int32_t labels[BATCH] = {3, 8};

/* Two different "images" in [0, 1] like ToTensor's: a noisy bright blob and a noisy stripe
 * pattern, so the two examples give different activations. */
static void make_input(void)
{
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++) {
            double dx = (x - 100) / 60.0, dy = (y - 120) / 80.0;
            double blob = exp(-(dx * dx + dy * dy));
            double stripes = 0.5 + 0.5 * sin(x * 0.15 + y * 0.05);
            input[y * 224 + x] = (float)(0.7 * blob + 0.3 * rng_uniform());
            input[224 * 224 + y * 224 + x] = (float)(0.6 * stripes + 0.4 * rng_uniform());
        }
}

#define OK(call)                                                                           \
    do {                                                                                   \
        enum ncl_status s_ = (call);                                                       \
        CHECK(s_ == NCL_OK, "%s: %s: %s", #call, ncl_status_str(s_), ncl_last_error());    \
        if (s_ != NCL_OK)                                                                  \
            return s_;                                                                     \
    } while (0)

/* One forward (train mode at `step`, or eval) and the loss. *loss is the mean cross-entropy
 * as the device sums it (ncl_graph_loss, float); *host_loss, if asked for, the same
 * recomputed in double from the logits, which the finite differences need: the float sum
 * quantises the loss to 2.4e-7. The two must agree to float accuracy. */
static enum ncl_status run_loss(struct ncl_graph *g, enum ncl_mode mode, uint64_t step, double *loss,
                                double *host_loss)
{
    struct ncl_metrics m;
    OK(ncl_graph_read_metrics(g, NULL, 1));
    OK(ncl_graph_forward(g, BATCH, mode, step));
    OK(ncl_graph_loss(g, BATCH));
    OK(ncl_graph_read_metrics(g, &m, 1));
    CHECK(m.count == BATCH, "metrics count %lld after one batch of %d", (long long)m.count, BATCH);
    *loss = m.loss_sum / (double)m.count;
    if (host_loss) {
        float out[BATCH * CLASSES];
        OK(ncl_graph_read_output(g, out, BATCH));
        double sum = 0;
        for (int n = 0; n < BATCH; n++) {
            const float *z = out + n * CLASSES;
            double mx = z[0], se = 0;
            for (int c = 1; c < CLASSES; c++)
                mx = fmax(mx, z[c]);
            for (int c = 0; c < CLASSES; c++)
                se += exp(z[c] - mx);
            sum += mx + log(se) - z[labels[n]];
        }
        *host_loss = sum / BATCH;
        CHECK(fabs(*host_loss - *loss) <= 1e-5 * (1 + *host_loss), "device loss %.9g, host loss from the logits %.9g",
              *loss, *host_loss);
    }
    return NCL_OK;
}

static enum ncl_status train_loss(struct ncl_graph *g, uint64_t step, double *loss)
{
    double host;
    return run_loss(g, NCL_MODE_TRAIN, step, loss, &host);
}

static enum ncl_status build(struct ncl_ctx *ctx, uint64_t seed, struct ncl_graph **g)
{
    OK(ncl_model_build(ctx, "nin", (struct ncl_shape){BATCH, 1, 224, 224}, g));
    OK(ncl_graph_init_params(*g, seed));
    ncl_graph_set_seed(*g, seed);
    OK(ncl_graph_write_input(*g, input, BATCH));
    OK(ncl_graph_write_labels(*g, labels, BATCH));
    return NCL_OK;
}

/* (a) The reference table, one line per top-level module (batch 1 in the reference; the
 * layer info is per image). */
static const struct {
    const char *group;
    int c, h, w, flat;
} ref_shapes[10] = {
    {"Sequential", 96, 54, 54, 0},       {"MaxPool2d", 96, 26, 26, 0}, {"Sequential", 256, 26, 26, 0},
    {"MaxPool2d", 256, 12, 12, 0},       {"Sequential", 384, 12, 12, 0}, {"MaxPool2d", 384, 5, 5, 0},
    {"Dropout", 384, 5, 5, 0},           {"Sequential", 10, 5, 5, 0},  {"AdaptiveAvgPool2d", 10, 1, 1, 0},
    {"Flatten", 10, 1, 1, 1},
};

static void test_shapes(struct ncl_graph *g)
{
    int n = ncl_graph_layer_count(g), printed = 0;
    CHECK(n == 18, "layer count %d, want 18 (12 convs, 3 pools, dropout, avgpool, flatten)", n);
    for (int i = 0; i < n; i++) {
        struct ncl_layer_info info, next;
        ncl_graph_layer_info(g, i, &info);
        if (i + 1 < n) {
            ncl_graph_layer_info(g, i + 1, &next);
            if (next.group == info.group)
                continue;
        }
        if (printed >= 10) {
            printed++;
            continue;
        }
        int k = printed++;
        CHECK(strcmp(info.group_name, ref_shapes[k].group) == 0, "module %d is %s, want %s", k, info.group_name,
              ref_shapes[k].group);
        CHECK(info.out.n == 1 && info.out.c == ref_shapes[k].c && info.out.h == ref_shapes[k].h &&
                  info.out.w == ref_shapes[k].w,
              "module %d (%s, layer %s): %dx%dx%dx%d, want 1x%dx%dx%d", k, info.group_name, info.name, info.out.n,
              info.out.c, info.out.h, info.out.w, ref_shapes[k].c, ref_shapes[k].h, ref_shapes[k].w);
        if (ref_shapes[k].flat)
            CHECK(strcmp(info.kind, "Flatten") == 0, "the last module is a %s, want Flatten", info.kind);
    }
    CHECK(printed == 10, "%d printed modules, want 10", printed);
    struct ncl_shape out = ncl_graph_output_shape(g);
    CHECK(out.n == BATCH && out.c == CLASSES && out.h == 1 && out.w == 1, "graph output %dx%dx%dx%d", out.n, out.c,
          out.h, out.w);

    /* the 24 parameters, named and shaped as the PyTorch state_dict */
    static const struct {
        const char *name;
        int ndim;
        int64_t d[4];
    } ref_params[24] = {
        {"0.0.weight", 4, {96, 1, 11, 11}}, {"0.0.bias", 1, {96}},   {"0.2.weight", 4, {96, 96, 1, 1}},
        {"0.2.bias", 1, {96}},              {"0.4.weight", 4, {96, 96, 1, 1}}, {"0.4.bias", 1, {96}},
        {"2.0.weight", 4, {256, 96, 5, 5}}, {"2.0.bias", 1, {256}},  {"2.2.weight", 4, {256, 256, 1, 1}},
        {"2.2.bias", 1, {256}},             {"2.4.weight", 4, {256, 256, 1, 1}}, {"2.4.bias", 1, {256}},
        {"4.0.weight", 4, {384, 256, 3, 3}}, {"4.0.bias", 1, {384}}, {"4.2.weight", 4, {384, 384, 1, 1}},
        {"4.2.bias", 1, {384}},             {"4.4.weight", 4, {384, 384, 1, 1}}, {"4.4.bias", 1, {384}},
        {"7.0.weight", 4, {10, 384, 3, 3}}, {"7.0.bias", 1, {10}},   {"7.2.weight", 4, {10, 10, 1, 1}},
        {"7.2.bias", 1, {10}},              {"7.4.weight", 4, {10, 10, 1, 1}}, {"7.4.bias", 1, {10}},
    };
    int np = ncl_graph_param_count(g);
    CHECK(np == 24, "%d parameter tensors, want 24", np);
    for (int i = 0; i < np && i < 24; i++) {
        struct ncl_param_info pi;
        ncl_graph_param_info(g, i, &pi);
        int same = strcmp(pi.name, ref_params[i].name) == 0 && pi.ndim == ref_params[i].ndim;
        size_t count = 1;
        for (int d = 0; same && d < pi.ndim; d++) {
            same = pi.dims[d] == ref_params[i].d[d];
            count *= (size_t)ref_params[i].d[d];
        }
        CHECK(same && pi.count == count, "parameter %d is %s (%d dims, %zu values), want %s", i, pi.name, pi.ndim,
              pi.count, ref_params[i].name);
    }
}

/* (b) */
static enum ncl_status test_forward(struct ncl_graph *g1, struct ncl_graph *g2)
{
    float out1[BATCH * CLASSES], out2[BATCH * CLASSES], out3[BATCH * CLASSES];
    double l1, l2, l3;
    OK(train_loss(g1, STEP, &l1));
    OK(ncl_graph_read_output(g1, out1, BATCH));
    OK(train_loss(g2, STEP, &l2));
    OK(ncl_graph_read_output(g2, out2, BATCH));
    int finite = 1, nonzero = 0;
    for (int i = 0; i < BATCH * CLASSES; i++) {
        finite &= isfinite(out1[i]);
        nonzero += out1[i] != 0.0f;
    }
    CHECK(finite && isfinite(l1), "the forward gives non-finite values (loss %g)", l1);
    CHECK(nonzero > 0, "every logit is zero: the comparisons below would prove nothing");
    CHECK(memcmp(out1, out2, sizeof out1) == 0, "two graphs with seed %d give different outputs", SEED);
    CHECK(l1 == l2, "two graphs with seed %d give losses %.9g and %.9g", SEED, l1, l2);
    printf("forward: loss %.6f, logits of image 0:", l1);
    for (int i = 0; i < CLASSES; i++)
        printf(" %.4g", out1[i]);
    printf("\n");

    /* another dropout seed (same parameters): different masks, different output */
    ncl_graph_set_seed(g2, SEED + 1);
    OK(train_loss(g2, STEP, &l3));
    OK(ncl_graph_read_output(g2, out3, BATCH));
    CHECK(memcmp(out1, out3, sizeof out1) != 0, "dropout seed %d gives the same output as %d", SEED + 1, SEED);
    /* another step: other masks too */
    ncl_graph_set_seed(g2, SEED);
    OK(train_loss(g2, STEP + 1, &l3));
    OK(ncl_graph_read_output(g2, out3, BATCH));
    CHECK(memcmp(out1, out3, sizeof out1) != 0, "step %d gives the same output as step %d", STEP + 1, STEP);
    /* another initialisation seed: other parameters */
    OK(ncl_graph_init_params(g2, SEED + 1));
    OK(train_loss(g2, STEP, &l3));
    OK(ncl_graph_read_output(g2, out3, BATCH));
    CHECK(memcmp(out1, out3, sizeof out1) != 0, "init seed %d gives the same output as %d", SEED + 1, SEED);
    CHECK(l3 != l1, "init seed %d gives the same loss as %d", SEED + 1, SEED);
    return NCL_OK;
}

/* (c) Finite differences in float32 through 18 layers with ReLU and max-pool kinks.
 * Two error sources bound what can be asked:
 * - rounding noise: the logits are float32, so L(w + eps) - L(w - eps) carries an error of a
 *   few 1e-8 whatever eps is (measured here: |fd - analytic| <= ~2.5e-8 / eps on entries with
 *   tiny gradients, for eps from 3e-4 to 1e-2). The loss is recomputed in double on the host
 *   from the logits: the device's float loss sum alone would quantise differences to 2.4e-7.
 * - kinks: a ReLU input or a max-pool argmax that switches within +-eps makes the central
 *   difference an average slope instead of the derivative; the error grows with eps and is
 *   worst for biases, which shift every pixel of a channel (measured: 4-9% at eps = 1e-2).
 * So each entry gets its own eps: as small as keeps the noise term (NOISE / eps) at 1% of its
 * gradient, eps = NOISE / (0.01 |g|), within [1e-4, 1e-2], and the tolerance is
 *   |fd - g| <= NOISE / eps + FD_RTOL |g|       (NOISE = 5e-8, twice the worst measured)
 * FD_RTOL = 3% covers the remaining kink error of the largest-gradient entries (worst seen
 * 2.4%, err/tol 0.6) while a 5% error in an analytic gradient is still caught: scaling every
 * analytic gradient by 1.05 (by hand, then removed) failed 45 of the 48 top entries, in 23 of
 * the 24 tensors (0.0.weight's FD sits 1.5% high, towards the scaled value). Random
 * entries, which may sit on a kink without a large gradient to dwarf it, are held to the same
 * rule plus FD_RTOL_MAX of the tensor's largest gradient: that still catches a gradient put on
 * the wrong element, dropped, or invented where the loss does not depend on the entry. */
#define FD_TOP 2            /* entries with the largest |gradient| per tensor */
#define FD_RANDOM 2         /* plus a random entry and a random one with a nonzero gradient */
/* NINCL_TEST_NIN_ENTRIES=1..4 checks fewer entries per tensor (the top ones first): on a slow
 * implementation (rusticl, 1.5 s a forward here) every tensor is still checked at 224x224 */
static int fd_top = FD_TOP, fd_random = FD_RANDOM;
#define FD_NOISE 5e-8
#define FD_RTOL 0.03
#define FD_RTOL_MAX 0.05

static enum ncl_status test_gradients(struct ncl_graph *g)
{
    int np = ncl_graph_param_count(g);
    double l0;
    OK(ncl_graph_zero_grads(g));
    OK(train_loss(g, STEP, &l0));
    OK(ncl_graph_backward(g, BATCH));
    /* backward accumulates: a second identical pass doubles every gradient */
    float *grads[64] = {0};
    CHECK(np <= 64, "%d parameter tensors", np);
    for (int i = 0; i < np && i < 64; i++) {
        struct ncl_param_info pi;
        ncl_graph_param_info(g, i, &pi);
        grads[i] = malloc(pi.count * sizeof(float));
        if (!grads[i])
            return NCL_ERR_NO_MEMORY;
        OK(ncl_graph_read_grad(g, i, grads[i]));
    }
    OK(train_loss(g, STEP, &l0));
    OK(ncl_graph_backward(g, BATCH));
    int doubled = 1;
    for (int i = 0; i < np && i < 64; i++) {
        struct ncl_param_info pi;
        ncl_graph_param_info(g, i, &pi);
        float *twice = malloc(pi.count * sizeof(float));
        if (!twice)
            return NCL_ERR_NO_MEMORY;
        OK(ncl_graph_read_grad(g, i, twice));
        for (size_t j = 0; j < pi.count; j++) {
            double want = 2.0 * grads[i][j];
            if (!(fabs(twice[j] - want) <= 1e-5 * fabs(want) + 1e-9)) {
                if (doubled)
                    fprintf(stderr, "  %s[%zu]: after two passes %.7g, after one %.7g\n", pi.name, j, twice[j],
                            grads[i][j]);
                doubled = 0;
            }
        }
        free(twice);
    }
    CHECK(doubled, "a second backward pass does not accumulate onto the first");
    int checked = 0, tensors_ok = 0;
    double worst = 0;
    for (int i = 0; i < np && i < 64; i++) {
        struct ncl_param_info pi;
        ncl_graph_param_info(g, i, &pi);
        float *w = malloc(pi.count * sizeof *w), *grad = grads[i];
        if (!w)
            return NCL_ERR_NO_MEMORY;
        OK(ncl_graph_read_param(g, i, w));
        size_t pick[FD_TOP + FD_RANDOM];
        int npick = 0, finite = 1;
        double gmax = 0;
        for (size_t j = 0; j < pi.count; j++) {
            finite &= isfinite(grad[j]);
            gmax = fmax(gmax, fabs(grad[j]));
        }
        CHECK(finite, "%s: non-finite gradient", pi.name);
        CHECK(gmax > 0, "%s: the gradient is zero everywhere", pi.name);
        for (int t = 0; t < fd_top + fd_random; t++) {
            size_t best = 0;
            if (t < fd_top) {
                double bv = -1;
                for (size_t j = 0; j < pi.count; j++) {
                    int taken = 0;
                    for (int q = 0; q < npick; q++)
                        taken |= pick[q] == j;
                    if (!taken && fabs(grad[j]) > bv) {
                        bv = fabs(grad[j]);
                        best = j;
                    }
                }
            } else {
                /* the first random entry anywhere, the second among the nonzero gradients
                 * (dead ReLUs make many exact zeros); both distinct from the entries taken */
                best = (size_t)(rng_next() % pi.count);
                for (size_t k = 0; k < pi.count; k++, best = (best + 1) % pi.count) {
                    int taken = 0;
                    for (int q = 0; q < npick; q++)
                        taken |= pick[q] == best;
                    if (!taken && (t == fd_top || grad[best] != 0.0f))
                        break;
                }
            }
            pick[npick++] = best;
        }
        int bad = 0;
        for (int q = 0; q < npick; q++) {
            size_t j = pick[q];
            double an = grad[j];
            /* a random entry's tolerance includes FD_RTOL_MAX of the largest gradient: its eps
             * is that largest gradient's, small enough to step over fewer kinks */
            double scale = q < fd_top ? fabs(an) : fmax(fabs(an), gmax);
            double eps = fmin(fmax(FD_NOISE / (0.01 * scale), 1e-4), 1e-2);
            float orig = w[j], plus = (float)(orig + eps), minus = (float)(orig - eps);
            double lp, lm, dlp, dlm;
            w[j] = plus;
            OK(ncl_graph_write_param(g, i, w));
            OK(run_loss(g, NCL_MODE_TRAIN, STEP, &dlp, &lp));
            w[j] = minus;
            OK(ncl_graph_write_param(g, i, w));
            OK(run_loss(g, NCL_MODE_TRAIN, STEP, &dlm, &lm));
            w[j] = orig;
            double fd = (lp - lm) / ((double)plus - (double)minus);
            double err = fabs(fd - an);
            double tol = FD_NOISE / eps + FD_RTOL * fabs(an) + (q >= fd_top ? FD_RTOL_MAX * gmax : 0.0);
            worst = fmax(worst, err / tol);
            int ok = err <= tol;
            printf("  %-11s %-6s [%7zu] eps %.1e  analytic %+.6e  fd %+.6e  err %.2e  err/tol %.2f%s\n", pi.name,
                   q < fd_top ? "top" : "random", j, eps, an, fd, err, err / tol, ok ? "" : "  <-- FAIL");
            CHECK(ok, "%s[%zu]: analytic gradient %.6e, finite difference %.6e (eps %.1e, tolerance %.2e)",
                  pi.name, j, an, fd, eps, tol);
            bad += !ok;
            checked++;
        }
        tensors_ok += bad == 0;
        OK(ncl_graph_write_param(g, i, w));
        free(w);
        free(grad);
        grads[i] = NULL;
    }
    OK(ncl_graph_zero_grads(g));
    printf("gradients: %d entries of %d tensors checked, %d tensors agree, worst err/tol %.2f, base loss %.6f\n",
           checked, np, tensors_ok, worst, l0);
    return NCL_OK;
}

/* (d) Plain SGD at the reference's lr 0.1 on one fixed batch, dropout on (a new mask every
 * step, as in training): the batch's loss in eval mode must fall clearly, by 5% at least
 * (here it falls from 2.30 to about 2.10 in 6 steps; a sign or scale error in any gradient
 * would not). The step consumes the gradients: they are zero afterwards. */
#define SGD_STEPS 6

static enum ncl_status test_sgd(struct ncl_graph *g)
{
    struct ncl_sgd_params sgd = {.lr = 0.1f};
    double before, after, lt, host;
    OK(ncl_graph_init_params(g, SEED));
    ncl_graph_set_seed(g, SEED);
    OK(run_loss(g, NCL_MODE_EVAL, 0, &before, &host));
    printf("sgd: eval loss %.6f; train loss at step", before);
    for (int s = 0; s < SGD_STEPS; s++) {
        OK(train_loss(g, 100 + s, &lt));
        OK(ncl_graph_backward(g, BATCH));
        OK(ncl_graph_sgd_step(g, &sgd));
        printf(" %d: %.4f", s, lt);
    }
    OK(run_loss(g, NCL_MODE_EVAL, 0, &after, &host));
    printf("; eval loss after %.6f\n", after);
    CHECK(isfinite(after) && after < 0.95 * before, "%d SGD steps did not lower the loss by 5%%: %.6f -> %.6f",
          SGD_STEPS, before, after);
    int zero = 1;
    for (int i = 0; i < ncl_graph_param_count(g); i++) {
        struct ncl_param_info pi;
        ncl_graph_param_info(g, i, &pi);
        float *grad = malloc(pi.count * sizeof *grad);
        if (!grad)
            return NCL_ERR_NO_MEMORY;
        OK(ncl_graph_read_grad(g, i, grad));
        for (size_t j = 0; j < pi.count; j++)
            zero &= grad[j] == 0.0f;
        free(grad);
    }
    CHECK(zero, "gradients are not zero after the SGD step");
    return NCL_OK;
}

int main(void)
{
    double t0 = now();
    const char *entries = getenv("NINCL_TEST_NIN_ENTRIES");
    if (entries) {
        int n = atoi(entries);
        CHECK(n >= 1 && n <= FD_TOP + FD_RANDOM, "NINCL_TEST_NIN_ENTRIES=%s: give 1 to %d", entries,
              FD_TOP + FD_RANDOM);
        if (n >= 1 && n <= FD_TOP + FD_RANDOM) {
            fd_top = n < FD_TOP ? n : FD_TOP;
            fd_random = n - fd_top;
        }
    }
    make_input();
    struct ncl_ctx *ctx = NULL;
    struct ncl_graph *g1 = NULL, *g2 = NULL;
    enum ncl_status s = ncl_ctx_create(NULL, &ctx);
    CHECK(s == NCL_OK, "ncl_ctx_create: %s", ncl_last_error());
    if (s == NCL_OK && build(ctx, SEED, &g1) == NCL_OK && build(ctx, SEED, &g2) == NCL_OK) {
        double t = now();
        test_shapes(g1);
        test_forward(g1, g2);
        printf("(a, b) %.1f s\n", now() - t);
        t = now();
        test_gradients(g1);
        printf("(c) %.1f s\n", now() - t);
        t = now();
        test_sgd(g2);
        printf("(d) %.1f s\n", now() - t);
    }
    ncl_graph_free(g1);
    ncl_graph_free(g2);
    ncl_ctx_free(ctx);
    printf("test-nin: %.1f s\n", now() - t0);
    return check_done("test-nin");
}
