/* An ONNX model as a nincl graph: each node of the graph (in its topological order) becomes a
 * layer, the initializers become the starting parameters under their own names (PyTorch's
 * state_dict keys), and a Relu that alone reads a Conv or Gemm is fused into it, as the
 * built-in models do. Anything nincl cannot run exactly is refused, naming the node, its op
 * and the attribute, never approximated. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx-impl.h"

/* What a value (a node's input or output name) is. */
enum value_kind {
    V_UNDEFINED,    /* not produced yet */
    V_TENSOR,       /* a graph tensor (a layer's output, or the input) */
    V_INIT,         /* an initializer */
    V_CONST,        /* a Constant node's output */
    V_TRANSPOSED,   /* Transpose of a 2-d initializer (MatMul's weight) */
    V_UNUSABLE,     /* an output nincl does not compute (BatchNormalization's running statistics, a mask) */
    V_INTS,         /* a few integers computed from shapes (x.view(x.size(0), -1): Shape, Gather, ...) */
};

struct value {
    const char *name;           /* NULL: an empty slot */
    enum value_kind kind;
    int tensor;                 /* V_TENSOR: the tensor id (layer index or NCL_GRAPH_INPUT) */
    const Onnx__TensorProto *t; /* V_INIT, V_CONST, V_TRANSPOSED */
    int producer;               /* the node that outputs it, -1 if none */
    int consumers;              /* node inputs that read it */
    int consumer;               /* the last node that reads it */
    int taken;                  /* an initializer already given to a layer */
    int64_t ints[8];            /* V_INTS: the values, NCL_ONNX_BATCH for the batch size */
    int nints, ints_ndim;       /* V_INTS: count, and 0 (a scalar) or 1 */
};

/* Names to values, open addressing (a file may have many thousands). */
struct values {
    struct value *slots;
    size_t cap;
};

struct importer {
    const char *path;
    const Onnx__GraphProto *gp;
    struct ncl_graph *g;
    struct values values;
    int *group;                 /* per node: its top-level module's index */
    char (*group_label)[32];    /* per group */
    char *fused;                /* per node: a Relu fused into the layer before it */
    struct ncl_onnx_plan *plan;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The value of that name, created (V_UNDEFINED) when it is new. */
static struct value *value_of(struct values *vs, const char *name)
{
    size_t i = (size_t)hash_name(name) & (vs->cap - 1);
    while (vs->slots[i].name && strcmp(vs->slots[i].name, name) != 0)
        i = (i + 1) & (vs->cap - 1);
    struct value *v = &vs->slots[i];
    if (!v->name) {
        v->name = name;
        v->producer = v->consumer = -1;
    }
    return v;
}

static const char *node_name(const Onnx__NodeProto *n)
{
    return n->name && *n->name ? n->name : "(unnamed)";
}

/* NCL_ERR_FORMAT: "<file>: node '<name>' (<op>): <what>". */
static enum ncl_status NCL_PRINTF(3, 4) node_fail(struct importer *im, const Onnx__NodeProto *n,
                                                  const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ncl_fail(NCL_ERR_FORMAT, "%s: node '%s' (%s): %s", im->path, node_name(n), n->op_type, what);
}

/* ---- attributes ------------------------------------------------------------------------- */

/* Every attribute of n must be one of `known` (NULL-terminated): one nincl does not know could
 * change what the node computes. */
static enum ncl_status check_attrs(struct importer *im, const Onnx__NodeProto *n, const char *const *known)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *a = n->attribute[i]->name;
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(a, *k) == 0;
        if (!ok)
            return node_fail(im, n, "attribute '%s' is not supported", a);
    }
    return NCL_OK;
}

static enum ncl_status attr_int(struct importer *im, const Onnx__NodeProto *n, const char *name, int64_t def,
                                int64_t *out)
{
    const Onnx__AttributeProto *a = ncl_onnx_attr(n, name);
    *out = def;
    if (!a)
        return NCL_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT || !a->has_i)
        return node_fail(im, n, "attribute '%s' should be an int", name);
    *out = a->i;
    return NCL_OK;
}

static enum ncl_status attr_float(struct importer *im, const Onnx__NodeProto *n, const char *name, float def,
                                  float *out)
{
    const Onnx__AttributeProto *a = ncl_onnx_attr(n, name);
    *out = def;
    if (!a)
        return NCL_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT || !a->has_f)
        return node_fail(im, n, "attribute '%s' should be a float", name);
    *out = a->f;
    return NCL_OK;
}

/* An ints attribute: *count values (0 when absent). */
static enum ncl_status attr_ints(struct importer *im, const Onnx__NodeProto *n, const char *name,
                                 const int64_t **vals, size_t *count)
{
    const Onnx__AttributeProto *a = ncl_onnx_attr(n, name);
    *vals = NULL;
    *count = 0;
    if (!a)
        return NCL_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return node_fail(im, n, "attribute '%s' should be a list of ints", name);
    *vals = a->ints;
    *count = a->n_ints;
    return NCL_OK;
}

/* auto_pad, where present, must be NOTSET: explicit pads are what nincl runs. */
static enum ncl_status check_auto_pad(struct importer *im, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = ncl_onnx_attr(n, "auto_pad");
    if (!a)
        return NCL_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING || !a->has_s ||
        !(a->s.len == 6 && memcmp(a->s.data, "NOTSET", 6) == 0))
        return node_fail(im, n, "attribute 'auto_pad' must be NOTSET (explicit pads)");
    return NCL_OK;
}

/* A square 2-d window: kernel_shape [k, k] (or the weight's), strides [s, s], symmetric pads
 * [p, p, p, p], dilations [1, 1]. */
struct window {
    int kernel, stride, pad;
};

static enum ncl_status read_window(struct importer *im, const Onnx__NodeProto *n, int weight_kernel,
                                   struct window *w)
{
    const int64_t *v;
    size_t c;
    NCL_TRY(check_auto_pad(im, n));
    NCL_TRY(attr_ints(im, n, "kernel_shape", &v, &c));
    if (c == 0 && weight_kernel > 0) {
        w->kernel = weight_kernel;
    } else {
        if (c != 2 || v[0] != v[1] || v[0] < 1 || v[0] > 64)
            return node_fail(im, n, "attribute 'kernel_shape' must be [k, k] with k in [1, 64]");
        if (weight_kernel > 0 && v[0] != weight_kernel)
            return node_fail(im, n, "attribute 'kernel_shape' [%lld, %lld] disagrees with the weight's %dx%d",
                             (long long)v[0], (long long)v[1], weight_kernel, weight_kernel);
        w->kernel = (int)v[0];
    }
    NCL_TRY(attr_ints(im, n, "strides", &v, &c));
    w->stride = c ? (int)v[0] : 1;
    if (c && (c != 2 || v[0] != v[1] || v[0] < 1 || v[0] > 64))
        return node_fail(im, n, "attribute 'strides' must be [s, s] with s in [1, 64]");
    NCL_TRY(attr_ints(im, n, "pads", &v, &c));
    w->pad = c ? (int)v[0] : 0;
    if (c && (c != 4 || v[0] != v[1] || v[0] != v[2] || v[0] != v[3] || v[0] < 0 || v[0] > 64))
        return node_fail(im, n, "attribute 'pads' must be [p, p, p, p] (the same on every side) with p in [0, 64]");
    NCL_TRY(attr_ints(im, n, "dilations", &v, &c));
    if (c && (c != 2 || v[0] != 1 || v[1] != 1))
        return node_fail(im, n, "attribute 'dilations' must be [1, 1]");
    return NCL_OK;
}

