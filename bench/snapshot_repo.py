"""The OEC snapshot from ../shared/data as a fresh git repository, for the benchmarks."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

SNAPSHOT = "oec-snapshot-2026-08-22.tar.gz"
NASA = "PSCompPars_2024-10-15_webUI_defaultcols.csv"
EU = "exoplanet.eu_catalog_2025-05_filtered.csv"


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    return subprocess.run(
        ["git", "-C", str(repo), *identity, *args], capture_output=True, text=True, check=True
    ).stdout


def unpack(shared: Path, repo: Path) -> Path:
    """``repo`` made a git checkout of the snapshot, one commit on master."""
    repo.mkdir(parents=True)
    with tarfile.open(shared / SNAPSHOT) as tar:
        tar.extractall(repo, filter="data")
    git(repo, "init", "--quiet", "--initial-branch=master")
    # No `git gc --auto` in the background: it would race copies of the repo and timings.
    git(repo, "config", "gc.auto", "0")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "OEC snapshot a858d464")
    return repo
