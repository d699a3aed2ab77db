#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds (or finds in the cache) the real redo binary and runs the smoke checks of postgres/smoke.py on it.
# Usage: postgres/smoke.sh [POSTGRES]   (default: what ./scripts/build-postgres prints)
# Needs python3; the 'root' and 'server' checks need root, Debian's postgresql-15 and its 'postgres' user,
# and are skipped without them. Takes about 10 seconds, most of it two throwaway PostgreSQL servers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$("$ROOT/scripts/build-postgres" | tail -n 1)}
echo "smoke: $bin ($("$bin" --version))"
exec python3 "$ROOT/postgres/smoke.py" "$bin"