/* ---- inputs ----------------------------------------------------------------------------- */

static int input_count(const Onnx__NodeProto *n)
{
    int c = (int)n->n_input;
    while (c > 0 && !*n->input[c - 1])   /* trailing optional inputs given as "" */
        c--;
    return c;
}

static enum ncl_status need_inputs(struct importer *im, const Onnx__NodeProto *n, int lo, int hi)
{
    int c = input_count(n);
    if (c < lo || c > hi)
        return lo == hi ? node_fail(im, n, "has %d inputs, needs %d", c, lo)
                        : node_fail(im, n, "has %d inputs, needs %d to %d", c, lo, hi);
    for (int i = 0; i < c; i++)
        if (!*n->input[i])
            return node_fail(im, n, "input %d is empty", i);
    return NCL_OK;
}

/* Input i as a graph tensor. */
static enum ncl_status tensor_input(struct importer *im, const Onnx__NodeProto *n, int i, int *id)
{
    const struct value *v = value_of(&im->values, n->input[i]);
    if (v->kind != V_TENSOR)
        return node_fail(im, n, "input '%s' must be computed by the graph, not %s", n->input[i],
                         v->kind == V_INIT ? "an initializer" : v->kind == V_CONST ? "a constant"
                                                                                    : "a value nincl does not compute");
    *id = v->tensor;
    return NCL_OK;
}

static struct ncl_shape tensor_shape(struct importer *im, int id, int *flat)
{
    const struct ncl_tensor *t = id == NCL_GRAPH_INPUT ? &im->g->input : &im->g->outputs[id];
    if (flat)
        *flat = t->flat;
    return t->shape;
}

