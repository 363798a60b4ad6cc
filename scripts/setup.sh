#!/usr/bin/env bash
# Create .venv (once) and install OEC Sync with its dev tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Reinstall only when the project's requirements changed since the last install.
stamp=.venv/.oec-sync-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
