/* Two training runs' checkpoints side by side (tests of resume and data parallel training). */
#ifndef NCL_RUN_COMPARE_H
#define NCL_RUN_COMPARE_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nincl.h"

/* The largest difference between the parameters of DIR_A/checkpoint.safetensors and
 * DIR_B/checkpoint.safetensors relative to the largest parameter of A (1e30 when the files
 * cannot be read or hold other tensors); *bitwise (optional) says whether every float is the
 * same bit pattern. */
static inline double run_param_difference(const char *dir_a, const char *dir_b, int *bitwise)
{
    char a_path[4200], b_path[4200];
    snprintf(a_path, sizeof a_path, "%s/checkpoint.safetensors", dir_a);
    snprintf(b_path, sizeof b_path, "%s/checkpoint.safetensors", dir_b);
    struct ncl_st_file a = {0}, b = {0};
    double diff = 1e30, largest = 0;
    int same = 0;
    if (ncl_st_read(a_path, &a) == NCL_OK && ncl_st_read(b_path, &b) == NCL_OK && a.count == b.count) {
        diff = 0;
        same = 1;
        for (int i = 0; i < a.count; i++) {
            const struct ncl_st_tensor *t = ncl_st_find(&b, a.tensors[i].name);
            size_t n = 1;
            for (int d = 0; d < a.tensors[i].ndim; d++)
                n *= (size_t)a.tensors[i].dims[d];
            if (!t || !a.tensors[i].data || !t->data) {   /* missing, or not float (BatchNorm's counter) */
                diff = t ? diff : 1e30;
                same &= t != NULL;
                continue;
            }
            same &= memcmp(a.tensors[i].data, t->data, n * sizeof(float)) == 0;
            for (size_t k = 0; k < n; k++) {
                double x = a.tensors[i].data[k], y = t->data[k];
                largest = fabs(x) > largest ? fabs(x) : largest;
                diff = fabs(x - y) > diff ? fabs(x - y) : diff;
            }
        }
    }
    ncl_st_free(&a);
    ncl_st_free(&b);
    if (bitwise)
        *bitwise = same;
    return largest > 0 && diff < 1e30 ? diff / largest : diff;
}

#endif