/* Input i as an initializer no other layer has taken, with ndim dims (dims[] may be NULL). */
static enum ncl_status init_input(struct importer *im, const Onnx__NodeProto *n, int i, int ndim,
                                  const Onnx__TensorProto **t)
{
    struct value *v = value_of(&im->values, n->input[i]);
    if (v->kind != V_INIT)
        return node_fail(im, n, "input '%s' must be an initializer (a parameter of the model)", n->input[i]);
    if (v->taken)
        return node_fail(im, n, "initializer '%s' is used by another node too: shared weights are not supported",
                         v->name);
    if (v->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return node_fail(im, n, "initializer '%s' has data type %d; parameters must be float (1)", v->name,
                         (int)v->t->data_type);
    int64_t count;
    NCL_TRY(ncl_onnx_tensor_count(im->path, v->t, &count));
    if ((int)v->t->n_dims != ndim)
        return node_fail(im, n, "initializer '%s' has %zu dimensions, needs %d", v->name, v->t->n_dims, ndim);
    v->taken = 1;
    *t = v->t;
    return NCL_OK;
}

/* The batch size in V_INTS values: symbolic until a batch is run. */
#define NCL_ONNX_BATCH INT64_MIN

/* A constant input (Constant node, initializer, or integers computed from shapes) as integers:
 * count values at most. */
static enum ncl_status const_ints(struct importer *im, const Onnx__NodeProto *n, int i, int64_t *out, int max,
                                  int *count)
{
    const struct value *v = value_of(&im->values, n->input[i]);
    if (v->kind == V_INTS) {
        if (v->nints > max)
            return node_fail(im, n, "input '%s' has %d values, at most %d expected", n->input[i], v->nints, max);
        memcpy(out, v->ints, (size_t)v->nints * sizeof *out);
        *count = v->nints;
        return NCL_OK;
    }
    if (v->kind != V_CONST && v->kind != V_INIT)
        return node_fail(im, n, "input '%s' must be a constant", n->input[i]);
    int64_t c;
    NCL_TRY(ncl_onnx_tensor_count(im->path, v->t, &c));
    if (c > max)
        return node_fail(im, n, "input '%s' has %lld values, at most %d expected", n->input[i], (long long)c, max);
    *count = (int)c;
    return ncl_onnx_tensor_ints(im->path, v->t, out);
}

static enum ncl_status const_float(struct importer *im, const Onnx__NodeProto *n, int i, float *out)
{
    const struct value *v = value_of(&im->values, n->input[i]);
    if (v->kind != V_CONST && v->kind != V_INIT)
        return node_fail(im, n, "input '%s' must be a constant", n->input[i]);
    int64_t c;
    NCL_TRY(ncl_onnx_tensor_count(im->path, v->t, &c));
    if (c != 1)
        return node_fail(im, n, "input '%s' must be a single value", n->input[i]);
    return ncl_onnx_tensor_floats(im->path, v->t, out);
}

/* Outputs after the first must be unused: nincl computes only a node's main output. */
static enum ncl_status only_first_output(struct importer *im, const Onnx__NodeProto *n)
{
    if (n->n_output < 1 || !*n->output[0])
        return node_fail(im, n, "has no output");
    for (size_t i = 1; i < n->n_output; i++) {
        if (!*n->output[i])
            continue;
        struct value *v = value_of(&im->values, n->output[i]);
        v->kind = V_UNUSABLE;
    }
    return NCL_OK;
}

/* ---- layers ----------------------------------------------------------------------------- */

/* A name for the layer of node i: its parameters' prefix ("features.0" of "features.0.weight"),
 * else the node's name, cut to what a layer name holds. */
static void layer_name(const Onnx__NodeProto *n, const Onnx__TensorProto *weight, char *out, size_t cap)
{
    if (weight) {
        const char *w = weight->name;
        size_t len = strlen(w);
        if (len > 7 && strcmp(w + len - 7, ".weight") == 0)
            len -= 7;
        snprintf(out, cap, "%.*s", (int)len, w);
    } else {
        snprintf(out, cap, "%s", node_name(n));
    }
    if (strlen(out) >= cap - 1)
        out[cap - 1] = '\0';
}

/* Grows the plan to hold the graph's parameters and states so far. */
static enum ncl_status plan_fit(struct ncl_onnx_plan *p, int params, int states)
{
    if (params > p->param_cap) {
        int cap = params * 2;
        const Onnx__TensorProto **src = realloc(p->param_src, sizeof *src * (size_t)cap);
        if (!src)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        p->param_src = src;
        char *tr = realloc(p->param_transposed, (size_t)cap);
        if (!tr)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        p->param_transposed = tr;
        p->param_cap = cap;
    }
    if (states > p->state_cap) {
        int cap = states * 2;
        const Onnx__TensorProto **src = realloc(p->state_src, sizeof *src * (size_t)cap);
        if (!src)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        p->state_src = src;
        p->state_cap = cap;
    }
    return NCL_OK;
}

/* Gives parameter `index` of the last layer its initializer: the initializer's name, and its
 * values (transposed: a [in, out] matrix for a [out, in] weight) at ncl_onnx_write_params. */
static enum ncl_status bind_param(struct importer *im, const Onnx__NodeProto *n, int index,
                                  const Onnx__TensorProto *t, int transposed)
{
    struct ncl_layer *l = &im->g->layers[im->g->layer_count - 1];
    struct ncl_param *p = layer_param(l, index);
    if (strlen(t->name) >= sizeof p->name)
        return node_fail(im, n, "initializer name '%s' is longer than the %zu characters nincl keeps", t->name,
                         sizeof p->name - 1);
    int same = (int)t->n_dims == p->ndim;
    for (int d = 0; same && d < p->ndim; d++)
        same = t->dims[transposed ? p->ndim - 1 - d : d] == p->dims[d];
    if (!same) {
        char want[64] = "", have[64] = "";
        for (int d = 0; d < p->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                     (long long)p->dims[transposed ? p->ndim - 1 - d : d]);
        for (size_t d = 0; d < t->n_dims && d < 4; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? ", " : "", (long long)t->dims[d]);
        return node_fail(im, n, "initializer '%s' has shape [%s], but the layer's input makes it [%s]", t->name, have,
                         want);
    }
    NCL_TRY(plan_fit(im->plan, im->g->param_count, im->g->state_count));
    int i = l->param_index[index];
    im->plan->param_src[i] = t;
    im->plan->param_transposed[i] = (char)transposed;
    snprintf(p->name, sizeof p->name, "%s", t->name);
    return NCL_OK;
}

/* The layer just added computes node n's output. */
static void define_output(struct importer *im, const Onnx__NodeProto *n)
{
    struct value *v = value_of(&im->values, n->output[0]);
    v->kind = V_TENSOR;
    v->tensor = ncl_graph_last(im->g);
}

/* Node n's output read only by a Relu: fuse it (its output is then this layer's). */
static int relu_follows(struct importer *im, int node)
{
    const struct value *v = value_of(&im->values, im->gp->node[node]->output[0]);
    if (v->consumers != 1)
        return 0;
    const Onnx__NodeProto *r = im->gp->node[v->consumer];
    return strcmp(r->op_type, "Relu") == 0 && ncl_onnx_str(r->domain)[0] == '\0' && r->n_output >= 1 &&
           input_count(r) == 1 && r->n_attribute == 0;
}

static enum ncl_status fuse_relu(struct importer *im, int node)
{
    const struct value *v = value_of(&im->values, im->gp->node[node]->output[0]);
    int r = v->consumer;
    im->fused[r] = 1;
    struct value *out = value_of(&im->values, im->gp->node[r]->output[0]);
    out->kind = V_TENSOR;
    out->tensor = ncl_graph_last(im->g);
    if (im->group[r] != im->group[node])   /* the Relu is a module of its own (AlexNet's "1") */
        NCL_TRY(ncl_graph_set_fused_group(im->g, im->group[r], im->group_label[im->group[r]]));
    return NCL_OK;
}

#define GROUP(i) im->group[i], im->group_label[im->group[i]]

static enum ncl_status import_conv(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 2, 3));
    if (input_count(n) < 3)
        return node_fail(im, n, "a convolution without a bias (bias=False) is not supported");
    int x = 0;
    const Onnx__TensorProto *w, *b;
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(init_input(im, n, 1, 4, &w));
    NCL_TRY(init_input(im, n, 2, 1, &b));
    int64_t groups;
    NCL_TRY(attr_int(im, n, "group", 1, &groups));
    if (groups != 1)
        return node_fail(im, n, "attribute 'group' is %lld; grouped convolutions are not supported", (long long)groups);
    if (w->dims[2] != w->dims[3] || w->dims[2] < 1 || w->dims[2] > 64 || w->dims[0] < 1)
        return node_fail(im, n, "weight '%s' must be [out, in, k, k] with k in [1, 64]", w->name);
    struct window win;
    NCL_TRY(read_window(im, n, (int)w->dims[2], &win));
    struct ncl_shape in = tensor_shape(im, x, NULL);
    if (w->dims[1] != in.c)
        return node_fail(im, n, "weight '%s' takes %lld input channels, its input has %d", w->name,
                         (long long)w->dims[1], in.c);
    char name[64];
    layer_name(n, w, name, sizeof name);
    int relu = relu_follows(im, i);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_conv(im->g, name, GROUP(i),
                               (struct ncl_conv_params){(int)w->dims[0], win.kernel, win.stride, win.pad, relu}));
    NCL_TRY(bind_param(im, n, 0, w, 0));
    NCL_TRY(bind_param(im, n, 1, b, 0));
    define_output(im, n);
    return relu ? fuse_relu(im, i) : NCL_OK;
}

/* A fully connected layer: y = x W^T + b, W [out, in] (transposed: given as [in, out]). */
static enum ncl_status add_linear(struct importer *im, int i, int x, const Onnx__TensorProto *w, int transposed,
                                  const Onnx__TensorProto *b)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    int flat;
    struct ncl_shape in = tensor_shape(im, x, &flat);
    if (!flat)
        return node_fail(im, n, "its input must be a [batch, features] matrix (Flatten first), not [batch, %d, %d, %d]",
                         in.c, in.h, in.w);
    int64_t out = w->dims[transposed ? 1 : 0], in_features = w->dims[transposed ? 0 : 1];
    if (in_features != in.c || out < 1)
        return node_fail(im, n, "weight '%s' takes %lld input features, its input has %d", w->name,
                         (long long)in_features, in.c);
    if (b->n_dims != 1 || b->dims[0] != out)
        return node_fail(im, n, "bias '%s' must have shape [%lld]", b->name, (long long)out);
    char name[64];
    layer_name(n, w, name, sizeof name);
    int relu = relu_follows(im, i);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_linear(im->g, name, GROUP(i), (int)out, relu));
    NCL_TRY(bind_param(im, n, 0, w, transposed));
    NCL_TRY(bind_param(im, n, 1, b, 0));
    define_output(im, n);
    return relu ? fuse_relu(im, i) : NCL_OK;
}

