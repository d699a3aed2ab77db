#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds (or finds in the cache) the real redo binary and runs the smoke checks of postgres/smoke.py on it.
# Usage: postgres/smoke.sh [POSTGRES]   (default: what ./scripts/build-postgres prints)
# Needs python3; the 'root' and 'server' checks need root, Debian's postgresql-15 and its 'postgres' user,
# and are skipped without them. Takes about a minute, most of it the throwaway server's 400 inserts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$("$ROOT/scripts/build-postgres" | tail -n 1)}
echo "smoke: $bin ($("$bin" --version))"
exec python3 "$ROOT/postgres/smoke.py" "$bin"
