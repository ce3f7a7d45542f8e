/* Evaluation: a data set through the graph in eval mode, counting right predictions on the
 * device and, when asked, reading back every example's output. */
#include <stdlib.h>

#include "status-impl.h"

enum ncl_status ncl_graph_evaluate(struct ncl_graph *g, struct ncl_device_data *d, int64_t count, int batch,
                                   int64_t *correct, float *logits)
{
    int32_t *order = malloc((size_t)count * sizeof *order);
    if (!order)
        return ncl_fail(NCL_ERR_NO_MEMORY, "out of memory for the order of %lld examples", (long long)count);
    for (int64_t i = 0; i < count; i++)
        order[i] = (int32_t)i;
    int classes = ncl_graph_output_shape(g).c;
    enum ncl_status s = ncl_device_data_set_order(d, order, count);
    if (s == NCL_OK)
        s = ncl_graph_read_metrics(g, NULL, 1);
    for (int64_t first = 0; s == NCL_OK && first < count; first += batch) {
        int n = count - first < batch ? (int)(count - first) : batch;
        s = ncl_graph_load_batch(g, d, first, n);
        if (s == NCL_OK)
            s = ncl_graph_forward(g, n, NCL_MODE_EVAL, 0);
        if (s == NCL_OK)
            s = ncl_graph_loss(g, n);   /* counts correct predictions on the device */
        if (s == NCL_OK)
            s = ncl_ctx_throttle(ncl_graph_ctx(g), 2);
        if (s == NCL_OK && logits)
            s = ncl_graph_read_output(g, logits + first * classes, n);
    }
    struct ncl_metrics m = {0};
    if (s == NCL_OK)
        s = ncl_graph_read_metrics(g, &m, 1);
    if (s == NCL_OK)
        *correct = m.correct;
    free(order);
    return s;
}