static enum ncl_status import_gemm(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 2, 3));
    if (input_count(n) < 3)
        return node_fail(im, n, "a fully connected layer without a bias is not supported");
    float alpha, beta;
    int64_t ta, tb;
    NCL_TRY(attr_float(im, n, "alpha", 1.0f, &alpha));
    NCL_TRY(attr_float(im, n, "beta", 1.0f, &beta));
    NCL_TRY(attr_int(im, n, "transA", 0, &ta));
    NCL_TRY(attr_int(im, n, "transB", 0, &tb));
    if (alpha != 1.0f || beta != 1.0f)
        return node_fail(im, n, "attribute '%s' is %g; only 1 is supported", alpha != 1.0f ? "alpha" : "beta",
                         alpha != 1.0f ? alpha : beta);
    if (ta != 0 || (tb != 0 && tb != 1))
        return node_fail(im, n, "attribute '%s' is %lld; supported: transA 0, transB 0 or 1",
                         ta ? "transA" : "transB", (long long)(ta ? ta : tb));
    int x = 0;
    const Onnx__TensorProto *w, *b;
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(init_input(im, n, 1, 2, &w));
    NCL_TRY(init_input(im, n, 2, 1, &b));
    return add_linear(im, i, x, w, tb == 0, b);
}

/* MatMul(x, W) + b where W is an initializer ([in, out]) or Transpose(W [out, in]), and the
 * Add that alone reads the product has an initializer bias: one Linear. */
static enum ncl_status import_matmul(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));
    NCL_TRY(need_inputs(im, n, 2, 2));
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    struct value *wv = value_of(&im->values, n->input[1]);
    const Onnx__TensorProto *w;
    int transposed;
    if (wv->kind == V_TRANSPOSED) {
        if (wv->consumers != 1)
            return node_fail(im, n, "the transposed weight '%s' is read by other nodes too", wv->name);
        w = wv->t;
        transposed = 0;
    } else {
        NCL_TRY(init_input(im, n, 1, 2, &w));
        transposed = 1;
    }
    const struct value *y = value_of(&im->values, n->output[0]);
    const Onnx__NodeProto *add = y->consumers == 1 ? im->gp->node[y->consumer] : NULL;
    if (!add || strcmp(add->op_type, "Add") != 0 || input_count(add) != 2)
        return node_fail(im, n, "a matrix product must be followed by an Add of a bias (nn.Linear)");
    int bias_at = strcmp(add->input[0], n->output[0]) == 0 ? 1 : 0;
    struct value *bv = value_of(&im->values, add->input[bias_at]);
    if (bv->kind != V_INIT || bv->taken)
        return node_fail(im, add, "the bias '%s' added to a matrix product must be an initializer of its own",
                         add->input[bias_at]);
    bv->taken = 1;
    int64_t count;
    NCL_TRY(ncl_onnx_tensor_count(im->path, bv->t, &count));
    if (bv->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return node_fail(im, add, "bias '%s' must be float", bv->name);
    im->fused[y->consumer] = 1;
    NCL_TRY(add_linear(im, i, x, w, transposed, bv->t));
    struct value *out = value_of(&im->values, add->output[0]);
    out->kind = V_TENSOR;
    out->tensor = ncl_graph_last(im->g);
    return NCL_OK;
}

/* Transpose of a 2-d initializer with perm [1, 0]: MatMul's weight, W^T of nn.Linear. */
static enum ncl_status import_transpose(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"perm", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, 1));
    const int64_t *perm;
    size_t c;
    NCL_TRY(attr_ints(im, n, "perm", &perm, &c));
    if (c && (c != 2 || perm[0] != 1 || perm[1] != 0))
        return node_fail(im, n, "only the transpose of a weight matrix (perm [1, 0]) is supported");
    const Onnx__TensorProto *w;
    NCL_TRY(init_input(im, n, 0, 2, &w));
    NCL_TRY(only_first_output(im, n));
    struct value *v = value_of(&im->values, n->output[0]);
    v->kind = V_TRANSPOSED;
    v->t = w;
    return NCL_OK;
}

static enum ncl_status import_batchnorm(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", "is_test", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 5, 5));
    float eps, momentum;
    int64_t spatial;
    NCL_TRY(attr_float(im, n, "epsilon", 1e-5f, &eps));
    NCL_TRY(attr_float(im, n, "momentum", 0.9f, &momentum));
    NCL_TRY(attr_int(im, n, "spatial", 1, &spatial));
    /* PyTorch's eps 1e-5 and momentum 0.1 (ONNX's momentum is 1 - PyTorch's) */
    if (fabsf(eps - 1e-5f) > 1e-9f)
        return node_fail(im, n, "attribute 'epsilon' is %g; nincl's BatchNorm uses PyTorch's default 1e-5", eps);
    if (fabsf(momentum - 0.9f) > 1e-6f)
        return node_fail(im, n, "attribute 'momentum' is %g; nincl's BatchNorm uses PyTorch's default (ONNX 0.9)",
                         momentum);
    if (spatial != 1)
        return node_fail(im, n, "attribute 'spatial' must be 1");
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    const Onnx__TensorProto *t[4];
    for (int k = 0; k < 4; k++)
        NCL_TRY(init_input(im, n, 1 + k, 1, &t[k]));
    struct ncl_shape in = tensor_shape(im, x, NULL);
    NCL_TRY(only_first_output(im, n));
    char name[64];
    layer_name(n, t[0], name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_batchnorm(im->g, name, GROUP(i)));
    for (int k = 0; k < 2; k++)
        NCL_TRY(bind_param(im, n, k, t[k], 0));
    struct ncl_layer *l = &im->g->layers[im->g->layer_count - 1];
    NCL_TRY(plan_fit(im->plan, im->g->param_count, im->g->state_count));
    for (int k = 0; k < 2; k++) {
        struct ncl_param *s = layer_state(l, k);
        if (t[2 + k]->dims[0] != in.c)
            return node_fail(im, n, "initializer '%s' has %lld values for %d channels", t[2 + k]->name,
                             (long long)t[2 + k]->dims[0], in.c);
        if (strlen(t[2 + k]->name) >= sizeof s->name)
            return node_fail(im, n, "initializer name '%s' is too long", t[2 + k]->name);
        snprintf(s->name, sizeof s->name, "%s", t[2 + k]->name);
        im->plan->state_src[l->state_index[k]] = t[2 + k];
    }
    /* num_batches_tracked is not in the graph (PyTorch exports only what the graph reads): it
     * takes the running mean's prefix, so a checkpoint loads into the module it came from */
    struct ncl_param *nbt = layer_state(l, 2);
    const char *mean = t[2]->name;
    size_t len = strlen(mean);
    if (len > 13 && strcmp(mean + len - 13, ".running_mean") == 0)
        len -= 13;
    if (len + 20 >= sizeof nbt->name)
        return node_fail(im, n, "initializer name '%s' is too long", mean);
    snprintf(nbt->name, sizeof nbt->name, "%.*s.num_batches_tracked", (int)len, mean);
    im->plan->state_src[l->state_index[2]] = NULL;
    define_output(im, n);
    return NCL_OK;
}

