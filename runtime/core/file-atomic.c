/* Whole files: read into memory, written atomically (runtime/core/file-impl.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-impl.h"

int ncl_write_file_atomic(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int ncl_read_file(const char *path, size_t max, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fileno(fp), &st) != 0) {
        /* errno from fstat */
    } else if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
    } else if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
    } else if ((*data = malloc((size_t)st.st_size + 1)) != NULL) {
        if (fread(*data, 1, (size_t)st.st_size, fp) == (size_t)st.st_size) {
            (*data)[st.st_size] = 0;   /* text files can be read as strings */
            *len = (size_t)st.st_size;
            rc = 0;
        } else {
            errno = ferror(fp) ? EIO : ENODATA;
            free(*data);
            *data = NULL;
        }
    }
    fclose(fp);
    return rc;
}
