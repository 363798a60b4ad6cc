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
# The editable install leaves our own modules uncompiled, and where PYTHONDONTWRITEBYTECODE
# is set every run would compile them again (0.15 s a run); compiled ones are still read.
.venv/bin/python -m compileall -q common runtime services >/dev/null