static enum ncl_status import_activation(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));
    NCL_TRY(need_inputs(im, n, 1, 1));
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    if (strcmp(n->op_type, "Relu") == 0)
        NCL_TRY(ncl_graph_add_relu(im->g, name, GROUP(i)));
    else
        NCL_TRY(ncl_graph_add_sigmoid(im->g, name, GROUP(i)));
    define_output(im, n);
    return NCL_OK;
}

static enum ncl_status import_pool(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    int max = strcmp(n->op_type, "MaxPool") == 0;
    static const char *const known_max[] = {"kernel_shape", "strides", "pads", "dilations", "ceil_mode",
                                            "storage_order", "auto_pad", NULL};
    static const char *const known_avg[] = {"kernel_shape", "strides", "pads", "ceil_mode", "count_include_pad",
                                            "auto_pad", NULL};
    NCL_TRY(check_attrs(im, n, max ? known_max : known_avg));
    NCL_TRY(need_inputs(im, n, 1, 1));
    int64_t ceil_mode, storage;
    NCL_TRY(attr_int(im, n, "ceil_mode", 0, &ceil_mode));
    NCL_TRY(attr_int(im, n, "storage_order", 0, &storage));
    if (ceil_mode != 0)
        return node_fail(im, n, "attribute 'ceil_mode' is %lld; only 0 (floor) is supported", (long long)ceil_mode);
    if (storage != 0)
        return node_fail(im, n, "attribute 'storage_order' must be 0");
    struct window win;
    NCL_TRY(read_window(im, n, 0, &win));
    if (!max && win.pad != 0)
        return node_fail(im, n, "attribute 'pads' must be 0: padded average pooling is not supported");
    if (max && 2 * win.pad > win.kernel)
        return node_fail(im, n, "attribute 'pads' (%d) must be at most half the kernel (%d)", win.pad, win.kernel);
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(only_first_output(im, n));
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    if (!max)
        NCL_TRY(ncl_graph_add_avgpool(im->g, name, GROUP(i), win.kernel, win.stride));
    else if (win.pad)
        NCL_TRY(ncl_graph_add_maxpool_padded(im->g, name, GROUP(i), win.kernel, win.stride, win.pad));
    else
        NCL_TRY(ncl_graph_add_maxpool(im->g, name, GROUP(i), win.kernel, win.stride));
    define_output(im, n);
    return NCL_OK;
}

static enum ncl_status import_global_avgpool(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));
    NCL_TRY(need_inputs(im, n, 1, 1));
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_global_avgpool(im->g, name, GROUP(i)));
    define_output(im, n);
    return NCL_OK;
}

/* Output name `alias` is the same tensor as input 0. */
static enum ncl_status alias_input(struct importer *im, const Onnx__NodeProto *n)
{
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(only_first_output(im, n));
    struct value *v = value_of(&im->values, n->output[0]);
    v->kind = V_TENSOR;
    v->tensor = x;
    return NCL_OK;
}

static enum ncl_status add_flatten(struct importer *im, int i, int x)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    int flat;
    tensor_shape(im, x, &flat);
    if (flat)   /* already [batch, features] */
        return alias_input(im, n);
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_flatten(im->g, name, GROUP(i)));
    define_output(im, n);
    return NCL_OK;
}

static enum ncl_status import_flatten(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"axis", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, 1));
    int64_t axis;
    NCL_TRY(attr_int(im, n, "axis", 1, &axis));
    if (axis != 1)
        return node_fail(im, n, "attribute 'axis' is %lld; only 1 (keep the batch) is supported", (long long)axis);
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    return add_flatten(im, i, x);
}

/* Reshape to [batch, features] (x.view(x.size(0), -1) with a constant shape): a flatten. */
static enum ncl_status import_reshape(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"allowzero", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 2, 2));
    int64_t allowzero;
    NCL_TRY(attr_int(im, n, "allowzero", 0, &allowzero));
    int x = 0, count = 0;
    int64_t shape[8];
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(const_ints(im, n, 1, shape, 8, &count));
    struct ncl_shape in = tensor_shape(im, x, NULL);
    int64_t features = (int64_t)in.c * in.h * in.w;
    int batch_ok = count == 2 && ((shape[0] == 0 && !allowzero) || (shape[0] == -1 && shape[1] == features) ||
                                  shape[0] == NCL_ONNX_BATCH);
    if (!batch_ok || !(shape[1] == -1 || shape[1] == features))
        return node_fail(im, n, "only a reshape to [batch, %lld] (a flatten) is supported", (long long)features);
    return add_flatten(im, i, x);
}

static enum ncl_status import_dropout(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, 3));
    float p;
    NCL_TRY(attr_float(im, n, "ratio", 0.5f, &p));   /* opsets before 12 */
    if (input_count(n) >= 2)
        NCL_TRY(const_float(im, n, 1, &p));
    if (!(p >= 0.0f && p < 1.0f))
        return node_fail(im, n, "ratio %g must be in [0, 1)", p);
    int x = 0;
    NCL_TRY(tensor_input(im, n, 0, &x));
    NCL_TRY(only_first_output(im, n));
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_use_input(im->g, x));
    NCL_TRY(ncl_graph_add_dropout(im->g, name, GROUP(i), p));
    define_output(im, n);
    return NCL_OK;
}

static enum ncl_status import_add(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));
    NCL_TRY(need_inputs(im, n, 2, 2));
    int a = 0, b = 0;
    NCL_TRY(tensor_input(im, n, 0, &a));
    NCL_TRY(tensor_input(im, n, 1, &b));
    int fa, fb;
    struct ncl_shape sa = tensor_shape(im, a, &fa), sb = tensor_shape(im, b, &fb);
    if (sa.c != sb.c || sa.h != sb.h || sa.w != sb.w || fa != fb)
        return node_fail(im, n, "adds tensors of different shapes (%dx%dx%d and %dx%dx%d); broadcasting is not "
                         "supported", sa.c, sa.h, sa.w, sb.c, sb.h, sb.w);
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_add_add(im->g, name, GROUP(i), a, b));
    define_output(im, n);
    return NCL_OK;
}

