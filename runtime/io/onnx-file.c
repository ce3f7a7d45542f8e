/* Reading an ONNX file: the bytes, a check of their protobuf nesting, protobuf-c's unpack, and
 * typed access to what the importer reads. Everything a file says about sizes is checked
 * against the bytes it actually has before anything is allocated from it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "onnx-impl.h"

/* Messages nested deeper than this are refused before protobuf-c (which recurses once per
 * level) sees them: a CNN's model is 6 deep (model, graph, node, attribute, tensor). */
#define MAX_DEPTH 32

int ncl_onnx_is_path(const char *model)
{
    size_t n = model ? strlen(model) : 0;
    return n > 5 && strcasecmp(model + n - 5, ".onnx") == 0;
}

size_t ncl_onnx_name_len(const char *model)
{
    return strlen(model) - (ncl_onnx_is_path(model) ? 5 : 0);
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

enum wire_check { WIRE_OK, WIRE_MALFORMED, WIRE_TOO_DEEP };

/* Walks the wire format of a message of type d, descending into fields that are messages. */
static enum wire_check check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > MAX_DEPTH)
        return WIRE_TOO_DEEP;
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            return WIRE_MALFORMED;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return WIRE_MALFORMED;
            break;
        case 1:
            if (end - p < 8)
                return WIRE_MALFORMED;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return WIRE_MALFORMED;
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return WIRE_MALFORMED;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= 0xffffffffu ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                enum wire_check c = check_wire(f->descriptor, p, p + v, depth + 1);
                if (c != WIRE_OK)
                    return c;
            }
            p += v;
            break;
        }
        default:   /* groups (3, 4) are not used by ONNX; 6 and 7 do not exist */
            return WIRE_MALFORMED;
        }
    }
    return WIRE_OK;
}

int64_t ncl_onnx_opset(const Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *domain = ncl_onnx_str(m->opset_import[i]->domain);
        if ((!*domain || strcmp(domain, "ai.onnx") == 0) && m->opset_import[i]->has_version)
            return m->opset_import[i]->version;
    }
    return 0;
}

static enum ncl_status check_names(const char *path, const Onnx__GraphProto *g)
{
    if (g->n_node > NCL_ONNX_MAX_ITEMS || g->n_initializer > NCL_ONNX_MAX_ITEMS || g->n_input > NCL_ONNX_MAX_ITEMS)
        return ncl_fail(NCL_ERR_FORMAT, "%s: %zu nodes, %zu initializers, %zu inputs: more than the %d nincl reads",
                        path, g->n_node, g->n_initializer, g->n_input, NCL_ONNX_MAX_ITEMS);
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!g->initializer[i]->name || !*g->initializer[i]->name)
            return ncl_fail(NCL_ERR_FORMAT, "%s: initializer %zu has no name", path, i);
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || !*n->op_type)
            return ncl_fail(NCL_ERR_FORMAT, "%s: node %zu ('%s') has no op_type", path, i, ncl_onnx_str(n->name));
        for (size_t j = 0; j < n->n_attribute; j++)
            if (!n->attribute[j]->name)
                return ncl_fail(NCL_ERR_FORMAT, "%s: node '%s' (%s): attribute %zu has no name", path,
                                ncl_onnx_str(n->name), n->op_type, j);
    }
    return NCL_OK;
}

enum ncl_status ncl_onnx_load_bytes(const char *path, const uint8_t *data, size_t size, Onnx__ModelProto **out)
{
    *out = NULL;
    enum wire_check c = check_wire(&onnx__model_proto__descriptor, data, data + size, 0);
    if (c == WIRE_TOO_DEEP)
        return ncl_fail(NCL_ERR_FORMAT, "%s: messages nested more than %d deep: not an ONNX model nincl reads", path,
                        MAX_DEPTH);
    if (c == WIRE_MALFORMED)
        return ncl_fail(NCL_ERR_FORMAT, "%s: not a valid ONNX (protobuf) file: truncated or corrupt", path);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return ncl_fail(NCL_ERR_FORMAT, "%s: not a valid ONNX (protobuf) file: a field has the wrong type or a "
                        "required part is missing", path);
    enum ncl_status s = NCL_OK;
    if (!m->graph)
        s = ncl_fail(NCL_ERR_FORMAT, "%s: an ONNX model without a graph", path);
    else if (ncl_onnx_opset(m) < 7)
        s = ncl_fail(NCL_ERR_FORMAT, "%s: imports opset %lld of the default domain; nincl reads opsets 7 and later",
                     path, (long long)ncl_onnx_opset(m));
    else
        s = check_names(path, m->graph);
    if (s != NCL_OK) {
        onnx__model_proto__free_unpacked(m, NULL);
        return s;
    }
    *out = m;
    return NCL_OK;
}

