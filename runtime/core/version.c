/* The library's version (from include/nincl.h) and the commit it was built from. */
#include "nincl.h"
#include "nincl-commit.h"

#define NCL_STR_(x) #x
#define NCL_STR(x) NCL_STR_(x)

const char *ncl_version(void)
{
    return NCL_STR(NINCL_VERSION_MAJOR) "." NCL_STR(NINCL_VERSION_MINOR) "." NCL_STR(
        NINCL_VERSION_PATCH) " (git " NCL_GIT_COMMIT ")";
}
