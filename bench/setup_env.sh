#!/usr/bin/env bash
# Benchmark environment: .bench-venv at the repo root, with the peer engines
# (bench/requirements.txt) and the project itself (editable). The peers are never
# project dependencies. Idempotent: a stamp holding a hash of bench/requirements.txt and
# pyproject.toml skips the installs while neither has changed (--force reinstalls).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
STAMP="$VENV/.bench-installed"
REQS="bench/requirements.txt"

digest="$(cat "$REQS" pyproject.toml | sha256sum | cut -d' ' -f1)"

if [[ "${1:-}" != "--force" && -x "$VENV/bin/python" && -f "$STAMP" ]] \
    && [[ "$(cat "$STAMP")" == "$digest" ]]; then
    echo "bench: $VENV is up to date"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "bench: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

echo "bench: installing peers ($REQS)"
"$VENV/bin/pip" install --quiet -r "$REQS"

echo "bench: installing the project (pip install -e .)"
"$VENV/bin/pip" install --quiet -e .

echo "$digest" >"$STAMP"
echo "bench: $VENV ready"