/* ---- integers computed from shapes: what x.view(x.size(0), -1) exports ----------------------- */

static struct value *ints_output(struct importer *im, const Onnx__NodeProto *n, int ndim)
{
    struct value *v = value_of(&im->values, n->output[0]);
    v->kind = V_INTS;
    v->ints_ndim = ndim;
    v->nints = 0;
    return v;
}

/* Shape(x): [batch, C, H, W], or [batch, features] of a flattened tensor. */
static enum ncl_status import_shape(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));   /* start and end (opset 15) are not supported */
    NCL_TRY(need_inputs(im, n, 1, 1));
    int x = 0, flat;
    NCL_TRY(tensor_input(im, n, 0, &x));
    struct ncl_shape sh = tensor_shape(im, x, &flat);
    struct value *v = ints_output(im, n, 1);
    int64_t dims[4] = {NCL_ONNX_BATCH, sh.c, sh.h, sh.w};
    v->nints = flat ? 2 : 4;
    memcpy(v->ints, dims, sizeof dims);
    return NCL_OK;
}

/* Gather(ints, index) on axis 0: one value (a scalar index) or several. */
static enum ncl_status import_gather(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"axis", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 2, 2));
    int64_t axis;
    NCL_TRY(attr_int(im, n, "axis", 0, &axis));
    const struct value *data = value_of(&im->values, n->input[0]), *index = value_of(&im->values, n->input[1]);
    if (data->kind != V_INTS || axis != 0)
        return node_fail(im, n, "only gathering from a shape (x.size(i)) is supported");
    int64_t vals[8], idx[8];
    int count, nidx;
    NCL_TRY(const_ints(im, n, 0, vals, 8, &count));
    NCL_TRY(const_ints(im, n, 1, idx, 8, &nidx));
    int scalar = index->kind == V_INTS ? index->ints_ndim == 0 : index->t->n_dims == 0;
    struct value *v = ints_output(im, n, scalar ? 0 : 1);
    for (int k = 0; k < nidx; k++) {
        int64_t j = idx[k] < 0 ? idx[k] + count : idx[k];
        if (j < 0 || j >= count)
            return node_fail(im, n, "index %lld is outside a shape of %d values", (long long)idx[k], count);
        v->ints[v->nints++] = vals[j];
    }
    return NCL_OK;
}

/* Unsqueeze of a scalar on axis 0: a 1-value list (axes as input from opset 13, else attribute). */
static enum ncl_status import_unsqueeze(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"axes", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, 2));
    int64_t axes[8], vals[8];
    int naxes = 0, count;
    if (input_count(n) == 2) {
        NCL_TRY(const_ints(im, n, 1, axes, 8, &naxes));
    } else {
        const int64_t *a;
        size_t c;
        NCL_TRY(attr_ints(im, n, "axes", &a, &c));
        for (size_t k = 0; k < c && k < 8; k++)
            axes[k] = a[k];
        naxes = (int)(c < 8 ? c : 8);
    }
    const struct value *data = value_of(&im->values, n->input[0]);
    int scalar = data->kind == V_INTS ? data->ints_ndim == 0
                 : (data->kind == V_CONST || data->kind == V_INIT) && data->t->n_dims == 0;
    if (!scalar || naxes != 1 || axes[0] != 0)
        return node_fail(im, n, "only unsqueezing a scalar of a shape computation on axis 0 is supported");
    NCL_TRY(const_ints(im, n, 0, vals, 1, &count));
    struct value *v = ints_output(im, n, 1);
    v->ints[0] = vals[0];
    v->nints = 1;
    return NCL_OK;
}

/* Concat on axis 0 of integer lists: a shape being assembled ([batch, -1]). */
static enum ncl_status import_concat_ints(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    int64_t axis;
    NCL_TRY(attr_int(im, n, "axis", 0, &axis));
    if (axis != 0)
        return node_fail(im, n, "integer lists concatenate on axis 0, not %lld", (long long)axis);
    int64_t all[8];
    int total = 0;
    for (int k = 0; k < input_count(n); k++) {
        int count;
        NCL_TRY(const_ints(im, n, k, all + total, 8 - total, &count));
        total += count;
    }
    struct value *v = ints_output(im, n, 1);
    memcpy(v->ints, all, (size_t)total * sizeof *all);
    v->nints = total;
    return NCL_OK;
}

static enum ncl_status import_concat(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"axis", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, NCL_LAYER_MAX_INPUTS));
    if (value_of(&im->values, n->input[0])->kind != V_TENSOR)
        return import_concat_ints(im, i);
    int64_t axis;
    NCL_TRY(attr_int(im, n, "axis", 1, &axis));
    int ids[NCL_LAYER_MAX_INPUTS], count = input_count(n);
    for (int k = 0; k < count; k++)
        NCL_TRY(tensor_input(im, n, k, &ids[k]));
    int flat;
    tensor_shape(im, ids[0], &flat);
    if (axis != 1 && !(axis == -3 && !flat))
        return node_fail(im, n, "attribute 'axis' is %lld; only channels (1) are supported", (long long)axis);
    if (flat)
        return node_fail(im, n, "concatenating flattened tensors is not supported");
    char name[64];
    layer_name(n, NULL, name, sizeof name);
    NCL_TRY(ncl_graph_add_concat(im->g, name, GROUP(i), count, ids));
    define_output(im, n);
    return NCL_OK;
}

/* Pad with zero pads: what PyTorch exports before an AvgPool2d without padding. */
static enum ncl_status import_pad(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"mode", "pads", "value", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 1, 3));
    int64_t pads[16];
    int count = 0;
    if (input_count(n) >= 2) {
        NCL_TRY(const_ints(im, n, 1, pads, 16, &count));
    } else {
        const int64_t *v;
        size_t c;
        NCL_TRY(attr_ints(im, n, "pads", &v, &c));
        for (size_t k = 0; k < c && k < 16; k++)
            pads[k] = v[k];
        count = (int)(c < 16 ? c : 16);
    }
    for (int k = 0; k < count; k++)
        if (pads[k] != 0)
            return node_fail(im, n, "only a Pad of zero width is supported (pad %d is %lld): pad in the Conv or "
                             "MaxPool instead", k, (long long)pads[k]);
    return alias_input(im, n);
}

