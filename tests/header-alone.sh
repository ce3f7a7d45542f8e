#!/usr/bin/env bash
# include/nincl.h on its own: it compiles as strict C11 and as C++ with no other include
# before it, and a C++ program linked against libnincl.so calls it (extern "C" linkage).
#   tests/header-alone.sh INCLUDE_DIR LIBRARY_DIR
# NCL_EXAMPLE_FLAGS: extra compiler flags (the sanitizer build's, to link its libnincl.so).
set -eu
inc=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
cxx=${CXX:-c++}
if ! command -v "$cxx" >/dev/null; then
    echo "no C++ compiler ($cxx): scripts/setup.sh installs g++" >&2
    exit 1
fi
printf '#include <nincl.h>\nint main(void) { return ncl_status_str(NCL_OK)[0] != 111; }\n' >"$tmp/alone.c"
"$cc" -std=c11 -pedantic-errors -Wall -Wextra -Werror -I"$inc" -c "$tmp/alone.c" -o "$tmp/alone-c.o"
# the header twice (include guard), and a C++ caller linked to the shared library
cat >"$tmp/alone.cpp" <<'CPP'
#include <nincl.h>
#include <nincl.h>
#include <cstdio>
#include <cstring>
int main()
{
    ncl_model_recipe r;
    if (ncl_model_default_recipe("nin", &r) != NCL_OK || r.input_size != 224)
        return 1;
    ncl_train_config cfg;
    if (ncl_train_config_init(&cfg, "no-such-model") != NCL_ERR_ARG || !std::strstr(ncl_last_error(), "no-such-model"))
        return 1;
    std::printf("nincl %s from C++\n", ncl_version());
    return 0;
}
CPP
for std in c++11 c++17; do
    # shellcheck disable=SC2086
    "$cxx" -std=$std -pedantic-errors -Wall -Wextra -Werror ${NCL_EXAMPLE_FLAGS:-} -I"$inc" "$tmp/alone.cpp" -o "$tmp/alone-$std" \
        -L"$lib" -lnincl -Wl,-rpath,"$lib"
    "$tmp/alone-$std"
done
echo "nincl.h alone: C11 and C++ (c++11, c++17) ok"
