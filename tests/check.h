/* Minimal test helpers shared by tests/test-*.c: each CHECK counts, prints the first failures
 * with file:line, and check_done() prints "N passed, M failed" and gives the exit code. */
#ifndef NCL_CHECK_H
#define NCL_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* abs 1e-4 for small values, else rel 1e-3 (design.md); NaN always fails. Returns mismatches
 * and prints the first few. */
static inline int check_close_tol(const char *what, const float *got, const float *want, long n,
                                  double abs_tol, double rel_tol)
{
    int bad = 0;
    for (long i = 0; i < n; i++) {
        double g = got[i], w = want[i], d = fabs(g - w);
        int ok = !isnan(g) && !isnan(w) && (d <= abs_tol || d <= rel_tol * fabs(w));
        if (!ok) {
            if (bad < 5)
                fprintf(stderr, "  %s[%ld]: got %.7g want %.7g\n", what, i, g, w);
            bad++;
        }
    }
    if (bad)
        fprintf(stderr, "  %s: %d of %ld mismatched\n", what, bad, n);
    return bad;
}
#define CHECK_CLOSE(what, got, want, n) \
    CHECK(check_close_tol(what, got, want, n, 1e-4, 1e-3) == 0, "%s", what)

/* The nincl binary the CLI-driving tests run: $NINCL_BIN (ctest sets it), else <build>/nincl
 * beside <build>/tests/<test>. */
static inline void check_nincl_binary(char *out, size_t cap, const char *argv0)
{
    const char *env = getenv("NINCL_BIN");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    snprintf(out, cap, "%s", argv0);
    char *slash = strrchr(out, '/');
    if (slash)
        slash[1] = 0;
    else
        out[0] = 0;
    strncat(out, "../nincl", cap - strlen(out) - 1);
}

static inline int check_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
