/* nincl eval: test accuracy of a checkpoint (or of an ONNX file's own weights), per class and as a confusion matrix; --logits
 * writes every test image's logits as a NumPy .npy file (float32, [N, 10]). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint-ref.h"
#include "commands.h"
#include "flags.h"
#include "run-util.h"

/* NumPy's .npy format, version 1.0: magic, header length, a Python dict literal padded with
 * spaces to a 64-byte boundary, then little-endian float32 data in C order. */
static int write_npy(const char *path, const float *data, int64_t rows, int cols)
{
    char header[128];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
                     (long long)rows, cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), (size_t)rows * cols, f) == (size_t)rows * cols;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int cmd_eval(int argc, char **argv)
{
    struct device_flags df = {0};
    const char *checkpoint = NULL, *data = DEFAULT_DATA_DIR, *logits_path = NULL, *model_flag = NULL;
    int batch = 128, limit = 0, resize = 0;
    struct flag flags[] = {
        {"checkpoint", FLAG_STRING, &checkpoint, "checkpoint file (DIR/checkpoint.safetensors) or run folder", 0, 0,
         0, 0},
        {"data", FLAG_STRING, &data, "folder with the Fashion-MNIST IDX files", 0, 0, 0, 0},
        {"logits", FLAG_STRING, &logits_path, "write the logits of every test image to this .npy file", 0, 0, 0, 0},
        {"test-limit", FLAG_INT, &limit, "use only the first N test images (0: all)", 0, 1e9, 0, 0},
        {"batch", FLAG_INT, &batch, "batch size", 1, 65536, 0, 0},
        {"model", FLAG_STRING, &model_flag, "model, if the checkpoint does not say (nin, nin-small, lenet, ...: see train); an .onnx file alone: its own weights", 0, 0, 0, 0},
        {"resize", FLAG_INT, &resize, "input size, if the checkpoint does not say", 0, 4096, 0, 0},
        DEVICE_FLAGS(df),
    };
    int rc = flags_parse("eval", "Evaluate a checkpoint on the Fashion-MNIST test set.", flags,
                         sizeof flags / sizeof flags[0], argc, argv);
    if (rc >= 0)
        return rc;
    /* without a checkpoint, an ONNX model is evaluated with the weights of its file */
    struct checkpoint_ref ref;
    int onnx_file_weights = !checkpoint && model_flag && strlen(model_flag) > 5 &&
                            strcmp(model_flag + strlen(model_flag) - 5, ".onnx") == 0;
    if (onnx_file_weights) {
        memset(&ref, 0, sizeof ref);
        struct ncl_model_recipe recipe;
        if (ncl_model_default_recipe(model_flag, &recipe) != NCL_OK) {
            fprintf(stderr, "nincl eval: %s\n", ncl_last_error());
            return EXIT_USAGE;
        }
        snprintf(ref.path, sizeof ref.path, "%s", model_flag);
        snprintf(ref.model, sizeof ref.model, "%s", model_flag);
        ref.resize = resize ? resize : recipe.input_size;
    } else if (!checkpoint) {
        fprintf(stderr, "nincl eval: --checkpoint is required (a checkpoint.safetensors or a run folder), or "
                        "--model F.onnx to evaluate an ONNX file's own weights\n");
        return EXIT_USAGE;
    } else if ((rc = checkpoint_resolve("eval", checkpoint, model_flag, resize, &ref)) >= 0) {
        return rc;
    }
    const char *path = ref.path, *model = ref.model;
    int model_from_meta = ref.model_from_meta, resize_from_meta = ref.resize_from_meta;
    resize = ref.resize;
    enum ncl_status s;

    struct ncl_dataset test = {0};
    if ((rc = load_split(data, "t10k", limit, &test)) >= 0)
        return rc;
    struct ncl_ctx *ctx = NULL;
    if ((rc = open_device(&df, 0, &ctx)) >= 0) {
        ncl_dataset_free(&test);
        return rc;
    }
    struct ncl_graph *g = NULL;
    struct ncl_device_data *dd = NULL;
    float *logits = malloc((size_t)test.count * 10 * sizeof *logits);
    int64_t correct = 0;
    s = logits ? ncl_model_build(ctx, model, (struct ncl_shape){batch, 1, resize, resize}, &g) : NCL_ERR_NO_MEMORY;
    /* a model that cannot be built: say where the model or its size came from */
    if (s != NCL_OK && s != NCL_ERR_NO_MEMORY && (model_from_meta || resize_from_meta)) {
        fprintf(stderr, "nincl eval: %s: model '%s' (%s) at %dx%d (%s): %s\n", path, model,
                model_from_meta ? "from its metadata" : "--model", resize, resize,
                resize_from_meta ? "from its metadata" : "--resize", ncl_last_error());
        rc = exit_code_for(s);
        goto done;
    }
    if (s == NCL_OK && !onnx_file_weights)
        s = ncl_checkpoint_load(g, path, NULL);
    if (s == NCL_OK)
        s = ncl_device_data_create(ctx, &test, &dd);
    if (s == NCL_OK)
        s = ncl_graph_evaluate(g, dd, test.count, batch, &correct, logits);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl eval: %s\n", ncl_last_error());
        rc = exit_code_for(s);
    } else {
        int64_t confusion[10][10] = {{0}}, per_class[10] = {0};
        for (int64_t i = 0; i < test.count; i++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (logits[i * 10 + c] > logits[i * 10 + best])
                    best = c;
            confusion[test.labels[i]][best]++;
            per_class[test.labels[i]]++;
        }
        printf("%s on %s: test acc %.4f (%lld/%lld)\n\nper class:\n", path, ncl_ctx_device(ctx)->name,
               (double)correct / test.count, (long long)correct, (long long)test.count);
        for (int c = 0; c < 10; c++)
            printf("  %-11s %.4f (%lld images)\n", fashion_mnist_classes[c],
                   per_class[c] ? (double)confusion[c][c] / per_class[c] : 0.0, (long long)per_class[c]);
        printf("\nconfusion matrix (rows: true class, columns: predicted):\n%12s", "");
        for (int c = 0; c < 10; c++)
            printf(" %6.6s", fashion_mnist_classes[c]);
        printf("\n");
        for (int t = 0; t < 10; t++) {
            printf("  %-10s", fashion_mnist_classes[t]);
            for (int c = 0; c < 10; c++)
                printf(" %6lld", (long long)confusion[t][c]);
            printf("\n");
        }
        if (logits_path) {
            if (write_npy(logits_path, logits, test.count, 10) != 0) {
                fprintf(stderr, "nincl eval: cannot write %s: %s\n", logits_path, strerror(errno));
                rc = EXIT_USAGE;
            } else {
                printf("\nlogits of %lld images written to %s\n", (long long)test.count, logits_path);
                rc = EXIT_OK;
            }
        } else {
            rc = EXIT_OK;
        }
    }
done:
    free(logits);
    ncl_device_data_free(dd);
    ncl_graph_free(g);
    ncl_ctx_free(ctx);
    ncl_dataset_free(&test);
    return rc;
}
