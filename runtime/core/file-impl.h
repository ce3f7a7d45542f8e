/* Private: files written whole and atomically (a temporary file beside the target, fsync,
 * rename): an interrupted write never leaves a partial file at the path. */
#ifndef NCL_FILE_IMPL_H
#define NCL_FILE_IMPL_H

#include <stddef.h>

/* 0, or -1 with errno set. */
int ncl_write_file_atomic(const char *path, const char *data, size_t len);
/* Reads all of path (at most max bytes) into a malloc'ed buffer, NUL-terminated after len
 * bytes: 0, or -1 with errno set
 * (EFBIG when larger than max). */
int ncl_read_file(const char *path, size_t max, char **data, size_t *len);

#endif
