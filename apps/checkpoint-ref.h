/* Which model a checkpoint is of, at which input size: what eval and export rebuild before
 * loading it. */
#ifndef NCL_CHECKPOINT_REF_H
#define NCL_CHECKPOINT_REF_H

struct checkpoint_ref {
    char path[4200];            /* the checkpoint file */
    char model[4200];           /* a built-in model's name, or the path of the run's ONNX file */
    int resize;
    int model_from_meta, resize_from_meta;
};

/* arg is a checkpoint file or a run folder; model_flag and resize_flag (0: not given) are used
 * where the checkpoint's metadata does not say (a model flag that contradicts it is an error).
 * A run's ONNX model ("model.onnx" in the metadata) is the file beside the checkpoint. Prints
 * what is wrong and returns an exit code, or -1 to go on. */
int checkpoint_resolve(const char *command, const char *arg, const char *model_flag, int resize_flag,
                       struct checkpoint_ref *out);

#endif
