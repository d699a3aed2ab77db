#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the fake redo binary (and any other C test material) with the system C compiler.
# Usage: build.sh SRC_DIR OUT_DIR. Called by the Maven build (walredo-native, compile phase).
set -eu
src=$1
out=$2
mkdir -p "$out"
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build.sh: no C compiler ($cc) found; install gcc (apt-get install gcc)" >&2
  exit 1
fi
"$cc" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$out/fake-walredo.tmp" "$src/fake_walredo.c"
mv "$out/fake-walredo.tmp" "$out/fake-walredo"