static enum ncl_status import_identity(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const none[] = {NULL};
    NCL_TRY(check_attrs(im, n, none));
    NCL_TRY(need_inputs(im, n, 1, 1));
    struct value *v = value_of(&im->values, n->input[0]);
    if (v->kind == V_TENSOR)
        return alias_input(im, n);
    if (v->kind != V_INIT)
        return node_fail(im, n, "input '%s' must be computed by the graph or be an initializer", n->input[0]);
    /* PyTorch's inference export keeps one copy of equal initializers (zero biases) and gives
     * the others as Identity nodes, named as their parameters: each is a parameter of its own */
    NCL_TRY(only_first_output(im, n));
    struct ncl_onnx_plan *p = im->plan;
    if (p->alias_count == p->alias_cap) {
        int cap = p->alias_cap ? 2 * p->alias_cap : 16;
        Onnx__TensorProto **a = realloc(p->aliases, sizeof *a * (size_t)cap);
        if (!a)
            return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
        p->aliases = a;
        p->alias_cap = cap;
    }
    Onnx__TensorProto *copy = malloc(sizeof *copy);
    if (!copy)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    *copy = *v->t;   /* the same data, under the output's name */
    copy->name = n->output[0];
    p->aliases[p->alias_count++] = copy;
    struct value *out = value_of(&im->values, n->output[0]);
    out->kind = V_INIT;
    out->t = copy;
    return NCL_OK;
}

static enum ncl_status import_constant(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    static const char *const known[] = {"value", NULL};
    NCL_TRY(check_attrs(im, n, known));
    NCL_TRY(need_inputs(im, n, 0, 0));
    const Onnx__AttributeProto *a = ncl_onnx_attr(n, "value");
    if (!a || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !a->t)
        return node_fail(im, n, "needs a 'value' tensor attribute");
    int64_t count;
    NCL_TRY(ncl_onnx_tensor_count(im->path, a->t, &count));
    NCL_TRY(only_first_output(im, n));
    struct value *v = value_of(&im->values, n->output[0]);
    v->kind = V_CONST;
    v->t = a->t;
    return NCL_OK;
}

static const struct op {
    const char *name;
    enum ncl_status (*import)(struct importer *im, int node);
} ops[] = {
    {"Conv", import_conv},
    {"Gemm", import_gemm},
    {"MatMul", import_matmul},
    {"Transpose", import_transpose},
    {"BatchNormalization", import_batchnorm},
    {"Relu", import_activation},
    {"Sigmoid", import_activation},
    {"MaxPool", import_pool},
    {"AveragePool", import_pool},
    {"GlobalAveragePool", import_global_avgpool},
    {"Flatten", import_flatten},
    {"Reshape", import_reshape},
    {"Dropout", import_dropout},
    {"Add", import_add},
    {"Concat", import_concat},
    {"Pad", import_pad},
    {"Identity", import_identity},
    {"Constant", import_constant},
    {"Shape", import_shape},
    {"Gather", import_gather},
    {"Unsqueeze", import_unsqueeze},
};

/* ---- the graph -------------------------------------------------------------------------- */

/* The top-level module of a node PyTorch named "/1/1.0/conv1/Conv" is "1"; each run of nodes
 * of one module is a group (what nincl shapes prints a line for), labelled with the module's
 * name, or the op of a module of one node. Other exporters' nodes are groups of one. */
static enum ncl_status plan_groups(struct importer *im)
{
    const Onnx__GraphProto *gp = im->gp;
    im->group = calloc(gp->n_node + 1, sizeof *im->group);
    im->group_label = calloc(gp->n_node + 1, sizeof *im->group_label);
    im->fused = calloc(gp->n_node + 1, 1);
    if (!im->group || !im->group_label || !im->fused)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    int group = -1, members = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        const char *name = ncl_onnx_str(gp->node[i]->name);
        const char *end = name[0] == '/' ? strchr(name + 1, '/') : NULL;
        size_t len = end ? (size_t)(end - name - 1) : 0;
        if (!end || !prev || len != prev_len || strncmp(name + 1, prev, len) != 0) {
            group++;
            members = 0;
        }
        prev = end ? name + 1 : NULL;
        prev_len = len;
        im->group[i] = group;
        const char *op = gp->node[i]->op_type;
        if (strcmp(op, "Constant") != 0 && strcmp(op, "Pad") != 0 && strcmp(op, "Identity") != 0)
            members++;   /* nodes that are layers */
        if (members <= 1)
            snprintf(im->group_label[group], sizeof im->group_label[group], "%s", gp->node[i]->op_type);
        else
            snprintf(im->group_label[group], sizeof im->group_label[group], "%.*s", (int)(len < 31 ? len : 31),
                     name + 1);
    }
    return NCL_OK;
}

/* Registers initializers, the input, and every node's outputs (producer) and inputs
 * (consumers); names produced twice are refused. */
static enum ncl_status index_values(struct importer *im, const char *input_name)
{
    const Onnx__GraphProto *gp = im->gp;
    size_t items = gp->n_initializer + 1;
    for (size_t i = 0; i < gp->n_node; i++)
        items += gp->node[i]->n_input + gp->node[i]->n_output;
    size_t cap = 16;
    while (cap < 2 * items)
        cap *= 2;
    im->values.slots = calloc(cap, sizeof *im->values.slots);
    im->values.cap = cap;
    if (!im->values.slots)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        struct value *v = value_of(&im->values, gp->initializer[i]->name);
        if (v->kind != V_UNDEFINED)
            return ncl_fail(NCL_ERR_FORMAT, "%s: two initializers are named '%s'", im->path, v->name);
        v->kind = V_INIT;
        v->t = gp->initializer[i];
    }
    struct value *in = value_of(&im->values, input_name);
    in->kind = V_TENSOR;
    in->tensor = NCL_GRAPH_INPUT;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        for (size_t k = 0; k < n->n_output; k++) {
            if (!n->output[k] || !*n->output[k])
                continue;
            struct value *v = value_of(&im->values, n->output[k]);
            if (v->kind != V_UNDEFINED || v->producer >= 0)
                return ncl_fail(NCL_ERR_FORMAT, "%s: node '%s' (%s): output '%s' is already produced by %s", im->path,
                                node_name(n), n->op_type, v->name,
                                v->producer >= 0 ? node_name(gp->node[v->producer]) : "an initializer or the input");
            v->producer = (int)i;
        }
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k] || !*n->input[k])
                continue;
            struct value *v = value_of(&im->values, n->input[k]);
            v->consumers++;
            v->consumer = (int)i;
        }
    }
    return NCL_OK;
}

/* Every input of node i must be defined by now: the file's nodes are in topological order. */
static enum ncl_status check_defined(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k] || !*n->input[k])
            continue;
        const struct value *v = value_of(&im->values, n->input[k]);
        if (v->kind != V_UNDEFINED)
            continue;
        if (v->producer >= i)
            return node_fail(im, n, "input '%s' is produced by a later node ('%s'): the graph has a cycle or is not "
                             "in topological order", v->name, node_name(im->gp->node[v->producer]));
        return node_fail(im, n, "input '%s' is not produced by any node, initializer or graph input", v->name);
    }
    return NCL_OK;
}

