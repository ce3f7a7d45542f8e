#!/usr/bin/env bash
# nincl as C programs consume it: `cmake --install` into a fresh prefix must give the
# library (shared with its soname, and static), the header, the command, nincl.pc and the
# CMake package; examples/train-nin-small.c then builds against it with pkg-config and with
# find_package(nincl), and against the build tree with find_package, and each build trains a
# few steps on the real data.
#   tests/install-tree.sh BUILD_DIR SOURCE_DIR
# NCL_EXAMPLE_FLAGS: extra compiler flags (the sanitizer build's, to link its libnincl.so).
set -eu
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"

fail() { echo "install-tree: $*" >&2; exit 1; }
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$build/nincl.pc")
for f in include/nincl.h bin/nincl "$libdir/libnincl.a" "$libdir/pkgconfig/nincl.pc" \
         "$libdir/cmake/nincl/ninclConfig.cmake" "$libdir/cmake/nincl/ninclConfigVersion.cmake" \
         "$libdir/cmake/nincl/ninclTargets.cmake" "$libdir/cmake/nincl/ninclStaticTargets.cmake" \
         share/doc/nincl/examples/train-nin-small.c; do
    [ -e "$prefix/$f" ] || fail "missing $f in the install tree"
done
so=$(readelf -d "$prefix/$libdir/libnincl.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
case "$so" in libnincl.so.[0-9]*) ;; *) fail "libnincl.so has soname '$so'" ;; esac
[ -e "$prefix/$libdir/$so" ] || fail "the soname $so is not installed"
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# the installed command runs from the install tree (RPATH to its own lib folder)
"$prefix/bin/nincl" --version | grep -q "^nincl [0-9]*\.[0-9]*\.[0-9]* (git " || fail "nincl --version"
echo "installed command: $("$prefix/bin/nincl" --version)"

run_example() {  # name, binary
    "$2" "$tmp/run-$1" 128 >"$tmp/$1.log" 2>&1 || { cat "$tmp/$1.log"; fail "the $1 build of the example failed"; }
    grep -q "^epoch 5/5: loss" "$tmp/$1.log" || { cat "$tmp/$1.log"; fail "the $1 build printed no epoch lines"; }
    [ -s "$tmp/run-$1/checkpoint.safetensors" ] && [ -s "$tmp/run-$1/metrics.csv" ] ||
        fail "the $1 build wrote no checkpoint or metrics"
    echo "$1: $(tail -n 1 "$tmp/$1.log")"
}

# pkg-config, as a Makefile would use it
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
flags=$(pkg-config --cflags --libs nincl)
extra=${NCL_EXAMPLE_FLAGS:-}
# shellcheck disable=SC2086
${CC:-cc} -Wall -Wextra -Werror $extra "$src/examples/train-nin-small.c" -o "$tmp/example-pc" $flags \
    -Wl,-rpath,"$(pkg-config --variable=libdir nincl)"
run_example pkg-config "$tmp/example-pc"

# find_package(nincl) against the install tree and against the build tree
cmake -S "$src/examples" -B "$tmp/example-cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$extra" >/dev/null
cmake --build "$tmp/example-cmake" >/dev/null
run_example find_package "$tmp/example-cmake/train-nin-small"
cmake -S "$src/examples" -B "$tmp/example-buildtree" -Dnincl_DIR="$build" -DCMAKE_C_FLAGS="$extra" >/dev/null
cmake --build "$tmp/example-buildtree" >/dev/null
run_example build-tree "$tmp/example-buildtree/train-nin-small"
echo "install-tree: ok"
