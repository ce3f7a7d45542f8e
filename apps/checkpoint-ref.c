/* Resolving a checkpoint argument (apps/checkpoint-ref.h). */
#include "checkpoint-ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "commands.h"
#include "flags.h"
#include "nincl.h"

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n > t && strcasecmp(s + n - t, tail) == 0;
}

int checkpoint_resolve(const char *command, const char *arg, const char *model_flag, int resize_flag,
                       struct checkpoint_ref *out)
{
    memset(out, 0, sizeof *out);
    /* a folder means its checkpoint.safetensors; anything else is the file itself */
    struct stat st;
    int is_dir = stat(arg, &st) == 0 ? S_ISDIR(st.st_mode) : !ends_with(arg, ".safetensors");
    if (is_dir)
        snprintf(out->path, sizeof out->path, "%s/checkpoint.safetensors", arg);
    else
        snprintf(out->path, sizeof out->path, "%s", arg);
    struct ncl_st_file meta = {0};
    enum ncl_status s = ncl_st_read(out->path, &meta);
    if (s == NCL_OK)
        s = ncl_st_check_finite(&meta, out->path);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl %s: %s\n", command, ncl_last_error());
        ncl_st_free(&meta);
        return exit_code_for(s);
    }
    int rc = -1;
    const char *meta_model = ncl_st_meta(&meta, "model"), *meta_resize = ncl_st_meta(&meta, "resize");
    if (model_flag && meta_model && strcmp(model_flag, meta_model) != 0 &&
        !(ends_with(meta_model, ".onnx") && ends_with(model_flag, ".onnx"))) {
        fprintf(stderr, "nincl %s: %s is a checkpoint of model '%s', not '%s' (--model)\n", command, out->path,
                meta_model, model_flag);
        rc = EXIT_USAGE;
    } else if (meta_model && ends_with(meta_model, ".onnx") && !model_flag) {
        /* the run's own copy of its ONNX model, beside the checkpoint */
        const char *slash = strrchr(out->path, '/');
        int dir_len = slash ? (int)(slash - out->path) : 1;
        snprintf(out->model, sizeof out->model, "%.*s/%s", dir_len, slash ? out->path : ".", meta_model);
        out->model_from_meta = 1;
    } else {
        snprintf(out->model, sizeof out->model, "%s", model_flag ? model_flag : meta_model ? meta_model : "nin");
        out->model_from_meta = !model_flag && meta_model;
    }
    if (rc < 0 && !resize_flag && meta_resize) {
        char *end = NULL;
        long v = strtol(meta_resize, &end, 10);
        if (!*meta_resize || *end || v < 1 || v > 4096) {
            fprintf(stderr, "nincl %s: %s: metadata 'resize' is '%.40s', not a size in [1, 4096]\n", command,
                    out->path, meta_resize);
            rc = EXIT_USAGE;
        }
        out->resize = (int)v;
        out->resize_from_meta = 1;
    } else {
        out->resize = resize_flag ? resize_flag : ncl_model_input_size(out->model);
    }
    ncl_st_free(&meta);
    return rc;
}
