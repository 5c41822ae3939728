#!/usr/bin/env bash
# README command 1: set everything up, bring the embedded lab up (a real
# PostgreSQL primary + streaming replica with a seeded Odoo-shaped retail
# database and filestore) and run the main job against it: a backup into the
# lab's encrypted repository (created by that first backup).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/erpops lab up "$@"
.venv/bin/erpops lab status
.venv/bin/erpops backup -e lab
