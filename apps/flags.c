/* Parsing of the flag tables in apps/cmd-*.c. */
#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_help(const char *command, const char *summary, const struct flag *flags, int count)
{
    printf("usage: nincl %s [flags]\n%s\n\nflags (--name value or --name=value):\n", command, summary);
    for (int i = 0; i < count; i++) {
        const struct flag *f = &flags[i];
        char def[64] = "";
        switch (f->type) {
        case FLAG_STRING:
            snprintf(def, sizeof def, "%s", *(const char **)f->value ? *(const char **)f->value : "none");
            break;
        case FLAG_INT:
            snprintf(def, sizeof def, "%d", *(int *)f->value);
            break;
        case FLAG_FLOAT:
            snprintf(def, sizeof def, "%g", *(float *)f->value);
            break;
        case FLAG_U64:
            snprintf(def, sizeof def, "%llu", (unsigned long long)*(uint64_t *)f->value);
            break;
        case FLAG_BOOL:
            snprintf(def, sizeof def, "%s", *(int *)f->value ? "on" : "off");
            break;
        }
        printf("  --%-14s %s (default: %s)\n", f->name, f->help, def);
    }
    printf("  --%-14s show this help\n", "help");
}

/* The known flag closest to an unknown one (longest common prefix of 2+, else a substring),
 * for the hint; NULL if none is close. */
static const char *closest(const char *name, const struct flag *flags, int count)
{
    const char *best = NULL;
    size_t best_common = 1;
    for (int i = 0; i < count; i++) {
        size_t n = 0;
        while (name[n] && name[n] == flags[i].name[n])
            n++;
        if (n > best_common) {
            best_common = n;
            best = flags[i].name;
        }
    }
    for (int i = 0; i < count && !best && *name; i++)
        if (strstr(flags[i].name, name) || strstr(name, flags[i].name))
            best = flags[i].name;
    return best;
}

static int set_value(const char *command, struct flag *f, const char *text)
{
    char *end = NULL;
    errno = 0;
    double v = 0;
    switch (f->type) {
    case FLAG_STRING:
        *(const char **)f->value = text;
        return 0;
    case FLAG_BOOL:
        if (!strcmp(text, "1") || !strcmp(text, "on") || !strcmp(text, "true") || !strcmp(text, "yes"))
            *(int *)f->value = 1;
        else if (!strcmp(text, "0") || !strcmp(text, "off") || !strcmp(text, "false") || !strcmp(text, "no"))
            *(int *)f->value = 0;
        else {
            fprintf(stderr, "nincl %s: --%s takes on or off, not '%s'\n", command, f->name, text);
            return 2;
        }
        return 0;
    case FLAG_U64: {
        if (text[0] == '-') {
            fprintf(stderr, "nincl %s: --%s must be a non-negative integer, not '%s'\n", command, f->name, text);
            return 2;
        }
        unsigned long long u = strtoull(text, &end, 10);
        if (!*text || *end || errno) {
            fprintf(stderr, "nincl %s: --%s must be a non-negative integer, not '%s'\n", command, f->name, text);
            return 2;
        }
        *(uint64_t *)f->value = u;
        return 0;
    }
    case FLAG_INT:
    case FLAG_FLOAT:
        v = strtod(text, &end);
        if (!*text || *end || errno || !isfinite(v) || (f->type == FLAG_INT && v != floor(v))) {
            fprintf(stderr, "nincl %s: --%s must be %s, not '%s'\n", command, f->name,
                    f->type == FLAG_INT ? "an integer" : "a number", text);
            return 2;
        }
        if ((f->min_exclusive ? v <= f->min : v < f->min) || v > f->max) {
            if (f->max >= 1e300)
                fprintf(stderr, "nincl %s: --%s must be %s %g, got %s\n", command, f->name,
                        f->min_exclusive ? ">" : ">=", f->min, text);
            else
                fprintf(stderr, "nincl %s: --%s must be in %s%g, %g], got %s\n", command, f->name,
                        f->min_exclusive ? "(" : "[", f->min, f->max, text);
            return 2;
        }
        if (f->type == FLAG_INT)
            *(int *)f->value = (int)v;
        else
            *(float *)f->value = (float)v;
        return 0;
    }
    return 2;
}

int flags_parse(const char *command, const char *summary, struct flag *flags, int count, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help(command, summary, flags, count);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "nincl %s: unexpected argument '%s' (flags start with --; see nincl %s --help)\n", command,
                    arg, command);
            return 2;
        }
        char name[64];
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, arg + 2, len);
        name[len] = 0;
        struct flag *f = NULL;
        for (int j = 0; j < count && !f; j++)
            if (!strcmp(flags[j].name, name))
                f = &flags[j];
        if (!f) {
            const char *hint = closest(name, flags, count);
            fprintf(stderr, "nincl %s: unknown flag --%s%s%s%s (see nincl %s --help)\n", command, name,
                    hint ? "; did you mean --" : "", hint ? hint : "", hint ? "?" : "", command);
            return 2;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (f->type == FLAG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            value = "on";   /* a bare boolean flag switches it on */
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "nincl %s: --%s needs a value\n", command, name);
            return 2;
        }
        int rc = set_value(command, f, value);
        if (rc)
            return rc;
        f->set = 1;
    }
    return -1;
}

int exit_code_for(enum ncl_status s)
{
    switch (s) {
    case NCL_OK:
        return EXIT_OK;
    case NCL_ERR_ARG:
    case NCL_ERR_NO_PLATFORM:
    case NCL_ERR_NO_DEVICE:
    case NCL_ERR_SHAPE:
    case NCL_ERR_IO:
    case NCL_ERR_FORMAT:
        return EXIT_USAGE;
    default:
        return EXIT_FAILURE_RUNTIME;
    }
}

int open_device(const struct device_flags *df, int profile, struct ncl_ctx **ctx)
{
    struct ncl_ctx_params p = {.platform = df->platform, .device = df->device, .kernel_dir = df->kernel_dir,
                               .gemm = df->gemm, .conv = df->conv, .kernels = df->kernels, .profile = profile};
    enum ncl_status s = ncl_ctx_create(&p, ctx);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl: %s\n", ncl_last_error());
        return exit_code_for(s);
    }
    return -1;
}