enum ncl_status ncl_onnx_load(const char *path, Onnx__ModelProto **out)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ncl_fail(NCL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    enum ncl_status s = NCL_OK;
    uint8_t *data = NULL;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode))
        s = ncl_fail(NCL_ERR_IO, "%s: not a regular file", path);
    else if (st.st_size == 0)
        s = ncl_fail(NCL_ERR_FORMAT, "%s: empty file, not an ONNX model", path);
    else if (st.st_size > NCL_ONNX_MAX_FILE_BYTES)
        s = ncl_fail(NCL_ERR_FORMAT, "%s: %lld bytes, more than the %lld nincl reads", path, (long long)st.st_size,
                     (long long)NCL_ONNX_MAX_FILE_BYTES);
    else if (!(data = malloc((size_t)st.st_size)))
        s = ncl_fail(NCL_ERR_NO_MEMORY, "%s: out of memory for %lld bytes", path, (long long)st.st_size);
    else if (fread(data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size)
        s = ncl_fail(NCL_ERR_IO, "%s: read failed: %s", path, ferror(fp) ? strerror(errno) : "file shrank");
    fclose(fp);
    if (s == NCL_OK)
        s = ncl_onnx_load_bytes(path, data, (size_t)st.st_size, out);
    free(data);
    return s;
}

void ncl_onnx_unload(Onnx__ModelProto *m)
{
    if (m)
        onnx__model_proto__free_unpacked(m, NULL);
}

const Onnx__AttributeProto *ncl_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static int is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return 1;
    return 0;
}

/* dim i of a tensor type: its value, or -1 for a symbolic (or absent) size. */
static int64_t dim_value(const Onnx__TensorShapeProto *shape, size_t i)
{
    const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
    return d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? d->dim_value : -1;
}

enum ncl_status ncl_onnx_input(const char *path, const Onnx__GraphProto *g, const Onnx__ValueInfoProto **input,
                               struct ncl_shape *chw)
{
    *input = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *v = g->input[i];
        if (!v->name || is_initializer(g, v->name))
            continue;   /* older exporters list the initializers as inputs too */
        if (*input)
            return ncl_fail(NCL_ERR_FORMAT, "%s: the graph has several data inputs ('%s', '%s'); nincl trains "
                            "models of one image input", path, (*input)->name, v->name);
        *input = v;
    }
    if (!*input)
        return ncl_fail(NCL_ERR_FORMAT, "%s: the graph has no data input", path);
    const Onnx__ValueInfoProto *v = *input;
    const Onnx__TypeProto *t = v->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return ncl_fail(NCL_ERR_FORMAT, "%s: input '%s' is not a tensor", path, v->name);
    if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ncl_fail(NCL_ERR_FORMAT, "%s: input '%s' has element type %d; nincl reads float (1) inputs", path,
                        v->name, (int)t->tensor_type->elem_type);
    const Onnx__TensorShapeProto *shape = t->tensor_type->shape;
    if (!shape || shape->n_dim != 4)
        return ncl_fail(NCL_ERR_FORMAT, "%s: input '%s' has %zu dimensions; nincl reads [batch, channels, height, "
                        "width] image inputs", path, v->name, shape ? shape->n_dim : (size_t)0);
    int64_t c = dim_value(shape, 1), h = dim_value(shape, 2), w = dim_value(shape, 3), n = dim_value(shape, 0);
    /* sizes nincl can train: those of its recipes (4096) and at most 64M values per image */
    if (c < 1 || h < 1 || w < 1 || c > 4096 || h > 4096 || w > 4096 || c * h * w > ((int64_t)1 << 26) || n == 0 ||
        n > 65536)
        return ncl_fail(NCL_ERR_FORMAT, "%s: input '%s' has shape [%lld, %lld, %lld, %lld]: channels, height and "
                        "width must be fixed sizes in [1, 4096] with at most 2^26 values per image (the batch may "
                        "be symbolic)", path, v->name, (long long)n, (long long)c, (long long)h, (long long)w);
    *chw = (struct ncl_shape){(int)(n > 0 ? n : 0), (int)c, (int)h, (int)w};
    return NCL_OK;
}

