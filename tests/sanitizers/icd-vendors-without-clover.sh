#!/usr/bin/env bash
# Writes into DIR a copy of the ICD folder (OCL_ICD_VENDORS when it names a folder, else
# /etc/OpenCL/vendors) without Mesa's Clover (libMesaOpenCL, in mesa-opencl-icd beside
# rusticl), for processes run under LeakSanitizer: the sanitizer tests (tests/CMakeLists.txt
# runs this at configure time) and the fuzzers (tests/fuzz/run.sh).
#   tests/sanitizers/icd-vendors-without-clover.sh DIR
# Why: Clover has no device without a GPU, and probing for one it loads Gallium's
# pipe_swrast.so and unloads it again with 128 bytes of it still allocated. LSan reports that
# leak at exit from "<unknown module>", which no suppression can name (lsan.supp matches
# modules by name), and its exit-time tracer can crash ("Tracer caught signal 11") on the
# dynamic TLS the unloaded library left behind. PoCL and rusticl stay, so a process still sees
# two vendors; the normal suite runs with Clover (tests/test-platforms.c).
set -eu
out=$1
src=/etc/OpenCL/vendors
if [ -n "${OCL_ICD_VENDORS:-}" ] && [ -d "$OCL_ICD_VENDORS" ]; then
    src=$OCL_ICD_VENDORS
fi
rm -rf "$out"
mkdir -p "$out"
for icd in "$src"/*.icd; do
    [ -e "$icd" ] || continue
    grep -q libMesaOpenCL "$icd" || cp "$icd" "$out/"
done
