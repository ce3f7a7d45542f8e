/* Concatenation on channels (torch.cat(dim=1)): GoogLeNet's Inception, DenseNet's blocks. In
 * CNHW order input j's channels are one contiguous run of the output, so forward copies each
 * input to its run and backward copies the runs back out: no kernel of its own. */
#include "graph-impl.h"

static enum ncl_status concat_setup(struct ncl_layer *l)
{
    struct ncl_shape s = l->xs[0]->shape;
    int c = 0;
    for (int j = 0; j < l->ninputs; j++) {
        struct ncl_shape t = l->xs[j]->shape;
        if (t.h != s.h || t.w != s.w || l->xs[j]->flat != l->xs[0]->flat)
            return ncl_fail(NCL_ERR_SHAPE, "concatenation needs inputs of the same height and width, got %dx%dx%d and "
                            "%dx%dx%d", s.c, s.h, s.w, t.c, t.h, t.w);
        c += t.c;
    }
    l->y->shape = (struct ncl_shape){s.n, c, s.h, s.w};
    return NCL_OK;
}

static enum ncl_status concat_run(struct ncl_layer *l, int batch, int backward)
{
    size_t at = 0, plane = (size_t)batch * l->y->shape.h * l->y->shape.w;
    for (int j = 0; j < l->ninputs; j++) {
        size_t n = plane * l->xs[j]->shape.c;
        if (!backward)
            NCL_TRY(ncl_copy(l->g, l->xs[j]->buf, 0, l->y->buf, at, n));
        else if (l->dxs[j])
            NCL_TRY(ncl_copy(l->g, l->dy, at, l->dxs[j], 0, n));
        at += n;
    }
    return NCL_OK;
}

static enum ncl_status concat_forward(struct ncl_layer *l, int batch, enum ncl_mode mode, uint64_t step)
{
    return concat_run(l, batch, 0);
}

static enum ncl_status concat_backward(struct ncl_layer *l, int batch, int need_dx)
{
    return concat_run(l, batch, 1);
}

const struct ncl_layer_ops ncl_layer_concat_ops = {
    .kind = "Concat",
    .setup = concat_setup,
    .forward = concat_forward,
    .backward = concat_backward,
    .backward_reads = ncl_backward_reads_none,
};
