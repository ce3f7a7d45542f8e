/* Softmax cross-entropy over logits stored class-major ([classes, batch], the flattened CNHW
 * layout), mean over the batch. Writes dlogits = (softmax - onehot) / mean_over (the batch, or
 * for a replica's slice the global batch, so the replicas' gradients sum to the mean's) and adds the
 * batch's summed loss and correct count to device-side metrics, so the host reads them only
 * when it wants to report. One work-group does it all: batches are small and this keeps the
 * sum in a fixed order (bit-identical across runs). */
#ifndef LOSS_WG
#define LOSS_WG 64
#endif

__kernel __attribute__((reqd_work_group_size(LOSS_WG, 1, 1)))
void softmax_xent(__global const float *logits, ulong l_off, __global const int *labels, int batch, int mean_over,
                  int classes,
                  __global float *dlogits, ulong d_off, __global float *loss_sum, __global uint *counts)
{
    __local float part_loss[LOSS_WG];
    __local uint part_correct[LOSS_WG];
    int lid = get_local_id(0);
    float my_loss = 0.0f;
    uint my_correct = 0;
    for (int n = lid; n < batch; n += LOSS_WG) {
        float m = logits[l_off + n];
        int arg = 0;
        for (int c = 1; c < classes; c++) {
            float v = logits[l_off + (size_t)c * batch + n];
            if (v > m) {
                m = v;
                arg = c;
            }
        }
        float s = 0.0f;
        for (int c = 0; c < classes; c++)
            s += exp(logits[l_off + (size_t)c * batch + n] - m);
        int label = labels[n];
        /* (m - logit) + log(s) rather than (m + log(s)) - logit: no cancellation at large logits */
        my_loss += (m - logits[l_off + (size_t)label * batch + n]) + log(s);
        my_correct += arg == label;
        for (int c = 0; c < classes; c++) {
            size_t at = (size_t)c * batch + n;
            float prob = exp(logits[l_off + at] - m) / s;
            dlogits[d_off + at] = (prob - (c == label ? 1.0f : 0.0f)) / mean_over;
        }
    }
    part_loss[lid] = my_loss;
    part_correct[lid] = my_correct;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LOSS_WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
            part_loss[lid] += part_loss[lid + s];
            part_correct[lid] += part_correct[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        loss_sum[0] += part_loss[0];
        counts[0] += part_correct[0];
        counts[1] += (uint)batch;
    }
}
