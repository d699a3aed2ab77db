#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmarks' C "limit" client with the system C compiler.
# Usage: build.sh SRC_DIR OUT_DIR. Called by the Maven build (walredo-bench, compile phase).
set -eu
src=$1
out=$2
mkdir -p "$out"
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build.sh: no C compiler ($cc) found; install gcc (apt-get install gcc)" >&2
  exit 1
fi
"$cc" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread -o "$out/redo-client.tmp" "$src/redo_client.c"
mv "$out/redo-client.tmp" "$out/redo-client"
