#!/usr/bin/env bash
# The main job on the bundled real sample: an OEC checkout of 63 real system files and the
# NASA / exoplanet.eu rows of their hosts. Needs no broker, no GitHub, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
work="${1:-$(mktemp -d -t oec-sync-sample.XXXXXX)}"
rm -rf "$work/oec"
mkdir -p "$work"
cp -r tests/fixtures/sample/oec "$work/oec"
git -C "$work/oec" init --quiet --initial-branch=master
git -C "$work/oec" -c user.name=sample -c user.email=sample@localhost add -A
git -C "$work/oec" -c user.name=sample -c user.email=sample@localhost commit --quiet -m "OEC sample"
.venv/bin/oec-sync run --oec-repo "$work/oec" \
  --nasa tests/fixtures/sample/nasa.csv --eu tests/fixtures/sample/eu.csv \
  --outbox "$work/outbox" --report "$work/report.json" --max-prs 0
echo
echo "branches:  git -C $work/oec branch --list 'oec-sync/*'"
echo "a diff:    git -C $work/oec log -p -1 \$(git -C $work/oec branch --list 'oec-sync/*' --format='%(refname)' | head -1)"
echo "PR drafts: $work/outbox   report: $work/report.json"
