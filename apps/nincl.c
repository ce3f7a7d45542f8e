/* nincl: list devices, print model shapes, train, evaluate and benchmark. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "flags.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"devices", cmd_devices, "list OpenCL platforms and devices"},
    {"shapes", cmd_shapes, "run one input through a model and print each block's output shape"},
    {"train", cmd_train, "train a model on Fashion-MNIST (the d2l recipe by default)"},
    {"bench", cmd_bench, "training and inference speed, per-layer times, start-up and memory"},
    {"eval", cmd_eval, "test accuracy, per-class accuracy and confusion matrix of a checkpoint"},
    {"export", cmd_export, "write a checkpoint as an ONNX inference model"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: nincl <command> [flags]   (nincl <command> --help lists its flags; nincl --version)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("nincl %s\n", ncl_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "nincl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
