#!/bin/sh
# Builds the example plug-in the way a third party would: against the
# headers `meson install` puts in a prefix, with its own Makefile and
# nothing else from the source tree, then has vessel's loader load it and
# check it.  usage: test-out-of-tree.sh BUILD_DIR PROBE_EXECUTABLE
set -eu
build=$1
probe=$2
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --no-rebuild --quiet --tags devel --destdir "$tmp/root" >/dev/null
hdr=$(find "$tmp/root" -path '*/include/vessel/crypt.h' | head -n 1)
[ -n "$hdr" ] || { echo "crypt.h was not installed" >&2; exit 1; }
make -s -C "$src" VESSEL_INCLUDE="${hdr%/vessel/crypt.h}" OUT="$tmp"
"$probe" "$tmp/aes-cbc-plain64.so"