static enum ncl_status import_node(struct importer *im, int i)
{
    const Onnx__NodeProto *n = im->gp->node[i];
    const char *domain = ncl_onnx_str(n->domain);
    if (*domain && strcmp(domain, "ai.onnx") != 0)
        return node_fail(im, n, "operator domain '%s' is not supported (only the default ONNX domain)", domain);
    if (n->n_output < 1 || !*n->output[0])
        return node_fail(im, n, "has no output");
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (strcmp(n->op_type, ops[k].name) == 0)
            return ops[k].import(im, i);
    return node_fail(im, n, "operator not supported; nincl reads Conv, Relu, Sigmoid, MaxPool, AveragePool, "
                     "GlobalAveragePool, BatchNormalization, Dropout, Flatten, Reshape, Gemm, MatMul + Add, Add, "
                     "Concat, Pad (zero), Identity, Constant, Transpose, and Shape, Gather, Unsqueeze for a "
                     "flatten's shape");
}

/* The one graph output must be the last layer's [batch, classes] scores: the loss reads them. */
static enum ncl_status check_output(struct importer *im)
{
    const Onnx__GraphProto *gp = im->gp;
    if (gp->n_output != 1 || !gp->output[0]->name)
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph has %zu outputs; nincl trains models with one output, the "
                        "class scores", im->path, gp->n_output);
    const char *name = gp->output[0]->name;
    const struct value *v = value_of(&im->values, name);
    if (v->kind != V_TENSOR || v->tensor == NCL_GRAPH_INPUT)
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph output '%s' is not computed by any node", im->path, name);
    if (v->tensor != ncl_graph_last(im->g))
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph output '%s' is not the last node's output", im->path, name);
    int flat;
    struct ncl_shape s = tensor_shape(im, v->tensor, &flat);
    if (!flat)
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph output '%s' is [batch, %d, %d, %d]; nincl trains models whose "
                        "output is [batch, classes]", im->path, name, s.c, s.h, s.w);
    return NCL_OK;
}

static enum ncl_status import_graph(struct importer *im, const char *input_name)
{
    NCL_TRY(plan_groups(im));
    NCL_TRY(index_values(im, input_name));
    for (size_t i = 0; i < im->gp->n_node; i++) {
        NCL_TRY(check_defined(im, (int)i));
        if (!im->fused[i])
            NCL_TRY(import_node(im, (int)i));
    }
    if (ncl_graph_layer_count(im->g) == 0)
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph has no layers", im->path);
    return check_output(im);
}

enum ncl_status ncl_onnx_import(struct ncl_graph *g, const Onnx__ModelProto *m, const char *path,
                                struct ncl_onnx_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    const Onnx__ValueInfoProto *input;
    struct ncl_shape chw;
    NCL_TRY(ncl_onnx_input(path, m->graph, &input, &chw));
    struct ncl_shape have = ncl_graph_input_shape(g);
    if (have.c != chw.c)
        return ncl_fail(NCL_ERR_SHAPE, "%s: the model takes %d-channel images, not %d", path, chw.c, have.c);
    struct importer im = {.path = path, .gp = m->graph, .g = g, .plan = plan};
    enum ncl_status s = import_graph(&im, input->name);
    if (s == NCL_OK)
        s = plan_fit(plan, g->param_count, g->state_count);
    free(im.values.slots);
    free(im.group);
    free(im.group_label);
    free(im.fused);
    if (s != NCL_OK)
        ncl_onnx_plan_free(plan);
    return s;
}

void ncl_onnx_plan_free(struct ncl_onnx_plan *plan)
{
    free(plan->param_src);
    free(plan->param_transposed);
    free(plan->state_src);
    for (int i = 0; i < plan->alias_count; i++)
        free(plan->aliases[i]);
    free(plan->aliases);
    memset(plan, 0, sizeof *plan);
}

enum ncl_status ncl_onnx_write_params(struct ncl_graph *g, const struct ncl_onnx_plan *plan, const char *path)
{
    size_t most = 1;
    for (int i = 0; i < g->param_count; i++)
        most = g->params[i].count > most ? g->params[i].count : most;
    for (int i = 0; i < g->state_count; i++)
        most = g->states[i].count > most ? g->states[i].count : most;
    float *buf = malloc(2 * most * sizeof *buf);
    if (!buf)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of host memory");
    enum ncl_status s = NCL_OK;
    for (int i = 0; s == NCL_OK && i < g->param_count; i++) {
        const struct ncl_param *p = &g->params[i];
        s = ncl_onnx_tensor_floats(path, plan->param_src[i], buf);
        if (s == NCL_OK && plan->param_transposed[i]) {   /* [in, out] in the file, [out, in] here */
            size_t rows = (size_t)p->dims[1], cols = (size_t)p->dims[0];
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++)
                    buf[most + c * rows + r] = buf[r * cols + c];
            memmove(buf, buf + most, p->count * sizeof *buf);
        }
        if (s == NCL_OK)
            s = ncl_graph_write_param(g, i, buf);
    }
    for (int i = 0; s == NCL_OK && i < g->state_count; i++) {
        if (g->states[i].is_i64) {
            int64_t zero = 0;   /* num_batches_tracked: not in the file */
            s = ncl_graph_write_state(g, i, &zero);
        } else {
            s = ncl_onnx_tensor_floats(path, plan->state_src[i], buf);
            if (s == NCL_OK)
                s = ncl_graph_write_state(g, i, buf);
        }
    }
    free(buf);
    return s;
}

enum ncl_status ncl_onnx_build(struct ncl_ctx *ctx, const char *path, struct ncl_shape input, struct ncl_graph **out)
{
    *out = NULL;
    Onnx__ModelProto *m;
    NCL_TRY(ncl_onnx_load(path, &m));
    struct ncl_onnx_plan plan;
    struct ncl_graph *g = NULL;
    enum ncl_status s = ncl_graph_create(ctx, input, &g);
    if (s == NCL_OK)
        s = ncl_onnx_import(g, m, path, &plan);
    if (s == NCL_OK) {
        s = ncl_graph_reserve(g);
        if (s == NCL_OK)
            s = ncl_onnx_write_params(g, &plan, path);
        ncl_onnx_plan_free(&plan);
    }
    ncl_onnx_unload(m);
    if (s != NCL_OK) {
        ncl_graph_free(g);
        return s;
    }
    *out = g;
    return NCL_OK;
}
