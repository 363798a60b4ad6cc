"""Real git repositories for tests, made from real OEC files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.paths import SAMPLE

IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@localhost"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def make_repo(target: Path, source: Path = SAMPLE / "oec") -> Path:
    """A git checkout at ``target`` holding a copy of ``source``, committed on master."""
    shutil.copytree(source, target)
    git(target, "init", "--quiet", "--initial-branch=master")
    git(target, "add", "-A")
    git(target, "commit", "--quiet", "-m", "OEC snapshot")
    return target