static int element_bytes(int32_t type)
{
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        return 1;
    default:
        return 0;
    }
}

static const char *tensor_name(const Onnx__TensorProto *t)
{
    return t->name && *t->name ? t->name : "(unnamed)";
}

enum ncl_status ncl_onnx_tensor_count(const char *path, const Onnx__TensorProto *t, int64_t *count)
{
    *count = 0;
    int bytes = element_bytes(t->data_type);
    if (!bytes)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has data type %d; nincl reads float (1), int64 (7), int32 "
                        "(6) and bool (9) tensors", path, tensor_name(t), (int)t->data_type);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' keeps its data in an external file, which nincl does not "
                        "read (save the model with its weights inside)", path, tensor_name(t));
    if (t->segment)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' is segmented, which nincl does not read", path,
                        tensor_name(t));
    if (t->n_dims > 8)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions", path, tensor_name(t), t->n_dims);
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > ((int64_t)1 << 31) || (t->dims[i] && n > ((int64_t)1 << 31) / t->dims[i]))
            return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has an absurd dimension %zu (%lld)", path,
                            tensor_name(t), i, (long long)t->dims[i]);
        n *= t->dims[i];
    }
    size_t have;
    if (t->has_raw_data)
        have = t->raw_data.len % (size_t)bytes ? (size_t)-1 : t->raw_data.len / (size_t)bytes;
    else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        have = t->n_float_data;
    else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        have = t->n_int64_data;
    else
        have = t->n_int32_data;
    if (have == (size_t)-1)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has %zu bytes of data, not a whole number of values", path,
                        tensor_name(t), t->raw_data.len);
    if (have != (size_t)n)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' should hold %lld values by its dims but its data holds %zu",
                        path, tensor_name(t), (long long)n, have);
    *count = n;
    return NCL_OK;
}

/* Little-endian bytes to a value (ONNX's raw_data is little-endian on every host). */
static uint64_t load_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int b = bytes - 1; b >= 0; b--)
        v = v << 8 | p[b];
    return v;
}

enum ncl_status ncl_onnx_tensor_floats(const char *path, const Onnx__TensorProto *t, float *out)
{
    int64_t n;
    NCL_TRY(ncl_onnx_tensor_count(path, t, &n));
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' has data type %d where float (1) is needed", path,
                        tensor_name(t), (int)t->data_type);
    for (int64_t i = 0; i < n; i++) {
        if (t->has_raw_data) {
            uint32_t bits = (uint32_t)load_le(t->raw_data.data + 4 * i, 4);
            memcpy(&out[i], &bits, 4);
        } else {
            out[i] = t->float_data[i];
        }
    }
    return NCL_OK;
}

enum ncl_status ncl_onnx_tensor_ints(const char *path, const Onnx__TensorProto *t, int64_t *out)
{
    int64_t n;
    NCL_TRY(ncl_onnx_tensor_count(path, t, &n));
    int bytes = element_bytes(t->data_type);
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ncl_fail(NCL_ERR_FORMAT, "%s: tensor '%s' is float where integers are needed", path, tensor_name(t));
    for (int64_t i = 0; i < n; i++) {
        if (t->has_raw_data) {
            uint64_t v = load_le(t->raw_data.data + (size_t)bytes * i, bytes);
            out[i] = bytes == 8 ? (int64_t)v : bytes == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)(v != 0);
        } else {
            out[i] = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->int64_data[i] : t->int32_data[i];
        }
    }
    return NCL_OK;
}
