#!/usr/bin/env bash
# README command 2: set everything up, then run the whole test suite
# (unit, integration against real servers, e2e of the installed command).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh --test
exec .venv/bin/python -m pytest -p no:cacheprovider "${@:-tests}"
