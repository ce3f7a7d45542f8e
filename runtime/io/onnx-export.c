/* A graph as an ONNX inference model (opset 13, which OpenCV's dnn, onnxruntime and TensorRT
 * all read): BatchNorm with its running statistics, Dropout left out, fused ReLUs as Relu
 * nodes, a symbolic batch, the parameters embedded under their state_dict names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file-impl.h"
#include "onnx-impl.h"

#define EXPORT_OPSET 13
#define EXPORT_IR_VERSION 7   /* ONNX 1.8, the release of opset 13 */

/* Everything the model is built from is allocated through the builder and freed with it. */
struct builder {
    void **owned;
    size_t n_owned, cap_owned;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int failed;
};

/* p (NULL: allocation failed) now belongs to the builder. */
static void *own(struct builder *b, void *p)
{
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    if (b->n_owned == b->cap_owned) {
        size_t cap = b->cap_owned ? 2 * b->cap_owned : 64;
        void **o = realloc(b->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            b->failed = 1;
            return NULL;
        }
        b->owned = o;
        b->cap_owned = cap;
    }
    b->owned[b->n_owned++] = p;
    return p;
}

static void *alloc(struct builder *b, size_t bytes)
{
    return own(b, calloc(1, bytes ? bytes : 1));
}

static char *str(struct builder *b, const char *s)
{
    char *c = alloc(b, strlen(s) + 1);
    if (c)
        strcpy(c, s);
    return c;
}

static void push(struct builder *b, void ***list, size_t *n, size_t *cap, void *item)
{
    if (!item) {
        b->failed = 1;
        return;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 32;
        void **l = realloc(*list, c * sizeof *l);
        if (!l) {
            b->failed = 1;
            return;
        }
        *list = l;
        *cap = c;
    }
    (*list)[(*n)++] = item;
}

static Onnx__AttributeProto *attr_ints(struct builder *b, const char *name, const int64_t *v, size_t n)
{
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    int64_t *vals = alloc(b, n * sizeof *vals);
    if (!a || !vals)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(vals, v, n * sizeof *vals);
    a->ints = vals;
    a->n_ints = n;
    return a;
}

