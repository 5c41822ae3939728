#!/usr/bin/env bash
# Usage: scripts/bootstrap.sh [--test]
# Set up everything erpops needs on a fresh Debian/Ubuntu machine:
# the Debian packages (installed when running as root, otherwise the exact
# install line is printed and we exit 2), a virtual environment in .venv and
# the package itself with its test dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: "binary-that-proves-it-is-there package"
REQUIRED=(
  "/usr/lib/postgresql/15/bin/postgres postgresql-15"
  "/usr/lib/postgresql/15/bin/pg_dump postgresql-client-15"
  "/usr/bin/pgbackrest pgbackrest"
  "/usr/bin/redis-server redis-server"
  "/usr/sbin/sshd openssh-server"
  "/usr/sbin/runuser util-linux"
  "/usr/bin/zstd zstd"  # the backup benchmark's raw-tools baseline (bench/backup_bench.py)
)
# Only the test suite needs these: shells whose completion scripts are checked.
if [ "${1:-}" = "--test" ]; then
  REQUIRED+=("/usr/bin/zsh zsh" "/usr/bin/fish fish")
fi
missing=()
for entry in "${REQUIRED[@]}"; do
  set -- $entry
  [ -x "$1" ] || missing+=("$2")
done
if [ -z "$(python3 -c 'import venv, ensurepip' 2>&1 >/dev/null || true)" ]; then :; else missing+=("python3-venv"); fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# constraints.txt pins a known-good set: pip's resolver otherwise backtracks
# for many minutes over boto3/botocore versions.
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]" 2>&1 \
  | grep -v -e "^WARNING: Location" -e "is neither a file nor a directory" || true
.venv/bin/erpops --version >/dev/null
echo "bootstrap: ready (.venv/bin/erpops)" >&2
