#!/usr/bin/env bash
# Install, lint, type-check (mypy --strict, configured in pyproject.toml) and run every test.
# Broker tests skip without RabbitMQ unless OEC_SYNC_REQUIRE_BROKER=1; tests on the full data
# skip without ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
