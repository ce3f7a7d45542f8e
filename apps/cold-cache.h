/* `nincl bench --cold-cache`: start-up measured with no compiled kernels to reuse. */
#ifndef NCL_COLD_CACHE_H
#define NCL_COLD_CACHE_H

#include <stddef.h>

/* Points this process's kernel caches at nothing: PoCL's at a new empty folder (returned in
 * dir), NVIDIA's off. Call before the first OpenCL call. Prints the error and returns -1 on
 * failure, 0 on success. */
int cold_cache_begin(char *dir, size_t size);
/* Removes the folder and everything PoCL wrote into it. */
void cold_cache_end(const char *dir);

#endif
