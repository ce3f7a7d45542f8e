/* Private: recording failures. Every runtime function that fails returns ncl_fail(...), so
 * the message a caller reads with ncl_last_error() is the one closest to the cause. */
#ifndef NCL_STATUS_IMPL_H
#define NCL_STATUS_IMPL_H

#include "nincl.h"

#if defined(__GNUC__)
#define NCL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NCL_PRINTF(a, b)
#endif

/* Sets this thread's last error message and returns s. */
enum ncl_status ncl_fail(enum ncl_status s, const char *fmt, ...) NCL_PRINTF(2, 3);
/* Prefixes the current message with more context ("loading checkpoint X: <old message>"). */
enum ncl_status ncl_fail_prefix(enum ncl_status s, const char *fmt, ...) NCL_PRINTF(2, 3);

#define NCL_TRY(expr)                          \
    do {                                       \
        enum ncl_status ncl_try_s_ = (expr);   \
        if (ncl_try_s_ != NCL_OK)              \
            return ncl_try_s_;                 \
    } while (0)

#endif
