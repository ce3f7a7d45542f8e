/* Private: ONNX files (runtime/io/onnx-*.c). onnx-file.c reads and checks a file and gives typed
 * access to its attributes and tensors; onnx-import.c builds a graph from it; onnx-export.c
 * writes a graph as an inference model. The protobuf-c code is generated at build time from
 * Debian's onnx.proto (CMakeLists.txt). */
#ifndef NCL_ONNX_IMPL_H
#define NCL_ONNX_IMPL_H

#include "graph-impl.h"
#include "onnx.pb-c.h"

/* Files larger than this are refused before they are read: a model of a billion parameters. */
#define NCL_ONNX_MAX_FILE_BYTES ((int64_t)4 << 30)
/* Nodes, initializers and graph inputs a file may have: thousands in any CNN. */
#define NCL_ONNX_MAX_ITEMS 100000

/* Whether a model name is an ONNX file (ends in ".onnx", any case). */
int ncl_onnx_is_path(const char *model);
/* The length of a model name without its ".onnx". */
size_t ncl_onnx_name_len(const char *model);

/* Reads path, checks its protobuf nesting, unpacks it and checks the parts the importer reads:
 * a graph, opset of the default domain, names present. Free with ncl_onnx_unload. */
enum ncl_status ncl_onnx_load(const char *path, Onnx__ModelProto **out);
void ncl_onnx_unload(Onnx__ModelProto *m);
/* The same from bytes in memory (the fuzzer's entry). */
enum ncl_status ncl_onnx_load_bytes(const char *path, const uint8_t *data, size_t size, Onnx__ModelProto **out);

/* The default domain's opset the file imports (0 if none). */
int64_t ncl_onnx_opset(const Onnx__ModelProto *m);

/* The graph's data input (the one input that is not an initializer): element type float and
 * shape [batch, C, H, W] with a symbolic or fixed batch. */
enum ncl_status ncl_onnx_input(const char *path, const Onnx__GraphProto *g, const Onnx__ValueInfoProto **input,
                               struct ncl_shape *chw);

/* A string field that protobuf-c leaves NULL when absent. */
static inline const char *ncl_onnx_str(const char *s)
{
    return s ? s : "";
}

/* The node's attribute of that name, or NULL. */
const Onnx__AttributeProto *ncl_onnx_attr(const Onnx__NodeProto *n, const char *name);

/* A tensor's element count after checking its dims (each >= 0, product bounded) and that its
 * data holds exactly that many elements of its type; NCL_ERR_FORMAT naming it otherwise. */
enum ncl_status ncl_onnx_tensor_count(const char *path, const Onnx__TensorProto *t, int64_t *count);
/* Its values as floats (FLOAT tensors) or int64 (INT64, INT32 or BOOL tensors): out holds count. */
enum ncl_status ncl_onnx_tensor_floats(const char *path, const Onnx__TensorProto *t, float *out);
enum ncl_status ncl_onnx_tensor_ints(const char *path, const Onnx__TensorProto *t, int64_t *out);

/* Where the import found each parameter's and state's starting value (indices as the graph's). */
struct ncl_onnx_plan {
    const Onnx__TensorProto **param_src;
    char *param_transposed;     /* a [in, out] initializer of a [out, in] Linear weight */
    const Onnx__TensorProto **state_src;   /* NULL: num_batches_tracked, which starts at 0 */
    int param_cap, state_cap;
    Onnx__TensorProto **aliases;   /* Identity of an initializer: its tensor under another name */
    int alias_count, alias_cap;
};
/* Adds the layers of m's graph to g (created with the file's channels; any batch and image
 * size the layers accept), naming parameters and states after the initializers. */
enum ncl_status ncl_onnx_import(struct ncl_graph *g, const Onnx__ModelProto *m, const char *path,
                                struct ncl_onnx_plan *plan);
/* After ncl_graph_reserve: the initializers' values into the parameters and states. */
enum ncl_status ncl_onnx_write_params(struct ncl_graph *g, const struct ncl_onnx_plan *plan, const char *path);
void ncl_onnx_plan_free(struct ncl_onnx_plan *plan);
/* ncl_model_build for an .onnx file: import, reserve, the file's weights. */
enum ncl_status ncl_onnx_build(struct ncl_ctx *ctx, const char *path, struct ncl_shape input, struct ncl_graph **out);

#endif