static Onnx__AttributeProto *attr_int(struct builder *b, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    a->has_type = a->has_i = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_float(struct builder *b, const char *name, float v)
{
    Onnx__AttributeProto *a = alloc(b, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = str(b, name);
    a->has_type = a->has_f = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->f = v;
    return a;
}

/* A node op(inputs) -> output, named after its layer. */
static void add_node(struct builder *b, const char *op, const char *name, const char *const *inputs, size_t nin,
                     const char *output, Onnx__AttributeProto **attrs, size_t nattrs)
{
    Onnx__NodeProto *n = alloc(b, sizeof *n);
    char **in = alloc(b, nin * sizeof *in), **out = alloc(b, sizeof *out);
    Onnx__AttributeProto **at = alloc(b, nattrs * sizeof *at);
    if (!n || !in || !out || !at)
        return;
    onnx__node_proto__init(n);
    n->op_type = str(b, op);
    n->name = str(b, name);
    for (size_t i = 0; i < nin; i++)
        in[i] = str(b, inputs[i]);
    n->input = in;
    n->n_input = nin;
    out[0] = str(b, output);
    n->output = out;
    n->n_output = 1;
    for (size_t i = 0; i < nattrs; i++) {
        if (!attrs[i])
            b->failed = 1;
        at[i] = attrs[i];
    }
    n->attribute = at;
    n->n_attribute = nattrs;
    push(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, n);
}

/* An initializer `name` of count floats read by `read` from the device. */
static enum ncl_status add_initializer(struct builder *b, const char *name, int ndim, const int64_t *dims,
                                       size_t count, float *data)
{
    Onnx__TensorProto *t = alloc(b, sizeof *t);
    int64_t *d = alloc(b, (size_t)(ndim > 0 ? ndim : 1) * sizeof *d);
    uint8_t *raw = alloc(b, count * 4);
    if (!t || !d || !raw)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    onnx__tensor_proto__init(t);
    t->name = str(b, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->dims = d;
    t->n_dims = (size_t)ndim;
    for (size_t i = 0; i < count; i++) {   /* little-endian, whatever the host */
        uint32_t bits;
        memcpy(&bits, &data[i], 4);
        for (int k = 0; k < 4; k++)
            raw[4 * i + k] = (uint8_t)(bits >> (8 * k));
    }
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = count * 4;
    push(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t);
    return NCL_OK;
}

static enum ncl_status add_param(struct builder *b, struct ncl_graph *g, int index, float *buf)
{
    const struct ncl_param *p = &g->params[index];
    NCL_TRY(ncl_graph_read_param(g, index, buf));
    return add_initializer(b, p->name, p->ndim, p->dims, p->count, buf);
}

static enum ncl_status add_state(struct builder *b, struct ncl_graph *g, int index, float *buf)
{
    const struct ncl_param *p = &g->states[index];
    NCL_TRY(ncl_graph_read_state(g, index, buf));
    int64_t dims[1] = {(int64_t)p->count};
    return add_initializer(b, p->name, 1, dims, p->count, buf);
}

/* A float tensor type [batch, dims...] with a symbolic batch. */
static Onnx__ValueInfoProto *value_info(struct builder *b, const char *name, const int *dims, int ndim)
{
    Onnx__ValueInfoProto *v = alloc(b, sizeof *v);
    Onnx__TypeProto *tp = alloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *shape = alloc(b, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **d = alloc(b, (size_t)(ndim + 1) * sizeof *d);
    if (!v || !tp || !tt || !shape || !d)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    for (int i = 0; i <= ndim; i++) {
        d[i] = alloc(b, sizeof *d[i]);
        if (!d[i])
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d[i]);
        if (i == 0) {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[i]->dim_param = str(b, "batch");
        } else {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[i]->dim_value = dims[i - 1];
        }
    }
    shape->dim = d;
    shape->n_dim = (size_t)ndim + 1;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = str(b, name);
    v->type = tp;
    return v;
}

/* The nodes of layer i, reading `in` (its inputs' names) and writing `out`. Node names are the
 * layer's, made unique (engines such as OpenCV's name their layers after them). */
static enum ncl_status export_layer(struct builder *b, struct ncl_graph *g, int i, const char *const *in,
                                    const char *out, float *buf)
{
    const struct ncl_layer *l = &g->layers[i];
    const struct ncl_layer_ops *ops = l->ops;
    char pre[96], name[96], relu_name[112];
    snprintf(pre, sizeof pre, "%s_pre_relu", out);
    snprintf(name, sizeof name, "%s", l->name);
    for (int j = 0; j < i; j++)
        if (strcmp(g->layers[j].name, l->name) == 0)
            snprintf(name, sizeof name, "%s_%d", l->name, i);
    snprintf(relu_name, sizeof relu_name, "%s/relu", name);
    if (ops == &ncl_layer_conv_ops || ops == &ncl_layer_linear_ops) {
        NCL_TRY(add_param(b, g, l->param_index[0], buf));
        NCL_TRY(add_param(b, g, l->param_index[1], buf));
        const char *inputs[3] = {in[0], g->params[l->param_index[0]].name, g->params[l->param_index[1]].name};
        const char *y = l->conv.relu ? pre : out;
        if (ops == &ncl_layer_conv_ops) {
            int64_t k[2] = {l->conv.kernel, l->conv.kernel}, s[2] = {l->conv.stride, l->conv.stride};
            int64_t p[4] = {l->conv.pad, l->conv.pad, l->conv.pad, l->conv.pad}, one[2] = {1, 1};
            Onnx__AttributeProto *a[5] = {attr_ints(b, "kernel_shape", k, 2), attr_ints(b, "strides", s, 2),
                                          attr_ints(b, "pads", p, 4), attr_ints(b, "dilations", one, 2),
                                          attr_int(b, "group", 1)};
            add_node(b, "Conv", name, inputs, 3, y, a, 5);
        } else {
            Onnx__AttributeProto *a[3] = {attr_float(b, "alpha", 1.0f), attr_float(b, "beta", 1.0f),
                                          attr_int(b, "transB", 1)};
            add_node(b, "Gemm", name, inputs, 3, y, a, 3);
        }
        if (l->conv.relu)
            add_node(b, "Relu", relu_name, (const char *const[]){pre}, 1, out, NULL, 0);
    } else if (ops == &ncl_layer_maxpool_ops || ops == &ncl_layer_avgpool_ops) {
        int pad = ops == &ncl_layer_maxpool_ops ? l->pool_pad : 0;
        int64_t k[2] = {l->pool_kernel, l->pool_kernel}, s[2] = {l->pool_stride, l->pool_stride},
                p[4] = {pad, pad, pad, pad};
        Onnx__AttributeProto *a[3] = {attr_ints(b, "kernel_shape", k, 2), attr_ints(b, "strides", s, 2),
                                      attr_ints(b, "pads", p, 4)};
        add_node(b, ops == &ncl_layer_avgpool_ops ? "AveragePool" : "MaxPool", name, in, 1, out, a, 3);
    } else if (ops == &ncl_layer_gap_ops) {
        add_node(b, "GlobalAveragePool", name, in, 1, out, NULL, 0);
    } else if (ops == &ncl_layer_flatten_ops) {
        Onnx__AttributeProto *a[1] = {attr_int(b, "axis", 1)};
        add_node(b, "Flatten", name, in, 1, out, a, 1);
    } else if (ops == &ncl_layer_relu_ops || ops == &ncl_layer_sigmoid_ops) {
        add_node(b, ops == &ncl_layer_relu_ops ? "Relu" : "Sigmoid", name, in, 1, out, NULL, 0);
    } else if (ops == &ncl_layer_batchnorm2d_ops || ops == &ncl_layer_batchnorm1d_ops) {
        NCL_TRY(add_param(b, g, l->param_index[0], buf));
        NCL_TRY(add_param(b, g, l->param_index[1], buf));
        NCL_TRY(add_state(b, g, l->state_index[0], buf));
        NCL_TRY(add_state(b, g, l->state_index[1], buf));
        const char *inputs[5] = {in[0], g->params[l->param_index[0]].name, g->params[l->param_index[1]].name,
                                 g->states[l->state_index[0]].name, g->states[l->state_index[1]].name};
        Onnx__AttributeProto *a[2] = {attr_float(b, "epsilon", 1e-5f), attr_float(b, "momentum", 0.9f)};
        add_node(b, "BatchNormalization", name, inputs, 5, out, a, 2);
    } else if (ops == &ncl_layer_add_ops) {
        add_node(b, "Add", name, in, 2, out, NULL, 0);
    } else if (ops == &ncl_layer_concat_ops) {
        Onnx__AttributeProto *a[1] = {attr_int(b, "axis", 1)};
        add_node(b, "Concat", name, in, (size_t)l->ninputs, out, a, 1);
    } else {
        return ncl_fail(NCL_ERR_ARG, "layer %s (%s) cannot be written as ONNX", name, ops->kind);
    }
    return b->failed ? ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory") : NCL_OK;
}

/* Builds the model into m (its parts owned by b). */
static enum ncl_status build_model(struct builder *b, struct ncl_graph *g, Onnx__ModelProto *m, Onnx__GraphProto *gp,
                                   Onnx__OperatorSetIdProto *opset)
{
    int n = g->layer_count;
    /* the name of each layer's output; Dropout (identity at inference) passes its input's on */
    char (*names)[32] = alloc(b, (size_t)(n + 1) * sizeof *names);
    size_t most = 1;
    for (int i = 0; i < g->param_count; i++)
        most = g->params[i].count > most ? g->params[i].count : most;
    for (int i = 0; i < g->state_count; i++)
        most = g->states[i].count > most ? g->states[i].count : most;
    float *buf = malloc(most * sizeof *buf);
    if (!names || !buf) {
        free(buf);
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    }
    char (*name_of)[32] = names + 1;   /* name_of[-1]: the graph input */
    snprintf(name_of[-1], sizeof name_of[-1], "input");
    enum ncl_status s = NCL_OK;
    for (int i = 0; s == NCL_OK && i < n; i++) {
        const struct ncl_layer *l = &g->layers[i];
        if (l->ops == &ncl_layer_dropout_ops && i < n - 1) {
            snprintf(name_of[i], sizeof name_of[i], "%s", name_of[l->input_ids[0]]);
            continue;
        }
        snprintf(name_of[i], sizeof name_of[i], i == n - 1 ? "logits" : "t%d", i);
        const char *in[NCL_LAYER_MAX_INPUTS];
        for (int j = 0; j < l->ninputs; j++)
            in[j] = name_of[l->input_ids[j]];
        if (l->ops == &ncl_layer_dropout_ops)   /* the last layer: the output still needs its name */
            add_node(b, "Identity", l->name, in, 1, name_of[i], NULL, 0);
        else
            s = export_layer(b, g, i, in, name_of[i], buf);
    }
    free(buf);
    NCL_TRY(s);
    struct ncl_shape is = g->input.shape, os = ncl_graph_output_shape(g);
    int in_dims[3] = {is.c, is.h, is.w}, out_dims[3] = {os.c, os.h, os.w};
    int out_flat = g->outputs[n - 1].flat;
    Onnx__ValueInfoProto **inputs = alloc(b, sizeof *inputs), **outputs = alloc(b, sizeof *outputs);
    if (!inputs || !outputs)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    inputs[0] = value_info(b, "input", in_dims, 3);
    outputs[0] = value_info(b, "logits", out_dims, out_flat ? 1 : 3);
    if (b->failed || !inputs[0] || !outputs[0])
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    gp->name = "nincl";
    gp->node = b->nodes;
    gp->n_node = b->n_nodes;
    gp->initializer = b->inits;
    gp->n_initializer = b->n_inits;
    gp->input = inputs;
    gp->n_input = 1;
    gp->output = outputs;
    gp->n_output = 1;
    opset->domain = "";
    opset->has_version = 1;
    opset->version = EXPORT_OPSET;
    m->has_ir_version = 1;
    m->ir_version = EXPORT_IR_VERSION;
    m->producer_name = "nincl";
    m->producer_version = (char *)ncl_version();
    m->graph = gp;
    return NCL_OK;
}

enum ncl_status ncl_onnx_export(struct ncl_graph *g, const char *path)
{
    if (!g || !path)
        return ncl_fail(NCL_ERR_ARG, "ncl_onnx_export: graph or path is NULL");
    if (!g->reserved || g->layer_count == 0)
        return ncl_fail(NCL_ERR_ARG, "ncl_onnx_export: the graph is not reserved or has no layers");
    struct builder b = {0};
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto gp = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    m.opset_import = opsets;
    m.n_opset_import = 1;
    enum ncl_status s = build_model(&b, g, &m, &gp, &opset);
    uint8_t *data = NULL;
    size_t size = 0;
    if (s == NCL_OK) {
        size = onnx__model_proto__get_packed_size(&m);
        if (size >= ((size_t)2 << 30))   /* protobuf's limit for one message */
            s = ncl_fail(NCL_ERR_ARG, "%s: the model would be %zu bytes, more than ONNX's 2 GiB", path, size);
        else if (!(data = malloc(size)))
            s = ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path, size);
    }
    if (s == NCL_OK) {
        onnx__model_proto__pack(&m, data);
        if (ncl_write_file_atomic(path, (const char *)data, size) != 0)
            s = ncl_fail(NCL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    free(data);
    for (size_t i = 0; i < b.n_owned; i++)
        free(b.owned[i]);
    free(b.owned);
    free(b.nodes);
    free(b.inits);
    return s;
}
